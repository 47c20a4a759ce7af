//! Typed settings read from the environment, with development defaults.

use anyhow::{bail, Context};
use leptos::config::LeptosOptions;
use secrecy::SecretString;

/// Everything the server reads from its environment. `.env.example` lists
/// each variable with its default.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DATABASE_URL`: `sqlite://…` or `postgres://…`. May hold a password.
    pub database_url: SecretString,
    /// `CASOLA_ENV=development` turns off `Secure` cookies for plain HTTP on
    /// 127.0.0.1. Anything else, or unset, is production.
    pub development: bool,
    /// Site root, address and asset names, from the `LEPTOS_*` variables that
    /// cargo-leptos sets (defaults: `target/site`, `127.0.0.1:3000`).
    pub leptos: LeptosOptions,
}

/// Default database: the embedded SQLite file, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/casola.db?mode=rwc";

impl Settings {
    /// Reads the settings. Fails with the variable's name on a bad value.
    pub fn from_env() -> anyhow::Result<Settings> {
        let database_url =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string());
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("postgres")) {
            bail!(
                "DATABASE_URL must start with sqlite: or postgres:// (the value is not shown \
                 because it may hold a password)"
            );
        }

        let development = match std::env::var("CASOLA_ENV").as_deref() {
            Ok("development") => true,
            Ok("production") | Err(_) => false,
            Ok(other) => bail!("CASOLA_ENV must be development or production, not \"{other}\""),
        };

        let leptos = leptos::config::get_configuration(None)
            .context("reading the LEPTOS_* settings")?
            .leptos_options;

        Ok(Settings { database_url: SecretString::from(database_url), development, leptos })
    }
}

/// Sets the asset name cargo-leptos would set, so that a binary started
/// without it (`cargo run`, tests) still finds `/pkg/casola.js`. Call before
/// any thread starts.
pub fn default_leptos_env() {
    if std::env::var_os("LEPTOS_OUTPUT_NAME").is_none() {
        // SAFETY: called at the start of `main`, before any other thread exists.
        unsafe { std::env::set_var("LEPTOS_OUTPUT_NAME", "casola") };
    }
}
