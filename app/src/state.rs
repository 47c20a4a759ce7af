//! Application state handed to server functions through context.

use sqlx::AnyPool;

/// What every request handler and server function can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: AnyPool,
    /// Marks cookies `Secure`: true everywhere but local development.
    pub secure_cookies: bool,
}
