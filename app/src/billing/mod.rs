//! The billing page: the organization's subscription, cards, invoices and
//! billing audit log, kept in Stripe and mirrored in the database, and the
//! server functions that change them.
//!
//! Every mutation checks on the server that the caller owns the current
//! organization, and that a card id belongs to its customer, before any
//! Stripe request.

#[cfg(feature = "ssr")]
mod cancel_lock;
mod page;
pub mod rules;
#[cfg(feature = "ssr")]
pub mod ssr;
#[cfg(feature = "ssr")]
pub mod stripe;
#[cfg(feature = "ssr")]
pub mod webhook;

pub use page::BillingPage;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Whether a card still works, judged by its expiry month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CardExpiry {
    Valid,
    /// The expiry month ends within `rules::EXPIRING_WITHIN_DAYS`.
    ExpiringSoon,
    Expired,
}

/// A card attached to the organization's Stripe customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    /// Stripe's PaymentMethod id (pm_…).
    pub id: String,
    /// Stripe's brand code: visa, mastercard, amex, …
    pub brand: String,
    pub last4: String,
    pub exp_month: i64,
    pub exp_year: i64,
    /// When the card was added to Stripe, in milliseconds since the epoch.
    pub added_at: i64,
    /// Whether invoices charge this card.
    pub is_default: bool,
    pub expiry: CardExpiry,
}

impl Card {
    /// Returns the brand as people write it, such as "Visa" or "American Express".
    pub fn brand_label(&self) -> String {
        match self.brand.as_str() {
            "amex" => "American Express".to_string(),
            "diners" => "Diners Club".to_string(),
            "jcb" => "JCB".to_string(),
            "unionpay" => "UnionPay".to_string(),
            "mastercard" => "Mastercard".to_string(),
            other => {
                let mut chars = other.chars();
                match chars.next() {
                    Some(first) => first.to_uppercase().chain(chars).collect(),
                    None => "Card".to_string(),
                }
            }
        }
    }
}

/// The organization's subscription as last mirrored from Stripe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionView {
    /// Stripe's subscription id (sub_…).
    pub id: String,
    /// Stripe's status: active, trialing, past_due, canceled, …
    pub status: String,
    pub plan_name: String,
    /// Price per interval in the currency's minor unit (cents).
    pub amount: i64,
    /// ISO 4217 code, lowercase as Stripe sends it.
    pub currency: String,
    /// month, year, week or day.
    pub interval: String,
    /// End of the current period, in milliseconds since the epoch.
    pub current_period_end: Option<i64>,
}

/// One invoice in the recent invoices list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceView {
    pub id: String,
    pub number: Option<String>,
    /// In milliseconds since the epoch.
    pub created_at: i64,
    /// In the currency's minor unit (cents).
    pub amount_due: i64,
    pub currency: String,
    /// draft, open, paid, uncollectible or void.
    pub status: String,
    /// Stripe's hosted invoice page, when Stripe provides one.
    pub hosted_invoice_url: Option<String>,
}

/// One billing change in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The user's email, or "Stripe webhook".
    pub actor: String,
    pub action: String,
    /// The card or subscription id, if the change was about one.
    pub target: Option<String>,
    /// In milliseconds since the epoch.
    pub created_at: i64,
}

/// Everything the billing page shows, read from the local mirror.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingOverview {
    pub org_name: String,
    /// Whether the caller may change billing (owners only).
    pub can_manage: bool,
    /// Names and emails of the owners, for the "who can manage" line.
    pub owners: Vec<String>,
    /// The organization's plan: "free" or "paid".
    pub plan: String,
    pub subscription: Option<SubscriptionView>,
    /// Attached cards, newest first.
    pub cards: Vec<Card>,
    /// Most recent first, at most 10.
    pub invoices: Vec<InvoiceView>,
    /// Most recent first, at most 50; empty for non-owners.
    pub audit_log: Vec<AuditEntry>,
    /// Last successful refresh from Stripe, in milliseconds since the epoch.
    pub synced_at: Option<i64>,
    /// True when Stripe could not be reached for this load, so the page
    /// shows the last known state.
    pub stale: bool,
    /// True when a Cancel Subscription run stopped before finishing.
    pub cancel_unfinished: bool,
    /// False when the server has no Stripe settings at all.
    pub billing_available: bool,
}

impl BillingOverview {
    /// Whether Subscribe is offered: a Free organization with a card.
    pub fn can_subscribe(&self) -> bool {
        let subscribed = self
            .subscription
            .as_ref()
            .is_some_and(|s| rules::CHARGING_STATUSES.contains(&s.status.as_str()));
        !subscribed && !self.cards.is_empty()
    }
}

/// The SetupIntent and keys the browser needs to collect a card with Stripe.js.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSetup {
    /// Stripe's SetupIntent id (seti_…).
    pub setup_intent_id: String,
    /// The SetupIntent's client secret, which only confirms this intent.
    pub client_secret: String,
    pub publishable_key: String,
    /// URL of Stripe.js.
    pub js_url: String,
}

/// Loads the billing page of the caller's current organization.
///
/// Public endpoint: any member may call it; only owners get the audit log.
/// The data comes from the local mirror, refreshed from Stripe when older
/// than five minutes; when Stripe cannot be reached, `stale` is set.
#[server(endpoint = "billing/overview", client = crate::client::CredentialedClient)]
pub async fn get_billing_overview() -> Result<BillingOverview, AppError> {
    let caller = crate::auth::ssr::require_member().await?;
    ssr::overview_for(&caller).await
}

/// Creates a SetupIntent for adding a card, creating the organization's
/// Stripe customer on first use.
///
/// Public endpoint: owners of the current organization only (403 otherwise).
#[server(endpoint = "billing/card-setup", client = crate::client::CredentialedClient)]
pub async fn create_card_setup() -> Result<CardSetup, AppError> {
    let caller = crate::auth::ssr::require_owner().await?;
    ssr::create_card_setup(&caller).await
}

/// Finishes adding a card after the browser confirmed `setup_intent_id`
/// with Stripe: attaches the card when Stripe has not, and makes it the
/// default when it is the first.
///
/// Public endpoint: owners only, and only for a SetupIntent this server
/// created for the caller's organization (403 otherwise).
#[server(endpoint = "billing/complete-card-setup", client = crate::client::CredentialedClient)]
pub async fn complete_card_setup(setup_intent_id: String) -> Result<(), AppError> {
    let caller = crate::auth::ssr::require_owner().await?;
    ssr::complete_card_setup(&caller, &setup_intent_id).await
}

/// Makes `card_id` the default card of the customer and of the subscription.
///
/// Public endpoint: owners only, for one of their organization's cards (403
/// otherwise).
#[server(endpoint = "billing/set-default-card", client = crate::client::CredentialedClient)]
pub async fn set_default_card(card_id: String) -> Result<(), AppError> {
    let caller = crate::auth::ssr::require_owner().await?;
    ssr::set_default_card(&caller, &card_id).await
}

/// Removes `card_id`. Removing the default promotes the most recently added
/// other card. The last card cannot go while the subscription is active,
/// trialing or past due (409 with the reason).
///
/// Public endpoint: owners only, for one of their organization's cards (403
/// otherwise).
#[server(endpoint = "billing/remove-card", client = crate::client::CredentialedClient)]
pub async fn remove_card(card_id: String) -> Result<(), AppError> {
    let caller = crate::auth::ssr::require_owner().await?;
    ssr::remove_card(&caller, &card_id).await
}

/// Subscribes a Free organization that has a card to the paid plan.
///
/// Public endpoint: owners only (403 otherwise).
#[server(endpoint = "billing/subscribe", client = crate::client::CredentialedClient)]
pub async fn subscribe() -> Result<(), AppError> {
    let caller = crate::auth::ssr::require_owner().await?;
    ssr::subscribe(&caller).await
}

/// Cancels the subscription at once, detaches every card and moves the
/// organization to the Free plan. Each step checks Stripe's state first, so
/// calling it again after a failure half-way finishes the job. Runs for one
/// organization take turns; a run that finds nothing left to cancel
/// returns 409 saying the subscription is already canceled.
///
/// Public endpoint: owners only (403 otherwise).
#[server(endpoint = "billing/cancel-subscription", client = crate::client::CredentialedClient)]
pub async fn cancel_subscription() -> Result<(), AppError> {
    let caller = crate::auth::ssr::require_owner().await?;
    ssr::cancel_subscription(&caller).await
}
