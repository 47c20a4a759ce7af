//! Error mapping and clock helpers shared by every server function.

use std::fmt::Display;

use crate::error::AppError;

/// Logs an unexpected failure with its cause and returns the error the
/// client receives: a request id in place of the cause.
pub fn internal(context: &str, error: impl Display) -> AppError {
    let request_id = new_request_id();
    tracing::error!(context, %request_id, error = %error, "request failed");
    AppError::Internal { request_id }
}

/// Maps a database error like `internal`, except that a lost connection or
/// an exhausted pool becomes 503, since retrying later can succeed.
pub fn db_error(context: &str, error: sqlx::Error) -> AppError {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            tracing::warn!(context, error = %error, "database unavailable");
            AppError::Unavailable(
                "The database is unavailable right now. Try again in a few seconds.".to_string(),
            )
        }
        other => internal(context, other),
    }
}

/// Returns 12 random hex digits that tie a client's error to a log line.
pub fn new_request_id() -> String {
    use rand::Rng;
    let value: u64 = rand::thread_rng().gen();
    format!("{:012x}", value & 0xffff_ffff_ffff)
}

/// Returns the current time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
