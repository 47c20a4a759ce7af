//! Application state handed to server functions through context.

use sqlx::AnyPool;

/// What every request handler and server function can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: AnyPool,
    /// Marks cookies `Secure`: true everywhere but local development.
    pub secure_cookies: bool,
    /// The Stripe client; `None` when `STRIPE_SECRET_KEY` is not set, and
    /// billing then answers 503.
    pub stripe: Option<crate::billing::stripe::Stripe>,
}
