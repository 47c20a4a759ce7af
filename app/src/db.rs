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

/// Maps a database error like `internal`, except that an error for which
/// `is_unavailable` is true becomes 503, because retrying later can succeed.
pub fn db_error(context: &str, error: sqlx::Error) -> AppError {
    if is_unavailable(&error) {
        tracing::warn!(context, error = %error, "database unavailable");
        return AppError::Unavailable(
            "The database is unavailable right now. Try again in a few seconds.".to_string(),
        );
    }
    internal(context, error)
}

/// Returns whether `error` means that the database cannot serve requests
/// for now, rather than that the request is wrong. That is the case when no
/// connection could be had in time, a connection broke, the PostgreSQL
/// server is shutting down, starting or out of connections, or SQLite
/// stayed busy for the whole busy timeout.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(database_error) => {
            database_error.code().is_some_and(|code| is_unavailable_code(&code))
        }
        _ => false,
    }
}

/// Returns whether a database error code is one of `is_unavailable`'s.
/// PostgreSQL codes are SQLSTATEs: class 08 is a connection failure, 57P01
/// to 57P03 an administrator shutdown, a crash or a server that cannot
/// accept connections yet, 53300 too many connections. SQLite codes are
/// extended result codes, and SQLITE_BUSY and SQLITE_LOCKED count.
fn is_unavailable_code(code: &str) -> bool {
    if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300") {
        return true;
    }
    is_sqlite_busy(code)
}

/// Returns whether a transaction failed only because another one got in
/// its way, so that running it again at once can succeed. That is the case
/// when PostgreSQL broke a deadlock (40P01) or a serialization conflict
/// (40001), or when SQLite stayed busy or locked for the whole busy timeout.
pub fn is_transaction_conflict(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(database_error) = error else {
        return false;
    };
    database_error.code().is_some_and(|code| {
        matches!(code.as_ref(), "40P01" | "40001") || is_sqlite_busy(&code)
    })
}

/// Returns whether `code` is a SQLite extended result code whose primary
/// code (the low byte) is SQLITE_BUSY (5) or SQLITE_LOCKED (6). SQLite's
/// codes have at most four digits, PostgreSQL's SQLSTATEs always five.
fn is_sqlite_busy(code: &str) -> bool {
    code.len() < 5 && code.parse::<i32>().is_ok_and(|extended| matches!(extended & 0xff, 5 | 6))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_codes_of_both_databases() {
        for code in ["08006", "08001", "57P01", "57P03", "53300", "5", "517", "6", "262"] {
            assert!(is_unavailable_code(code), "{code} should count as unavailable");
        }
        for code in ["23505", "42P01", "40P01", "22005", "19", "2067", "1"] {
            assert!(!is_unavailable_code(code), "{code} should not count as unavailable");
        }
    }
}
