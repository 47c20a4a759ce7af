//! Taking turns at Cancel Subscription, so that owners who cancel at the
//! same moment, on one server or on several that share a database, cancel
//! once: the second run starts after the first has finished and finds
//! nothing left to cancel.

use std::time::Duration;

use sqlx::{Any, AnyPool, Transaction};

use crate::db::db_error;
use crate::error::AppError;

/// How long a run waits for another run of the same organization to
/// finish. A run makes about ten Stripe requests, each bounded by
/// `STRIPE_REQUEST_TIMEOUT_SECS` (default 10 s), so this covers most runs.
const WAIT_FOR_TURN: Duration = Duration::from_secs(60);

/// The high 32 bits of the PostgreSQL advisory lock key of an
/// organization's cancellation ("CANC" in ASCII). The low 32 bits are the
/// organization id, so ids above 2^32 would share keys.
const ADVISORY_KEY_PREFIX: i64 = 0x4341_4e43 << 32;

/// SQLite serves a single server process, so one lock in memory orders
/// every cancellation of that process.
static SQLITE_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A held turn. Dropping it lets the next run start.
pub enum CancelTurn {
    /// An open transaction that holds a transaction-level advisory lock.
    /// PostgreSQL releases the lock when the transaction ends, and also when
    /// the connection drops because the server process died.
    Postgres { _transaction: Transaction<'static, Any> },
    Sqlite { _guard: tokio::sync::MutexGuard<'static, ()> },
}

/// Waits until no other Cancel Subscription run of `org_id` is going on and
/// returns the turn. Fails with 409 after `WAIT_FOR_TURN`.
pub async fn wait_for_turn(pool: &AnyPool, org_id: i64) -> Result<CancelTurn, AppError> {
    let busy = || {
        tracing::warn!(org_id, wait = ?WAIT_FOR_TURN, "Cancel Subscription still running after the wait");
        AppError::Conflict(
            "Another owner's Cancel Subscription is still running. Reload the page in a minute to see its result."
                .to_string(),
        )
    };

    if !pool.connect_options().database_url.scheme().starts_with("postgres") {
        let guard = tokio::time::timeout(WAIT_FOR_TURN, SQLITE_TURN.lock()).await.map_err(|_| busy())?;
        return Ok(CancelTurn::Sqlite { _guard: guard });
    }

    let db = |e| db_error("wait for the cancellation lock", e);
    let mut tx = pool.begin().await.map_err(db)?;
    sqlx::query(&format!("SET LOCAL lock_timeout = '{}s'", WAIT_FOR_TURN.as_secs()))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    // pg_advisory_xact_lock returns void, which sqlx's Any driver cannot
    // read, so the query returns a constant once the lock is held.
    match sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS locked")
        .bind(ADVISORY_KEY_PREFIX | org_id)
        .execute(&mut *tx)
        .await
    {
        Ok(_) => Ok(CancelTurn::Postgres { _transaction: tx }),
        // 55P03 lock_not_available: the lock timeout passed.
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("55P03") => Err(busy()),
        Err(error) => Err(db(error)),
    }
}
