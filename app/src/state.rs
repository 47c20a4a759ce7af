//! Application state handed to server functions through context.

use sqlx::AnyPool;

/// The shared state of every request handler and server function.
#[derive(Clone)]
pub struct AppState {
    pub pool: AnyPool,
    /// Marks cookies `Secure`: true everywhere but local development.
    pub secure_cookies: bool,
    /// The Stripe client, or `None` when `STRIPE_SECRET_KEY` is not set, in
    /// which case billing responds with 503.
    pub stripe: Option<crate::billing::stripe::Stripe>,
    /// Recently computed usage summaries (see `usage::cache`).
    pub usage_cache: std::sync::Arc<crate::usage::cache::SummaryCache>,
}
