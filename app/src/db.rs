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

/// Writes the bound-parameter placeholders of one statement, numbered
/// `$1, $2, …` for PostgreSQL and anonymous `?` for SQLite.
///
/// sqlx looks up the name of every parameter it binds in SQLite, and SQLite
/// finds a name by walking a list of all of them, so binding N numbered
/// parameters takes time in N². With 8,000 parameters that made inserts
/// ten times slower; anonymous ones have no names to walk. Bind values in
/// the order the placeholders were written.
pub struct Placeholders {
    numbered: bool,
    written: usize,
}

impl Placeholders {
    pub fn for_connection(conn: &sqlx::AnyConnection) -> Placeholders {
        Placeholders { numbered: conn.backend_name() != "SQLite", written: 0 }
    }

    /// Returns the next placeholder.
    pub fn next(&mut self) -> String {
        self.written += 1;
        if self.numbered {
            format!("${}", self.written)
        } else {
            "?".to_string()
        }
    }

    /// Returns `(p, p, …)` with `count` placeholders.
    pub fn tuple(&mut self, count: usize) -> String {
        let params: Vec<String> = (0..count).map(|_| self.next()).collect();
        format!("({})", params.join(", "))
    }
}
