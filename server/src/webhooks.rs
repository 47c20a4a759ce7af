//! `POST /webhooks/stripe`: Stripe's event deliveries, verified against the
//! `Stripe-Signature` header before anything is read from the body.
//! `casola_parsers::stripe_signature` parses and checks that header.

use app::billing::ssr::{apply_event, EventOutcome, WebhookEvent};
use app::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;

pub use casola_parsers::stripe_signature::{
    parse_signature_header, verify_signature, SignatureError, SignatureHeader, SIGNATURE_TOLERANCE_SECS,
};

/// Verifies and applies one event. Responds 400 for a bad signature or an
/// unreadable event (nothing changes), 200 for an applied, duplicate, stale
/// or ignored event, and 5xx when the database failed, so Stripe retries.
pub async fn stripe_webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(stripe) = state.stripe.as_ref() else {
        tracing::warn!("webhook received while STRIPE_SECRET_KEY is not set");
        return (StatusCode::SERVICE_UNAVAILABLE, "billing is not configured").into_response();
    };

    let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    let verified = match header {
        Some(header) => verify_signature(
            header,
            &body,
            stripe.settings.webhook_secret.expose_secret().as_bytes(),
            chrono::Utc::now().timestamp(),
        ),
        None => Err(SignatureError::Missing),
    };
    if let Err(error) = verified {
        tracing::warn!(%error, "rejected webhook: bad signature");
        return (StatusCode::BAD_REQUEST, format!("Invalid webhook: {error}.")).into_response();
    }

    let event: WebhookEvent = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, "rejected webhook: unreadable event");
            return (StatusCode::BAD_REQUEST, "Invalid webhook: the body is not a Stripe event.").into_response();
        }
    };

    match apply_event(&state.pool, &event).await {
        Ok(outcome) => {
            let label = match outcome {
                EventOutcome::Applied => "applied".to_string(),
                EventOutcome::Duplicate => "duplicate".to_string(),
                EventOutcome::Stale => "stale".to_string(),
                EventOutcome::Ignored(reason) => format!("ignored: {reason}"),
            };
            (StatusCode::OK, label).into_response()
        }
        Err(error) => (error.status(), error.to_string()).into_response(),
    }
}
