//! Server side of billing: the flows behind each server function, the
//! refresh of the local mirror from Stripe, and webhook events.

use leptos::prelude::*;
use sqlx::{Any, AnyPool, Row, Transaction};

use super::rules::{self, Removal};
use super::stripe::{stripe_error, PaymentMethod, Stripe, StripeFailure, Subscription};
use super::{AuditEntry, BillingOverview, Card, CardSetup, InvoiceView, SubscriptionView};
use crate::auth::ssr::Caller;
use crate::db::{db_error, now_ms};
use crate::error::AppError;
use crate::state::AppState;

/// A page load refreshes the mirror from Stripe when it is older than this.
pub const REFRESH_AFTER_MS: i64 = 5 * 60_000;
/// The `actor` of changes that arrived by webhook.
pub const WEBHOOK_ACTOR: &str = "Stripe webhook";

/// The mirrored customer row of an organization.
#[derive(Debug, Clone)]
pub struct CustomerRow {
    pub customer_id: String,
    pub default_payment_method_id: Option<String>,
    pub synced_at: i64,
    pub cancel_started_at: Option<i64>,
}

fn stripe_of(state: &AppState) -> Result<Stripe, AppError> {
    state.stripe.clone().ok_or_else(|| {
        tracing::warn!("billing request while STRIPE_SECRET_KEY is not set");
        AppError::Unavailable(
            "Billing is not set up on this server: STRIPE_SECRET_KEY is missing.".to_string(),
        )
    })
}

// ---------------------------------------------------------------- flows

/// Builds the billing page of `caller`'s organization.
pub async fn overview_for(caller: &Caller) -> Result<BillingOverview, AppError> {
    let state = expect_context::<AppState>();
    let pool = &state.pool;

    let mut stale = false;
    if let (Some(stripe), Some(customer)) = (state.stripe.as_ref(), customer_of(pool, caller.org_id).await?) {
        if now_ms() - customer.synced_at > REFRESH_AFTER_MS {
            match refresh(pool, stripe, caller.org_id, &customer.customer_id).await {
                Ok(()) => {}
                Err(RefreshError::Stripe(failure)) => {
                    tracing::warn!(org_id = caller.org_id, error = %failure, "billing refresh failed, showing the mirror");
                    stale = true;
                }
                Err(RefreshError::App(error)) => return Err(error),
            }
        }
    }

    load_overview(pool, caller, stale, state.stripe.is_some()).await
}

/// Creates a SetupIntent for the organization's customer.
pub async fn create_card_setup(caller: &Caller) -> Result<CardSetup, AppError> {
    let state = expect_context::<AppState>();
    let stripe = stripe_of(&state)?;
    let customer_id = ensure_customer(&state.pool, &stripe, caller).await?;

    let intent = stripe
        .create_setup_intent(&customer_id)
        .await
        .map_err(|e| stripe_error("create SetupIntent", e))?;
    let Some(client_secret) = intent.client_secret else {
        return Err(crate::db::internal("create SetupIntent", "Stripe returned no client_secret"));
    };
    sqlx::query("INSERT INTO billing_setup_intents (setup_intent_id, org_id, created_at) VALUES ($1, $2, $3)")
        .bind(&intent.id)
        .bind(caller.org_id)
        .bind(now_ms())
        .execute(&state.pool)
        .await
        .map_err(|e| db_error("store SetupIntent", e))?;

    Ok(CardSetup {
        setup_intent_id: intent.id,
        client_secret,
        publishable_key: stripe.settings.publishable_key.clone(),
        js_url: stripe.settings.js_url.clone(),
    })
}

/// Attaches the card of a confirmed SetupIntent, makes it the default when
/// the customer has none, and refreshes the mirror.
pub async fn complete_card_setup(caller: &Caller, setup_intent_id: &str) -> Result<(), AppError> {
    let state = expect_context::<AppState>();
    let pool = &state.pool;
    let stripe = stripe_of(&state)?;

    let owner_org: Option<i64> =
        sqlx::query_scalar("SELECT org_id FROM billing_setup_intents WHERE setup_intent_id = $1")
            .bind(setup_intent_id)
            .fetch_optional(pool)
            .await
            .map_err(|e| db_error("look up SetupIntent", e))?;
    let customer = customer_of(pool, caller.org_id).await?;
    let (Some(customer), true) = (customer, owner_org == Some(caller.org_id)) else {
        return Err(forbidden_object(caller, "card setup", setup_intent_id));
    };

    let intent = stripe
        .retrieve_setup_intent(setup_intent_id)
        .await
        .map_err(|e| stripe_error("retrieve SetupIntent", e))?;
    if intent.customer.as_deref() != Some(customer.customer_id.as_str()) {
        return Err(forbidden_object(caller, "card setup", setup_intent_id));
    }
    if intent.status != "succeeded" {
        return Err(AppError::Conflict(format!(
            "The card was not confirmed with Stripe (status {}). Enter the card again.",
            intent.status.replace('_', " ")
        )));
    }
    let Some(payment_method_id) = intent.payment_method else {
        return Err(crate::db::internal("complete card setup", "succeeded SetupIntent without payment_method"));
    };

    let card = stripe
        .retrieve_payment_method(&payment_method_id)
        .await
        .map_err(|e| stripe_error("retrieve payment method", e))?;
    match card.customer.as_deref() {
        Some(owner) if owner == customer.customer_id => {}
        Some(_) => return Err(forbidden_object(caller, "card", &payment_method_id)),
        // Stripe attaches the card when the SetupIntent has a customer;
        // localstripe does not, so attach it here.
        None => {
            stripe
                .attach_payment_method(&payment_method_id, &customer.customer_id)
                .await
                .map_err(|e| stripe_error("attach payment method", e))?;
        }
    }

    let current = stripe
        .retrieve_customer(&customer.customer_id)
        .await
        .map_err(|e| stripe_error("retrieve customer", e))?;
    if current.default_payment_method().is_none() {
        stripe
            .set_customer_default(&customer.customer_id, &payment_method_id)
            .await
            .map_err(|e| stripe_error("set default payment method", e))?;
    }

    record_audit(pool, caller.org_id, Some(caller), "Added card", Some(&payment_method_id)).await?;
    refresh_after_change(pool, &stripe, caller.org_id, &customer.customer_id).await
}

/// Makes `card_id` the default of the customer and of the subscription.
pub async fn set_default_card(caller: &Caller, card_id: &str) -> Result<(), AppError> {
    let state = expect_context::<AppState>();
    let pool = &state.pool;
    let stripe = stripe_of(&state)?;
    let (customer, _card) = owned_card(pool, caller, card_id).await?;

    stripe
        .set_customer_default(&customer.customer_id, card_id)
        .await
        .map_err(|e| stripe_error("set default payment method", e))?;
    if let Some(subscription) = load_subscription(pool, caller.org_id).await? {
        if rules::CHARGING_STATUSES.contains(&subscription.status.as_str()) {
            stripe
                .set_subscription_default(&subscription.id, card_id)
                .await
                .map_err(|e| stripe_error("set subscription default", e))?;
        }
    }

    record_audit(pool, caller.org_id, Some(caller), "Set default card", Some(card_id)).await?;
    refresh_after_change(pool, &stripe, caller.org_id, &customer.customer_id).await
}

/// Removes a card after `rules::plan_removal` allows it, promoting another
/// card to default first when the removed one was the default.
pub async fn remove_card(caller: &Caller, card_id: &str) -> Result<(), AppError> {
    let state = expect_context::<AppState>();
    let pool = &state.pool;
    let stripe = stripe_of(&state)?;
    let (customer, _card) = owned_card(pool, caller, card_id).await?;

    let cards = load_cards(pool, caller.org_id, customer.default_payment_method_id.as_deref()).await?;
    let subscription = load_subscription(pool, caller.org_id).await?;
    let new_default = match rules::plan_removal(&cards, card_id, subscription.as_ref().map(|s| s.status.as_str())) {
        Removal::Allowed { new_default } => new_default,
        Removal::Refused(reason) => {
            tracing::debug!(org_id = caller.org_id, card_id, %reason, "rejected: card removal");
            return Err(AppError::Conflict(reason));
        }
    };

    if let Some(promoted) = &new_default {
        stripe
            .set_customer_default(&customer.customer_id, &promoted.id)
            .await
            .map_err(|e| stripe_error("promote default payment method", e))?;
        if let Some(subscription) = subscription.as_ref().filter(|s| rules::CHARGING_STATUSES.contains(&s.status.as_str())) {
            stripe
                .set_subscription_default(&subscription.id, &promoted.id)
                .await
                .map_err(|e| stripe_error("set subscription default", e))?;
        }
    }
    detach_if_attached(&stripe, card_id).await?;

    record_audit(pool, caller.org_id, Some(caller), "Removed card", Some(card_id)).await?;
    if let Some(promoted) = &new_default {
        record_audit(pool, caller.org_id, Some(caller), "Set default card", Some(&promoted.id)).await?;
    }
    refresh_after_change(pool, &stripe, caller.org_id, &customer.customer_id).await
}

/// Subscribes the organization to the paid plan.
pub async fn subscribe(caller: &Caller) -> Result<(), AppError> {
    let state = expect_context::<AppState>();
    let pool = &state.pool;
    let stripe = stripe_of(&state)?;

    let Some(customer) = customer_of(pool, caller.org_id).await? else {
        return Err(AppError::Conflict("Add a card before subscribing.".to_string()));
    };
    let cards = load_cards(pool, caller.org_id, customer.default_payment_method_id.as_deref()).await?;
    if cards.is_empty() {
        return Err(AppError::Conflict("Add a card before subscribing.".to_string()));
    }
    if let Some(current) = load_subscription(pool, caller.org_id).await? {
        if rules::CHARGING_STATUSES.contains(&current.status.as_str()) {
            return Err(AppError::Conflict(format!(
                "{} already has a subscription ({}).",
                caller.current.name,
                rules::status_label(&current.status)
            )));
        }
    }

    let subscription = stripe
        .create_subscription(&customer.customer_id)
        .await
        .map_err(|e| stripe_error("create subscription", e))?;

    record_audit(pool, caller.org_id, Some(caller), "Subscribed", Some(&subscription.id)).await?;
    refresh_after_change(pool, &stripe, caller.org_id, &customer.customer_id).await
}

/// Cancels every live subscription, detaches every card and sets the Free
/// plan. Each step reads Stripe's state first and skips what is done, and
/// the idempotency keys are fixed per subscription and card, so a retry
/// after a failure half-way finishes without repeating a change. Runs of
/// one organization take turns (see `cancel_lock`), so when two owners
/// cancel at once, the second finds nothing left and gets a 409.
pub async fn cancel_subscription(caller: &Caller) -> Result<(), AppError> {
    let state = expect_context::<AppState>();
    let pool = &state.pool;
    let stripe = stripe_of(&state)?;
    let _turn = super::cancel_lock::wait_for_turn(pool, caller.org_id).await?;

    let Some(customer) = customer_of(pool, caller.org_id).await? else {
        set_plan(pool, caller.org_id, "free").await?;
        return Ok(());
    };
    let subscriptions = stripe
        .list_subscriptions(&customer.customer_id)
        .await
        .map_err(|e| stripe_error("list subscriptions", e))?;
    let cards = stripe
        .list_cards(&customer.customer_id)
        .await
        .map_err(|e| stripe_error("list cards", e))?;
    let live: Vec<&Subscription> = subscriptions.iter().filter(|s| is_live(&s.status)).collect();
    if customer.cancel_started_at.is_none() && live.is_empty() && cards.is_empty() {
        tracing::debug!(user_id = caller.user_id, org_id = caller.org_id, "rejected: subscription already canceled");
        return Err(AppError::Conflict(format!(
            "The subscription of {} is already canceled, and it has no cards left, so nothing was changed.",
            caller.current.name
        )));
    }

    if customer.cancel_started_at.is_none() {
        sqlx::query("UPDATE billing_customers SET cancel_started_at = $1 WHERE org_id = $2")
            .bind(now_ms())
            .bind(caller.org_id)
            .execute(pool)
            .await
            .map_err(|e| db_error("mark cancellation started", e))?;
    }
    for subscription in live {
        stripe
            .cancel_subscription(&subscription.id)
            .await
            .map_err(|e| stripe_error("cancel subscription", e))?;
        record_audit(pool, caller.org_id, Some(caller), "Canceled subscription", Some(&subscription.id)).await?;
    }
    for card in &cards {
        detach_if_attached(&stripe, &card.id).await?;
        record_audit(pool, caller.org_id, Some(caller), "Removed card", Some(&card.id)).await?;
    }

    set_plan(pool, caller.org_id, "free").await?;
    sqlx::query("UPDATE billing_customers SET cancel_started_at = NULL WHERE org_id = $1")
        .bind(caller.org_id)
        .execute(pool)
        .await
        .map_err(|e| db_error("mark cancellation finished", e))?;
    refresh_after_change(pool, &stripe, caller.org_id, &customer.customer_id).await
}

/// Detaches a card, treating "already detached" as done.
async fn detach_if_attached(stripe: &Stripe, card_id: &str) -> Result<(), AppError> {
    let card = stripe
        .retrieve_payment_method(card_id)
        .await
        .map_err(|e| stripe_error("retrieve payment method", e))?;
    if card.customer.is_none() {
        return Ok(());
    }
    stripe
        .detach_payment_method(card_id)
        .await
        .map_err(|e| stripe_error("detach payment method", e))?;
    Ok(())
}

/// Whether Stripe may still charge a subscription in `status`, so Cancel
/// Subscription must cancel it.
fn is_live(status: &str) -> bool {
    !matches!(status, "canceled" | "incomplete_expired")
}

/// Returns the organization's customer id, creating the Stripe customer and
/// its mirror row on first use.
pub async fn ensure_customer(pool: &AnyPool, stripe: &Stripe, caller: &Caller) -> Result<String, AppError> {
    ensure_customer_for(pool, stripe, caller.org_id, &caller.current.name, &caller.email, Some(caller.user_id)).await
}

/// Like `ensure_customer`, for an organization and an actor given directly.
pub async fn ensure_customer_for(
    pool: &AnyPool,
    stripe: &Stripe,
    org_id: i64,
    org_name: &str,
    actor_email: &str,
    actor_user_id: Option<i64>,
) -> Result<String, AppError> {
    if let Some(customer) = customer_of(pool, org_id).await? {
        return Ok(customer.customer_id);
    }
    // The organization's creation time keeps the key distinct between
    // databases that share one Stripe account and reuse organization ids.
    let org_created_at: i64 = sqlx::query_scalar("SELECT created_at FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_one(pool)
        .await
        .map_err(|e| db_error("read organization", e))?;
    let customer = stripe
        .create_customer(org_id, org_created_at, org_name, actor_email)
        .await
        .map_err(|e| stripe_error("create customer", e))?;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO billing_customers \
         (org_id, stripe_customer_id, default_payment_method_id, default_state_at, synced_at) \
         VALUES ($1, $2, NULL, $3, $3) ON CONFLICT (org_id) DO NOTHING",
    )
    .bind(org_id)
    .bind(&customer.id)
    .bind(now)
    .execute(pool)
    .await
    .map_err(|e| db_error("store customer", e))?;
    insert_audit(pool, org_id, actor_user_id, actor_email, "Created Stripe customer", Some(&customer.id)).await?;

    // A concurrent first use may have stored its row first; both got the same
    // customer through the idempotency key, so either row is right.
    Ok(customer_of(pool, org_id).await?.map(|c| c.customer_id).unwrap_or(customer.id))
}

/// Returns the caller's organization's customer and the card `card_id`, or
/// 403 when the card is not one of its attached cards. Runs before any
/// Stripe request.
async fn owned_card(pool: &AnyPool, caller: &Caller, card_id: &str) -> Result<(CustomerRow, Card), AppError> {
    let Some(customer) = customer_of(pool, caller.org_id).await? else {
        return Err(forbidden_object(caller, "card", card_id));
    };
    let cards = load_cards(pool, caller.org_id, customer.default_payment_method_id.as_deref()).await?;
    match cards.into_iter().find(|c| c.id == card_id) {
        Some(card) => Ok((customer, card)),
        None => Err(forbidden_object(caller, "card", card_id)),
    }
}

fn forbidden_object(caller: &Caller, kind: &str, id: &str) -> AppError {
    tracing::debug!(user_id = caller.user_id, org_id = caller.org_id, kind, id, "rejected: object of another organization");
    AppError::Forbidden(format!("This {kind} does not belong to {}.", caller.current.name))
}

// ---------------------------------------------------------------- refresh

/// Why a refresh failed: Stripe (the page can fall back to the mirror) or
/// the database.
#[derive(Debug)]
pub enum RefreshError {
    Stripe(StripeFailure),
    App(AppError),
}

/// Refreshes the mirror after a change; a failure here means the change
/// happened but the page may lag until the next refresh or webhook.
async fn refresh_after_change(pool: &AnyPool, stripe: &Stripe, org_id: i64, customer_id: &str) -> Result<(), AppError> {
    match refresh(pool, stripe, org_id, customer_id).await {
        Ok(()) => Ok(()),
        Err(RefreshError::Stripe(failure)) => Err(stripe_error("refresh billing mirror", failure)),
        Err(RefreshError::App(error)) => Err(error),
    }
}

/// Reads the customer, cards, subscriptions and invoices from Stripe and
/// replaces the organization's mirror with them in one transaction.
pub async fn refresh(pool: &AnyPool, stripe: &Stripe, org_id: i64, customer_id: &str) -> Result<(), RefreshError> {
    let customer = stripe.retrieve_customer(customer_id).await.map_err(RefreshError::Stripe)?;
    let cards = stripe.list_cards(customer_id).await.map_err(RefreshError::Stripe)?;
    let subscriptions = stripe.list_subscriptions(customer_id).await.map_err(RefreshError::Stripe)?;
    let invoices = stripe.list_invoices(customer_id).await.map_err(RefreshError::Stripe)?;
    // Event times are whole seconds, so the state is dated to the start of
    // its second: an event from the same second is applied, not dropped as
    // stale. The next refresh corrects the rare older event of that second.
    let now = now_ms() / 1000 * 1000;
    let app = |e| RefreshError::App(db_error("refresh billing mirror", e));

    let mut tx = pool.begin().await.map_err(app)?;
    sqlx::query(
        "UPDATE billing_customers SET default_payment_method_id = $1, default_state_at = $2, synced_at = $2 \
         WHERE org_id = $3",
    )
    .bind(customer.default_payment_method())
    .bind(now)
    .bind(org_id)
    .execute(&mut *tx)
    .await
    .map_err(app)?;

    let attached: Vec<String> =
        sqlx::query_scalar("SELECT payment_method_id FROM billing_cards WHERE org_id = $1 AND detached_at IS NULL")
            .bind(org_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(app)?;
    for id in attached.iter().filter(|id| !cards.iter().any(|c| &c.id == *id)) {
        mark_detached(&mut tx, id, now).await.map_err(app)?;
    }
    for card in &cards {
        upsert_card(&mut tx, org_id, card, now).await.map_err(app)?;
    }

    match current_subscription(&subscriptions) {
        Some(subscription) => {
            upsert_subscription(&mut tx, org_id, subscription, now).await.map_err(app)?;
            set_plan_tx(&mut tx, org_id, plan_for_status(&subscription.status)).await.map_err(app)?;
        }
        None => {
            sqlx::query("DELETE FROM billing_subscriptions WHERE org_id = $1")
                .bind(org_id)
                .execute(&mut *tx)
                .await
                .map_err(app)?;
            set_plan_tx(&mut tx, org_id, "free").await.map_err(app)?;
        }
    }

    sqlx::query("DELETE FROM billing_invoices WHERE org_id = $1")
        .bind(org_id)
        .execute(&mut *tx)
        .await
        .map_err(app)?;
    for invoice in &invoices {
        let status = invoice.status.as_deref().unwrap_or("draft");
        upsert_invoice(&mut tx, org_id, invoice, status).await.map_err(app)?;
    }
    tx.commit().await.map_err(app)?;
    Ok(())
}

/// Picks the subscription the page shows: the newest one Stripe may still
/// charge, else the newest of all.
fn current_subscription(subscriptions: &[Subscription]) -> Option<&Subscription> {
    subscriptions
        .iter()
        .filter(|s| is_live(&s.status))
        .max_by_key(|s| s.created)
        .or_else(|| subscriptions.iter().max_by_key(|s| s.created))
}

/// Returns the organization plan that a subscription status gives.
pub fn plan_for_status(status: &str) -> &'static str {
    if rules::CHARGING_STATUSES.contains(&status) {
        "paid"
    } else {
        "free"
    }
}

async fn upsert_card(tx: &mut Transaction<'_, Any>, org_id: i64, card: &PaymentMethod, state_at: i64) -> Result<(), sqlx::Error> {
    let Some(details) = &card.card else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO billing_cards \
         (payment_method_id, org_id, brand, last4, exp_month, exp_year, added_at, first_seen_at, detached_at, state_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $9, NULL, $8) \
         ON CONFLICT (payment_method_id) DO UPDATE SET org_id = excluded.org_id, brand = excluded.brand, \
         last4 = excluded.last4, exp_month = excluded.exp_month, exp_year = excluded.exp_year, \
         detached_at = NULL, state_at = excluded.state_at",
    )
    .bind(&card.id)
    .bind(org_id)
    .bind(&details.brand)
    .bind(&details.last4)
    .bind(details.exp_month)
    .bind(details.exp_year)
    .bind(card.created * 1000)
    .bind(state_at)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn mark_detached(tx: &mut Transaction<'_, Any>, card_id: &str, at: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE billing_cards SET detached_at = $1, state_at = $1 WHERE payment_method_id = $2")
        .bind(at)
        .bind(card_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Mirrors `subscription` for `org_id`, stamped with the time of the state it
/// shows.
pub(crate) async fn upsert_subscription(tx: &mut Transaction<'_, Any>, org_id: i64, subscription: &Subscription, state_at: i64) -> Result<(), sqlx::Error> {
    let view = subscription_view(subscription);
    sqlx::query(
        "INSERT INTO billing_subscriptions \
         (org_id, stripe_subscription_id, status, plan_name, amount, currency, billing_interval, current_period_end, state_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (org_id) DO UPDATE SET stripe_subscription_id = excluded.stripe_subscription_id, \
         status = excluded.status, plan_name = excluded.plan_name, amount = excluded.amount, \
         currency = excluded.currency, billing_interval = excluded.billing_interval, \
         current_period_end = excluded.current_period_end, state_at = excluded.state_at",
    )
    .bind(org_id)
    .bind(&view.id)
    .bind(&view.status)
    .bind(&view.plan_name)
    .bind(view.amount)
    .bind(&view.currency)
    .bind(&view.interval)
    .bind(view.current_period_end)
    .bind(state_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Reads plan, price and period end from either object shape: the price and
/// per-item period end of current API versions, or the plan and top-level
/// period end of older ones and localstripe.
pub fn subscription_view(subscription: &Subscription) -> SubscriptionView {
    let item = subscription.items.data.first();
    let plan = item.and_then(|i| i.plan.as_ref());
    let price = item.and_then(|i| i.price.as_ref());

    let amount = price.and_then(|p| p.unit_amount).or_else(|| plan.and_then(|p| p.amount)).unwrap_or(0);
    let currency = price
        .map(|p| p.currency.clone())
        .or_else(|| plan.map(|p| p.currency.clone()))
        .unwrap_or_else(|| "usd".to_string());
    let interval = price
        .and_then(|p| p.recurring.as_ref().map(|r| r.interval.clone()))
        .or_else(|| plan.map(|p| p.interval.clone()))
        .unwrap_or_else(|| "month".to_string());
    let plan_name = price
        .and_then(|p| p.nickname.clone())
        .or_else(|| plan.and_then(|p| p.nickname.clone().or_else(|| p.name.clone())))
        .unwrap_or_else(|| "Paid plan".to_string());
    let period_end = item.and_then(|i| i.current_period_end).or(subscription.current_period_end);

    SubscriptionView {
        id: subscription.id.clone(),
        status: subscription.status.clone(),
        plan_name,
        amount,
        currency,
        interval,
        current_period_end: period_end.map(|seconds| seconds * 1000),
    }
}

/// Mirrors `invoice` of `org_id` with `status`, which a webhook may take
/// from its event type rather than from the object.
pub(crate) async fn upsert_invoice(
    tx: &mut Transaction<'_, Any>,
    org_id: i64,
    invoice: &super::stripe::Invoice,
    status: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO billing_invoices \
         (invoice_id, org_id, number, created_at, amount_due, currency, status, hosted_invoice_url) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (invoice_id) DO UPDATE SET status = excluded.status, amount_due = excluded.amount_due, \
         hosted_invoice_url = excluded.hosted_invoice_url",
    )
    .bind(&invoice.id)
    .bind(org_id)
    .bind(&invoice.number)
    .bind(invoice.created * 1000)
    .bind(invoice.amount_due)
    .bind(&invoice.currency)
    .bind(status)
    .bind(&invoice.hosted_invoice_url)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn set_plan(pool: &AnyPool, org_id: i64, plan: &str) -> Result<(), AppError> {
    sqlx::query("UPDATE organizations SET plan = $1 WHERE id = $2")
        .bind(plan)
        .bind(org_id)
        .execute(pool)
        .await
        .map_err(|e| db_error("set plan", e))?;
    Ok(())
}

async fn set_plan_tx(tx: &mut Transaction<'_, Any>, org_id: i64, plan: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE organizations SET plan = $1 WHERE id = $2")
        .bind(plan)
        .bind(org_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------- reads

/// Returns the mirrored customer of `org_id`, if it has one.
pub async fn customer_of(pool: &AnyPool, org_id: i64) -> Result<Option<CustomerRow>, AppError> {
    let row = sqlx::query(
        "SELECT stripe_customer_id, default_payment_method_id, synced_at, cancel_started_at \
         FROM billing_customers WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_optional(pool)
    .await
    .map_err(|e| db_error("look up customer", e))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let read = |e| db_error("read customer", e);
    Ok(Some(CustomerRow {
        customer_id: row.try_get(0).map_err(read)?,
        default_payment_method_id: row.try_get(1).map_err(read)?,
        synced_at: row.try_get(2).map_err(read)?,
        cancel_started_at: row.try_get(3).map_err(read)?,
    }))
}

/// Returns the organization's attached cards, newest first.
pub async fn load_cards(pool: &AnyPool, org_id: i64, default_id: Option<&str>) -> Result<Vec<Card>, AppError> {
    let rows = sqlx::query(
        "SELECT payment_method_id, brand, last4, exp_month, exp_year, added_at FROM billing_cards \
         WHERE org_id = $1 AND detached_at IS NULL ORDER BY added_at DESC, first_seen_at DESC, payment_method_id DESC",
    )
    .bind(org_id)
    .fetch_all(pool)
    .await
    .map_err(|e| db_error("list cards", e))?;

    let today = chrono::Utc::now().date_naive();
    let read = |e| db_error("read card", e);
    rows.iter()
        .map(|row| {
            let id: String = row.try_get(0).map_err(read)?;
            let exp_month: i64 = row.try_get(3).map_err(read)?;
            let exp_year: i64 = row.try_get(4).map_err(read)?;
            Ok(Card {
                is_default: Some(id.as_str()) == default_id,
                id,
                brand: row.try_get(1).map_err(read)?,
                last4: row.try_get(2).map_err(read)?,
                exp_month,
                exp_year,
                added_at: row.try_get(5).map_err(read)?,
                expiry: rules::card_expiry(exp_month, exp_year, today),
            })
        })
        .collect()
}

/// Returns the mirrored subscription of `org_id`, if any.
pub async fn load_subscription(pool: &AnyPool, org_id: i64) -> Result<Option<SubscriptionView>, AppError> {
    let row = sqlx::query(
        "SELECT stripe_subscription_id, status, plan_name, amount, currency, billing_interval, current_period_end \
         FROM billing_subscriptions WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_optional(pool)
    .await
    .map_err(|e| db_error("look up subscription", e))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let read = |e| db_error("read subscription", e);
    Ok(Some(SubscriptionView {
        id: row.try_get(0).map_err(read)?,
        status: row.try_get(1).map_err(read)?,
        plan_name: row.try_get(2).map_err(read)?,
        amount: row.try_get(3).map_err(read)?,
        currency: row.try_get(4).map_err(read)?,
        interval: row.try_get(5).map_err(read)?,
        current_period_end: row.try_get(6).map_err(read)?,
    }))
}

async fn load_invoices(pool: &AnyPool, org_id: i64) -> Result<Vec<InvoiceView>, AppError> {
    let rows = sqlx::query(
        "SELECT invoice_id, number, created_at, amount_due, currency, status, hosted_invoice_url \
         FROM billing_invoices WHERE org_id = $1 ORDER BY created_at DESC, invoice_id DESC LIMIT 10",
    )
    .bind(org_id)
    .fetch_all(pool)
    .await
    .map_err(|e| db_error("list invoices", e))?;
    let read = |e| db_error("read invoice", e);
    rows.iter()
        .map(|row| {
            Ok(InvoiceView {
                id: row.try_get(0).map_err(read)?,
                number: row.try_get(1).map_err(read)?,
                created_at: row.try_get(2).map_err(read)?,
                amount_due: row.try_get(3).map_err(read)?,
                currency: row.try_get(4).map_err(read)?,
                status: row.try_get(5).map_err(read)?,
                hosted_invoice_url: row.try_get(6).map_err(read)?,
            })
        })
        .collect()
}

/// Returns the organization's 50 most recent billing changes.
pub async fn load_audit_log(pool: &AnyPool, org_id: i64) -> Result<Vec<AuditEntry>, AppError> {
    let rows = sqlx::query(
        "SELECT actor, action, target, created_at FROM billing_audit_log \
         WHERE org_id = $1 ORDER BY created_at DESC, id DESC LIMIT 50",
    )
    .bind(org_id)
    .fetch_all(pool)
    .await
    .map_err(|e| db_error("list audit log", e))?;
    let read = |e| db_error("read audit log", e);
    rows.iter()
        .map(|row| {
            Ok(AuditEntry {
                actor: row.try_get(0).map_err(read)?,
                action: row.try_get(1).map_err(read)?,
                target: row.try_get(2).map_err(read)?,
                created_at: row.try_get(3).map_err(read)?,
            })
        })
        .collect()
}

async fn load_overview(pool: &AnyPool, caller: &Caller, stale: bool, billing_available: bool) -> Result<BillingOverview, AppError> {
    let customer = customer_of(pool, caller.org_id).await?;
    let default_id = customer.as_ref().and_then(|c| c.default_payment_method_id.clone());
    let can_manage = caller.role == crate::auth::Role::Owner;

    let owners: Vec<String> = sqlx::query(
        "SELECT u.name, u.email FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = $1 AND m.role = 'owner' ORDER BY u.name, u.email",
    )
    .bind(caller.org_id)
    .fetch_all(pool)
    .await
    .map_err(|e| db_error("list owners", e))?
    .iter()
    .map(|row| {
        let name: String = row.try_get(0).map_err(|e| db_error("read owner", e))?;
        let email: String = row.try_get(1).map_err(|e| db_error("read owner", e))?;
        Ok(format!("{name} <{email}>"))
    })
    .collect::<Result<_, AppError>>()?;
    let plan: String = sqlx::query_scalar("SELECT plan FROM organizations WHERE id = $1")
        .bind(caller.org_id)
        .fetch_one(pool)
        .await
        .map_err(|e| db_error("read plan", e))?;

    Ok(BillingOverview {
        org_name: caller.current.name.clone(),
        can_manage,
        owners,
        plan,
        subscription: load_subscription(pool, caller.org_id).await?,
        cards: load_cards(pool, caller.org_id, default_id.as_deref()).await?,
        invoices: load_invoices(pool, caller.org_id).await?,
        audit_log: if can_manage { load_audit_log(pool, caller.org_id).await? } else { Vec::new() },
        synced_at: customer.as_ref().map(|c| c.synced_at),
        stale,
        cancel_unfinished: customer.as_ref().is_some_and(|c| c.cancel_started_at.is_some()),
        billing_available,
    })
}

/// Records one billing change by `caller`, or by the webhook when `None`.
pub async fn record_audit(
    pool: &AnyPool,
    org_id: i64,
    caller: Option<&Caller>,
    action: &str,
    target: Option<&str>,
) -> Result<(), AppError> {
    let actor = caller.map(|c| c.email.clone()).unwrap_or_else(|| WEBHOOK_ACTOR.to_string());
    insert_audit(pool, org_id, caller.map(|c| c.user_id), &actor, action, target).await
}

/// Records one billing change by `actor`, a user's email or a system name.
pub async fn insert_audit(
    pool: &AnyPool,
    org_id: i64,
    user_id: Option<i64>,
    actor: &str,
    action: &str,
    target: Option<&str>,
) -> Result<(), AppError> {
    sqlx::query(
        "INSERT INTO billing_audit_log (org_id, user_id, actor, action, target, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(now_ms())
    .execute(pool)
    .await
    .map_err(|e| db_error("record billing audit", e))?;
    Ok(())
}

pub use super::webhook::{apply_event, EventOutcome, WebhookEvent};
