//! The connection pool and the migrations, for SQLite and PostgreSQL.

use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::AnyConnection;
use sqlx::{AnyPool, Executor};

/// The database engine a pool connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Backend {
        if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }
}

/// Opens a pool. SQLite gets WAL (readers never wait for the writer), a
/// 5 s busy timeout, and foreign keys on; the SQLite file's folder is
/// created if missing.
pub async fn connect(url: &SecretString) -> anyhow::Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let url = url.expose_secret();
    let backend = Backend::of_url(url);
    if backend == Backend::Sqlite {
        create_sqlite_folder(url)?;
    }

    AnyPoolOptions::new()
        .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(move |connection, _| {
            Box::pin(async move {
                match backend {
                    Backend::Sqlite => configure_sqlite(connection).await?,
                    Backend::Postgres => configure_postgres(connection).await?,
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .context("connecting to the database (check DATABASE_URL)")
}

async fn configure_sqlite(connection: &mut AnyConnection) -> Result<(), sqlx::Error> {
    // NORMAL keeps committed transactions through a crash of this process;
    // only an operating system crash can lose the last ones.
    connection
        .execute(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
        )
        .await?;
    Ok(())
}

async fn configure_postgres(connection: &mut AnyConnection) -> Result<(), sqlx::Error> {
    // Every statement here reads or writes a few thousand rows at most, but
    // the planner cannot see how narrow the usage reads' pieces are and
    // costs them high enough to compile them with JIT. At 10 million jobs
    // that compilation took 96 ms of a 1h usage read that then ran in 3 ms.
    connection.execute("SET jit = off").await?;
    Ok(())
}

fn create_sqlite_folder(url: &str) -> anyhow::Result<()> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(folder) = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating the database folder {}", folder.display()))?;
    }
    Ok(())
}

fn migrator(backend: Backend) -> Migrator {
    match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
    }
}

/// Applies the migrations for the pool's backend. Safe to run on every
/// start: applied migrations are skipped. On PostgreSQL, sqlx 0.8 holds an
/// advisory lock while it migrates, so servers that start together on one
/// database apply each migration once.
pub async fn migrate(pool: &AnyPool, backend: Backend) -> anyhow::Result<()> {
    migrator(backend).run(pool).await.context("applying database migrations")?;
    Ok(())
}

/// The reason the database cannot serve this build of the server.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("the database did not respond within {0:?}")]
    TimedOut(Duration),
    #[error("the database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("{0} of this server's migrations are not applied")]
    Pending(usize),
}

/// Checks that the database responds within `timeout` and has every
/// migration that this build embeds applied successfully.
pub async fn check_ready(pool: &AnyPool, timeout: Duration) -> Result<(), NotReady> {
    let backend = Backend::of_url(pool.connect_options().database_url.as_str());
    let applied = tokio::time::timeout(
        timeout,
        sqlx::query_scalar::<_, i64>("SELECT version FROM _sqlx_migrations WHERE success").fetch_all(pool),
    )
    .await
    .map_err(|_| NotReady::TimedOut(timeout))??;

    let pending = migrator(backend).iter().filter(|m| !applied.contains(&m.version)).count();
    if pending > 0 {
        return Err(NotReady::Pending(pending));
    }
    Ok(())
}
