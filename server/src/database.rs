//! The connection pool and the migrations, for SQLite and PostgreSQL.

use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use sqlx::any::AnyPoolOptions;
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
                if backend == Backend::Sqlite {
                    configure_sqlite(connection).await?;
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

/// Applies the migrations for the pool's backend. Safe to run on every
/// start: applied migrations are skipped.
pub async fn migrate(pool: &AnyPool, backend: Backend) -> anyhow::Result<()> {
    let migrator = match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
    };
    migrator.run(pool).await.context("applying database migrations")?;
    Ok(())
}
