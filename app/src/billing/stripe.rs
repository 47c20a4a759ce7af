//! The Stripe client. Requests are async-stripe's typed builders. Responses
//! are read into this module's own types, which contain only the fields
//! billing uses and accept both Stripe's current object shapes and the older
//! ones that localstripe (the offline stand-in) returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tracing::Instrument;
use stripe_client_core::{IdempotencyKey, RequestBuilder, RequestStrategy, StripeMethod, StripeRequest};

use crate::db::{internal, new_request_id};
use crate::error::AppError;

/// Stripe's own API base, the default of `STRIPE_API_BASE`.
pub const STRIPE_API_BASE: &str = "https://api.stripe.com/";
/// Stripe.js from Stripe, the default of `STRIPE_JS_URL`.
pub const STRIPE_JS_URL: &str = "https://js.stripe.com/v3/";
/// The default of `STRIPE_REQUEST_TIMEOUT_SECS`: how long one Stripe request
/// may take before billing reports Stripe as unreachable.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Stripe settings, from the `STRIPE_*` environment variables. The secrets
/// print as `[REDACTED]` in `Debug` output.
#[derive(Debug, Clone)]
pub struct StripeSettings {
    /// `STRIPE_SECRET_KEY` (sk_…).
    pub secret_key: SecretString,
    /// `STRIPE_PUBLISHABLE_KEY` (pk_…), sent to the browser for Stripe.js.
    pub publishable_key: String,
    /// `STRIPE_WEBHOOK_SECRET` (whsec_…), the key of webhook signatures.
    pub webhook_secret: SecretString,
    /// `STRIPE_PRICE_ID`: the paid plan's recurring price (or plan) id.
    pub price_id: String,
    /// `STRIPE_API_BASE`, ending in `/`.
    pub api_base: String,
    /// `STRIPE_JS_URL`: where the browser loads Stripe.js from.
    pub js_url: String,
    /// `STRIPE_REQUEST_TIMEOUT_SECS`: how long one Stripe request may take,
    /// connecting included, before it fails as unreachable.
    pub request_timeout: Duration,
}

impl StripeSettings {
    /// Returns whether the API base is a stand-in rather than Stripe itself.
    pub fn is_stand_in(&self) -> bool {
        self.api_base != STRIPE_API_BASE
    }
}

/// A Stripe client with its settings, shared by every request.
#[derive(Clone)]
pub struct Stripe {
    client: stripe::Client,
    pub settings: Arc<StripeSettings>,
}

/// A failed Stripe request, before it is mapped to the client's error.
#[derive(Debug, thiserror::Error)]
pub enum StripeFailure {
    /// Stripe could not be reached or did not respond in time.
    #[error("Stripe is unreachable: {0}")]
    Unreachable(String),
    /// Stripe responded with an error status.
    #[error("Stripe returned status {status}: {message}")]
    Api { status: u16, code: Option<String>, message: String },
    /// Stripe responded 2xx with a body this module cannot read.
    #[error("unreadable Stripe response: {0}")]
    Unreadable(String),
}

impl StripeFailure {
    /// Returns whether Stripe reported that the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StripeFailure::Api { status: 404, .. })
    }
}

/// Maps a Stripe failure to the client's error. Unreachable is 503. A card
/// error (402) is 400 with Stripe's message, which is written for card
/// holders. Anything else is logged and becomes a 500 with a request id.
pub fn stripe_error(context: &str, failure: StripeFailure) -> AppError {
    match failure {
        StripeFailure::Unreachable(cause) => {
            tracing::warn!(context, %cause, "Stripe unreachable");
            AppError::Unavailable(
                "Stripe cannot be reached right now, so nothing was changed. Try again in a minute."
                    .to_string(),
            )
        }
        StripeFailure::Api { status: 402, message, .. } => {
            tracing::debug!(context, %message, "card error from Stripe");
            AppError::BadRequest(message)
        }
        other => internal(context, other),
    }
}

impl Stripe {
    /// Builds a client for `settings.api_base` with `settings.request_timeout`.
    pub fn new(settings: StripeSettings) -> Result<Stripe, StripeFailure> {
        let client = stripe::ClientBuilder::new(settings.secret_key.expose_secret())
            .url(settings.api_base.clone())
            .timeout(settings.request_timeout)
            .build()
            .map_err(|e| StripeFailure::Unreachable(format!("could not build the client: {e}")))?;
        Ok(Stripe { client, settings: Arc::new(settings) })
    }

    /// Sends `request` once and reads the response into `T`.
    ///
    /// `idempotency_key` is sent as Stripe's `Idempotency-Key`; give one on
    /// every request that creates or changes something.
    ///
    /// This is the one place that handles localstripe's older object shapes:
    /// async-stripe's own response types cannot read its subscriptions,
    /// invoices and products, so every response is read through
    /// miniserde's untyped value into this module's serde types instead.
    /// Against Stripe itself the same path runs.
    pub async fn send<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        idempotency_key: Option<String>,
    ) -> Result<T, StripeFailure> {
        let (request_method, request_path) = (request.method, request.path.clone());
        let mut customized = request.customize::<miniserde::json::Value>();
        if let Some(key) = idempotency_key {
            let key = IdempotencyKey::new(&key)
                .map_err(|e| StripeFailure::Unreadable(format!("invalid idempotency key {key}: {e:?}")))?;
            customized = customized.request_strategy(RequestStrategy::Idempotent(key));
        }

        let span = tracing::info_span!("stripe", method = ?request_method, path = %request_path);
        let value = customized.send(&self.client).instrument(span).await.map_err(failure_of)?;
        let text = miniserde::json::to_string(&value);
        serde_json::from_str(&text).map_err(|e| StripeFailure::Unreadable(e.to_string()))
    }

    /// Sends a typed request, as `send` does.
    pub async fn call<T: DeserializeOwned>(
        &self,
        request: &impl StripeRequest,
        idempotency_key: Option<String>,
    ) -> Result<T, StripeFailure> {
        self.send(request.build(), idempotency_key).await
    }

    /// Creates the customer of organization `org_id`, created at
    /// `org_created_at`. The idempotency key is fixed per organization, so a
    /// retry after a lost response returns the same customer, not a second.
    pub async fn create_customer(
        &self,
        org_id: i64,
        org_created_at: i64,
        name: &str,
        email: &str,
    ) -> Result<Customer, StripeFailure> {
        let metadata = HashMap::from([("casola_org_id".to_string(), org_id.to_string())]);
        let request = stripe_core::customer::CreateCustomer::new()
            .name(name)
            .email(email)
            .metadata(metadata);
        self.call(&request, Some(format!("customer-org-{org_id}-{org_created_at}"))).await
    }

    pub async fn retrieve_customer(&self, customer_id: &str) -> Result<Customer, StripeFailure> {
        let request = stripe_core::customer::RetrieveCustomer::new(customer_id);
        self.call(&request, None).await
    }

    /// Sets the customer's default payment method, used by invoices.
    pub async fn set_customer_default(&self, customer_id: &str, payment_method_id: &str) -> Result<Customer, StripeFailure> {
        let settings = stripe_core::customer::UpdateCustomerInvoiceSettings {
            default_payment_method: Some(payment_method_id.to_string()),
            ..Default::default()
        };
        let request = stripe_core::customer::UpdateCustomer::new(customer_id).invoice_settings(settings);
        self.call(&request, Some(one_time_key("default", payment_method_id))).await
    }

    /// Creates an off-session SetupIntent for the browser to confirm.
    pub async fn create_setup_intent(&self, customer_id: &str) -> Result<SetupIntent, StripeFailure> {
        let request = stripe_core::setup_intent::CreateSetupIntent::new()
            .customer(customer_id)
            .usage(stripe_core::setup_intent::CreateSetupIntentUsage::OffSession);
        self.call(&request, Some(one_time_key("setup-intent", customer_id))).await
    }

    pub async fn retrieve_setup_intent(&self, setup_intent_id: &str) -> Result<SetupIntent, StripeFailure> {
        let request = stripe_core::setup_intent::RetrieveSetupIntent::new(setup_intent_id);
        self.call(&request, None).await
    }

    pub async fn retrieve_payment_method(&self, payment_method_id: &str) -> Result<PaymentMethod, StripeFailure> {
        let request = stripe_payment::payment_method::RetrievePaymentMethod::new(payment_method_id);
        self.call(&request, None).await
    }

    /// Attaches a card to a customer. A card is attached at most once, so
    /// the idempotency key is fixed per card and customer.
    pub async fn attach_payment_method(&self, payment_method_id: &str, customer_id: &str) -> Result<PaymentMethod, StripeFailure> {
        let request = stripe_payment::payment_method::AttachPaymentMethod::new(payment_method_id).customer(customer_id);
        self.call(&request, Some(format!("attach-{payment_method_id}-{customer_id}"))).await
    }

    /// Detaches a card. A detached card cannot be attached again, so the key
    /// is fixed per card and a retry repeats nothing.
    pub async fn detach_payment_method(&self, payment_method_id: &str) -> Result<PaymentMethod, StripeFailure> {
        let request = stripe_payment::payment_method::DetachPaymentMethod::new(payment_method_id);
        self.call(&request, Some(format!("detach-{payment_method_id}"))).await
    }

    /// Lists the customer's cards, at most 100 (Stripe's page limit).
    pub async fn list_cards(&self, customer_id: &str) -> Result<Vec<PaymentMethod>, StripeFailure> {
        let request = stripe_payment::payment_method::ListPaymentMethod::new()
            .customer(customer_id)
            .type_(stripe_payment::payment_method::ListPaymentMethodType::Card)
            .limit(100);
        let list: List<PaymentMethod> = self.call(&request, None).await?;
        Ok(list.data)
    }

    /// Subscribes the customer to the paid plan. The price goes in
    /// `items[0][plan]`, which Stripe accepts for a recurring price id and
    /// localstripe needs (it has no prices).
    pub async fn create_subscription(&self, customer_id: &str) -> Result<Subscription, StripeFailure> {
        let item = stripe_billing::subscription::CreateSubscriptionItems {
            plan: Some(self.settings.price_id.clone()),
            ..Default::default()
        };
        let request = stripe_billing::subscription::CreateSubscription::new()
            .customer(customer_id)
            .items(vec![item]);
        self.call(&request, Some(one_time_key("subscribe", customer_id))).await
    }

    /// Cancels a subscription at once. Canceling is final, so the key is
    /// fixed per subscription.
    pub async fn cancel_subscription(&self, subscription_id: &str) -> Result<Subscription, StripeFailure> {
        let request = stripe_billing::subscription::CancelSubscription::new(subscription_id);
        self.call(&request, Some(format!("cancel-{subscription_id}"))).await
    }

    /// Makes `payment_method_id` the card a subscription charges.
    pub async fn set_subscription_default(&self, subscription_id: &str, payment_method_id: &str) -> Result<(), StripeFailure> {
        // NOTE: localstripe 1.15.10 rejects `default_payment_method` on
        // subscriptions ("Unexpected default_payment_method") and always
        // charges the customer's default, which the caller has just set. So
        // against the stand-in this step is skipped; against Stripe it runs.
        if self.settings.is_stand_in() {
            return Ok(());
        }
        let request = stripe_billing::subscription::UpdateSubscription::new(subscription_id)
            .default_payment_method(payment_method_id);
        let _: Subscription = self
            .call(&request, Some(one_time_key("subscription-default", payment_method_id)))
            .await?;
        Ok(())
    }

    /// Lists the customer's subscriptions in every status, newest first.
    pub async fn list_subscriptions(&self, customer_id: &str) -> Result<Vec<Subscription>, StripeFailure> {
        let request = stripe_billing::subscription::ListSubscription::new()
            .customer(customer_id)
            .status(stripe_billing::subscription::ListSubscriptionStatus::All)
            .limit(20);
        let list: List<Subscription> = self.call(&request, None).await?;
        Ok(list.data)
    }

    /// Creates a card from raw card details. Only Stripe's test mode and
    /// localstripe accept this. The product never calls it: only the demo
    /// seed and the tests do, in place of the browser's Stripe.js.
    pub async fn create_test_card(&self, number: &str, exp_month: u32, exp_year: i32) -> Result<PaymentMethod, StripeFailure> {
        #[derive(serde::Serialize)]
        struct CardParams<'a> {
            number: &'a str,
            exp_month: u32,
            exp_year: i32,
            cvc: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Form<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            card: CardParams<'a>,
        }
        let form = Form { kind: "card", card: CardParams { number, exp_month, exp_year, cvc: "123" } };
        let request = RequestBuilder::new(StripeMethod::Post, "/payment_methods").form(&form);
        self.send(request, Some(one_time_key("test-card", &number[number.len().saturating_sub(4)..]))).await
    }

    /// Creates the paid plan in the stand-in, which has no prices: a monthly
    /// plan with id `STRIPE_PRICE_ID`, unless it exists. Refuses against
    /// Stripe itself, where the price is set up in the dashboard.
    pub async fn ensure_stand_in_plan(&self, amount_cents: i64, currency: &str, name: &str) -> Result<(), StripeFailure> {
        if !self.settings.is_stand_in() {
            return Err(StripeFailure::Unreadable("refusing to create a plan in Stripe itself".to_string()));
        }
        let path = format!("/plans/{}", self.settings.price_id);
        match self.send::<serde_json::Value>(RequestBuilder::new(StripeMethod::Get, path), None).await {
            Ok(_) => return Ok(()),
            Err(failure) if failure.is_not_found() => {}
            Err(failure) => return Err(failure),
        }
        #[derive(serde::Serialize)]
        struct Product<'a> {
            name: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Form<'a> {
            id: &'a str,
            amount: i64,
            currency: &'a str,
            interval: &'a str,
            nickname: &'a str,
            product: Product<'a>,
        }
        let form = Form {
            id: &self.settings.price_id,
            amount: amount_cents,
            currency,
            interval: "month",
            nickname: name,
            product: Product { name },
        };
        let request = RequestBuilder::new(StripeMethod::Post, "/plans").form(&form);
        let _: serde_json::Value = self.send(request, Some(one_time_key("plan", &self.settings.price_id))).await?;
        Ok(())
    }

    /// Lists the customer's 10 most recent invoices.
    pub async fn list_invoices(&self, customer_id: &str) -> Result<Vec<Invoice>, StripeFailure> {
        let request = stripe_billing::invoice::ListInvoice::new().customer(customer_id).limit(10);
        let list: List<Invoice> = self.call(&request, None).await?;
        Ok(list.data)
    }
}

/// Returns an idempotency key for one user action. A retry of the same
/// request reuses it. A later action (setting card A as default again after
/// B) gets a new key, because Stripe would replay an old key's response
/// without applying the change.
fn one_time_key(action: &str, object_id: &str) -> String {
    format!("{action}-{object_id}-{}", new_request_id())
}

fn failure_of(error: stripe::StripeError) -> StripeFailure {
    match error {
        stripe::StripeError::Stripe(api, status) => StripeFailure::Api {
            status,
            code: api.code.map(|c| c.as_str().to_string()),
            message: api.message.unwrap_or_else(|| format!("status {status}")),
        },
        stripe::StripeError::ClientError(cause) => StripeFailure::Unreachable(cause),
        stripe::StripeError::Timeout => StripeFailure::Unreachable("timed out".to_string()),
        stripe::StripeError::JSONDeserialize(cause) => StripeFailure::Unreadable(cause),
        stripe::StripeError::ConfigError(cause) => StripeFailure::Unreachable(cause),
    }
}

/// One page of a Stripe list.
#[derive(Debug, Clone, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
}

/// The fields of a Stripe customer that billing reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Customer {
    pub id: String,
    /// Set on a customer deleted in the Stripe dashboard.
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub invoice_settings: Option<CustomerInvoiceSettings>,
}

impl Customer {
    /// Returns the id of the customer's default payment method, if any.
    pub fn default_payment_method(&self) -> Option<String> {
        self.invoice_settings.as_ref().and_then(|s| s.default_payment_method.clone())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CustomerInvoiceSettings {
    pub default_payment_method: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SetupIntent {
    pub id: String,
    pub client_secret: Option<String>,
    pub customer: Option<String>,
    pub payment_method: Option<String>,
    /// requires_payment_method, requires_confirmation, requires_action,
    /// processing, canceled or succeeded.
    pub status: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentMethod {
    pub id: String,
    /// Creation time, seconds since the Unix epoch.
    pub created: i64,
    pub customer: Option<String>,
    pub card: Option<CardDetails>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CardDetails {
    pub brand: String,
    pub last4: String,
    pub exp_month: i64,
    pub exp_year: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub customer: String,
    pub status: String,
    /// Creation time, seconds since the Unix epoch.
    pub created: i64,
    /// The period end in API versions before 2025-03-31 and in localstripe.
    /// Newer versions put it on each item.
    #[serde(default)]
    pub current_period_end: Option<i64>,
    pub items: List<SubscriptionItem>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionItem {
    #[serde(default)]
    pub current_period_end: Option<i64>,
    #[serde(default)]
    pub plan: Option<Plan>,
    #[serde(default)]
    pub price: Option<Price>,
}

/// A legacy plan, which Stripe still returns beside the price and
/// localstripe returns alone.
#[derive(Debug, Clone, Deserialize)]
pub struct Plan {
    pub id: String,
    pub amount: Option<i64>,
    pub currency: String,
    pub interval: String,
    #[serde(default)]
    pub nickname: Option<String>,
    /// localstripe's product name on the plan.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Price {
    pub id: String,
    pub unit_amount: Option<i64>,
    pub currency: String,
    #[serde(default)]
    pub nickname: Option<String>,
    pub recurring: Option<PriceRecurring>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PriceRecurring {
    pub interval: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Invoice {
    pub id: String,
    /// Creation time, seconds since the Unix epoch.
    pub created: i64,
    #[serde(default)]
    pub number: Option<String>,
    pub amount_due: i64,
    pub currency: String,
    #[serde(default)]
    pub status: Option<String>,
    /// Absent in localstripe, which has no hosted invoice pages.
    #[serde(default)]
    pub hosted_invoice_url: Option<String>,
    pub customer: Option<String>,
}
