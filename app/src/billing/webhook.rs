//! Applying Stripe webhook events to the mirror. The signature is checked
//! by the HTTP handler before an event gets here.
//!
//! Events are read into our own type, not async-stripe's `Event`, because
//! localstripe's events lack fields async-stripe requires
//! (`pending_webhooks`). The object inside is read with the same types as
//! API responses.

use serde::Deserialize;
use sqlx::{Any, AnyPool, Row, Transaction};

use super::ssr::{plan_for_status, upsert_invoice, upsert_subscription, WEBHOOK_ACTOR};
use super::stripe::{Customer, Invoice, PaymentMethod, Subscription};
use crate::db::{db_error, now_ms};
use crate::error::AppError;

/// The fields of a Stripe event that billing reads.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Creation time, seconds since the Unix epoch.
    pub created: i64,
    pub data: EventData,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventData {
    pub object: serde_json::Value,
}

/// The result of handling one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// The mirror now reflects the event.
    Applied,
    /// The event id was handled before; nothing changed.
    Duplicate,
    /// The mirror already contains newer state than the event, so nothing
    /// changed.
    Stale,
    /// The event is not about a mirrored organization, or of a type billing
    /// does not use; nothing changed.
    Ignored(String),
}

impl EventOutcome {
    fn label(&self) -> String {
        match self {
            EventOutcome::Applied => "applied".to_string(),
            EventOutcome::Duplicate => "duplicate".to_string(),
            EventOutcome::Stale => "stale".to_string(),
            EventOutcome::Ignored(reason) => format!("ignored: {reason}"),
        }
    }
}

/// Applies `event` once: its id is stored in the same transaction as the
/// change, so a redelivery returns `Duplicate`. An event created before the
/// mirrored state it would overwrite returns `Stale`, because Stripe does
/// not deliver events in order.
pub async fn apply_event(pool: &AnyPool, event: &WebhookEvent) -> Result<EventOutcome, AppError> {
    let db = |e| db_error("apply webhook event", e);
    let mut tx = pool.begin().await.map_err(db)?;

    let inserted = sqlx::query(
        "INSERT INTO billing_webhook_events (event_id, event_type, created_at, received_at, outcome) \
         VALUES ($1, $2, $3, $4, 'processing') ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&event.id)
    .bind(&event.event_type)
    .bind(event.created * 1000)
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if inserted.rows_affected() == 0 {
        return Ok(EventOutcome::Duplicate);
    }

    let outcome = dispatch(&mut tx, event).await.map_err(|e| match e {
        EventError::Db(error) => db(error),
        EventError::Unreadable(cause) => AppError::BadRequest(format!(
            "The {} event {} has an object this server cannot read: {cause}",
            event.event_type, event.id
        )),
    })?;

    sqlx::query("UPDATE billing_webhook_events SET outcome = $1 WHERE event_id = $2")
        .bind(outcome.label())
        .bind(&event.id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    tracing::info!(event_id = %event.id, event_type = %event.event_type, outcome = %outcome.label(), "webhook event handled");
    Ok(outcome)
}

enum EventError {
    Db(sqlx::Error),
    Unreadable(String),
}

impl From<sqlx::Error> for EventError {
    fn from(error: sqlx::Error) -> Self {
        EventError::Db(error)
    }
}

fn object<T: serde::de::DeserializeOwned>(event: &WebhookEvent) -> Result<T, EventError> {
    serde_json::from_value(event.data.object.clone()).map_err(|e| EventError::Unreadable(e.to_string()))
}

async fn dispatch(tx: &mut Transaction<'_, Any>, event: &WebhookEvent) -> Result<EventOutcome, EventError> {
    let event_at = event.created * 1000;
    match event.event_type.as_str() {
        "customer.subscription.created" | "customer.subscription.updated" | "customer.subscription.deleted" => {
            apply_subscription(tx, &object(event)?, event_at).await
        }
        "payment_method.attached" | "payment_method.updated" => apply_card(tx, &object(event)?, event_at).await,
        "payment_method.detached" => apply_detach(tx, &object(event)?, event_at).await,
        "customer.updated" => apply_customer(tx, &object(event)?, event_at).await,
        // localstripe sends invoice.payment_succeeded where Stripe also
        // sends invoice.paid; both carry the paid invoice.
        "invoice.paid" | "invoice.payment_succeeded" | "invoice.payment_failed" => {
            apply_invoice(tx, &object(event)?).await
        }
        other => Ok(EventOutcome::Ignored(format!("type {other} is not used"))),
    }
}

async fn org_of_customer(tx: &mut Transaction<'_, Any>, customer_id: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT org_id FROM billing_customers WHERE stripe_customer_id = $1")
        .bind(customer_id)
        .fetch_optional(&mut **tx)
        .await
}

fn unknown_customer() -> EventOutcome {
    EventOutcome::Ignored("customer is not one of ours".to_string())
}

async fn apply_subscription(tx: &mut Transaction<'_, Any>, subscription: &Subscription, event_at: i64) -> Result<EventOutcome, EventError> {
    let Some(org_id) = org_of_customer(tx, &subscription.customer).await? else {
        return Ok(unknown_customer());
    };

    let mirrored = sqlx::query("SELECT stripe_subscription_id, status, state_at FROM billing_subscriptions WHERE org_id = $1")
        .bind(org_id)
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(row) = mirrored {
        let mirrored_id: String = row.try_get(0)?;
        let mirrored_status: String = row.try_get(1)?;
        let state_at: i64 = row.try_get(2)?;
        if event_at < state_at {
            return Ok(EventOutcome::Stale);
        }
        // Stripe never revives a canceled subscription, so any later-dated
        // event saying otherwise describes an older state.
        if mirrored_id == subscription.id && mirrored_status == "canceled" && subscription.status != "canceled" {
            return Ok(EventOutcome::Stale);
        }
        // The end of an old subscription must not replace a newer live one.
        if mirrored_id != subscription.id && mirrored_status != "canceled" && subscription.status == "canceled" {
            return Ok(EventOutcome::Ignored("a newer subscription is mirrored".to_string()));
        }
    }

    upsert_subscription(tx, org_id, subscription, event_at).await?;
    sqlx::query("UPDATE organizations SET plan = $1 WHERE id = $2")
        .bind(plan_for_status(&subscription.status))
        .bind(org_id)
        .execute(&mut **tx)
        .await?;
    audit(tx, org_id, &format!("Subscription is now {}", subscription.status.replace('_', " ")), &subscription.id).await?;
    Ok(EventOutcome::Applied)
}

async fn apply_card(tx: &mut Transaction<'_, Any>, card: &PaymentMethod, event_at: i64) -> Result<EventOutcome, EventError> {
    let Some(customer_id) = &card.customer else {
        return Ok(EventOutcome::Ignored("card has no customer".to_string()));
    };
    let Some(org_id) = org_of_customer(tx, customer_id).await? else {
        return Ok(unknown_customer());
    };
    let Some(details) = &card.card else {
        return Ok(EventOutcome::Ignored("payment method is not a card".to_string()));
    };

    let mirrored = sqlx::query("SELECT detached_at, state_at FROM billing_cards WHERE payment_method_id = $1")
        .bind(&card.id)
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(row) = mirrored {
        let detached_at: Option<i64> = row.try_get(0)?;
        let state_at: i64 = row.try_get(1)?;
        // A detached card cannot be attached again in Stripe.
        if event_at < state_at || detached_at.is_some() {
            return Ok(EventOutcome::Stale);
        }
    }

    sqlx::query(
        "INSERT INTO billing_cards \
         (payment_method_id, org_id, brand, last4, exp_month, exp_year, added_at, first_seen_at, detached_at, state_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $9, NULL, $8) \
         ON CONFLICT (payment_method_id) DO UPDATE SET brand = excluded.brand, last4 = excluded.last4, \
         exp_month = excluded.exp_month, exp_year = excluded.exp_year, state_at = excluded.state_at",
    )
    .bind(&card.id)
    .bind(org_id)
    .bind(&details.brand)
    .bind(&details.last4)
    .bind(details.exp_month)
    .bind(details.exp_year)
    .bind(card.created * 1000)
    .bind(event_at)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(EventOutcome::Applied)
}

async fn apply_detach(tx: &mut Transaction<'_, Any>, card: &PaymentMethod, event_at: i64) -> Result<EventOutcome, EventError> {
    let mirrored = sqlx::query("SELECT org_id, state_at FROM billing_cards WHERE payment_method_id = $1")
        .bind(&card.id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = mirrored else {
        return Ok(EventOutcome::Ignored("card is not mirrored".to_string()));
    };
    let org_id: i64 = row.try_get(0)?;
    let state_at: i64 = row.try_get(1)?;
    if event_at < state_at {
        return Ok(EventOutcome::Stale);
    }
    sqlx::query("UPDATE billing_cards SET detached_at = $1, state_at = $1 WHERE payment_method_id = $2")
        .bind(event_at)
        .bind(&card.id)
        .execute(&mut **tx)
        .await?;
    audit(tx, org_id, "Card removed in Stripe", &card.id).await?;
    Ok(EventOutcome::Applied)
}

async fn apply_customer(tx: &mut Transaction<'_, Any>, customer: &Customer, event_at: i64) -> Result<EventOutcome, EventError> {
    let mirrored = sqlx::query("SELECT org_id, default_state_at FROM billing_customers WHERE stripe_customer_id = $1")
        .bind(&customer.id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = mirrored else {
        return Ok(unknown_customer());
    };
    let state_at: i64 = row.try_get(1)?;
    if event_at < state_at {
        return Ok(EventOutcome::Stale);
    }
    sqlx::query(
        "UPDATE billing_customers SET default_payment_method_id = $1, default_state_at = $2 \
         WHERE stripe_customer_id = $3",
    )
    .bind(customer.default_payment_method())
    .bind(event_at)
    .bind(&customer.id)
    .execute(&mut **tx)
    .await?;
    Ok(EventOutcome::Applied)
}

async fn apply_invoice(tx: &mut Transaction<'_, Any>, invoice: &Invoice) -> Result<EventOutcome, EventError> {
    let Some(customer_id) = &invoice.customer else {
        return Ok(EventOutcome::Ignored("invoice has no customer".to_string()));
    };
    let Some(org_id) = org_of_customer(tx, customer_id).await? else {
        return Ok(unknown_customer());
    };
    let status = invoice.status.clone().unwrap_or_else(|| "open".to_string());

    let mirrored: Option<String> = sqlx::query_scalar("SELECT status FROM billing_invoices WHERE invoice_id = $1")
        .bind(&invoice.id)
        .fetch_optional(&mut **tx)
        .await?;
    // Paid is final for an invoice, so a failure reported after it is older.
    if mirrored.as_deref() == Some("paid") && status != "paid" {
        return Ok(EventOutcome::Stale);
    }

    upsert_invoice(tx, org_id, invoice, &status).await?;
    Ok(EventOutcome::Applied)
}

async fn audit(tx: &mut Transaction<'_, Any>, org_id: i64, action: &str, target: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO billing_audit_log (org_id, user_id, actor, action, target, created_at) \
         VALUES ($1, NULL, $2, $3, $4, $5)",
    )
    .bind(org_id)
    .bind(WEBHOOK_ACTOR)
    .bind(action)
    .bind(target)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
