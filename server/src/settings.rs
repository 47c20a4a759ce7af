//! Typed settings read from the environment, with development defaults.

use std::time::Duration;

use anyhow::{bail, Context};
use app::billing::stripe::{StripeSettings, DEFAULT_REQUEST_TIMEOUT, STRIPE_API_BASE, STRIPE_JS_URL};
use leptos::config::LeptosOptions;
use secrecy::SecretString;

use crate::spa::SpaOrigin;

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
    /// The `STRIPE_*` settings; `None` when `STRIPE_SECRET_KEY` is unset,
    /// and billing then responds 503.
    pub stripe: Option<StripeSettings>,
    /// `CASOLA_SPA_ORIGIN`: the origin the static single-page app is served
    /// from, whose pages may call the server functions with cookies. Unset,
    /// no other origin may.
    pub spa_origin: Option<SpaOrigin>,
    /// `CASOLA_SHUTDOWN_TIMEOUT_SECS`: how long requests in flight at
    /// SIGTERM or Ctrl-C may run on before the server exits without them.
    pub shutdown_timeout: Duration,
    /// `CASOLA_USAGE_CACHE_MS`: how long a usage summary serves other
    /// requests for the same window (see `app::usage::cache`). 0 turns the
    /// cache off.
    pub usage_cache_max_age: Duration,
}

/// The default of `CASOLA_USAGE_CACHE_MS`: jobs stored through another
/// server show on the usage page within a second.
pub const DEFAULT_USAGE_CACHE_MAX_AGE: Duration = Duration::from_secs(1);

/// The default of `CASOLA_SHUTDOWN_TIMEOUT_SECS`, which is also the default
/// grace period Kubernetes gives a pod between SIGTERM and SIGKILL.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

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

        Ok(Settings {
            database_url: SecretString::from(database_url),
            development,
            leptos,
            stripe: stripe_from_env()?,
            spa_origin: spa_origin_from_env()?,
            shutdown_timeout: seconds_from_env("CASOLA_SHUTDOWN_TIMEOUT_SECS", DEFAULT_SHUTDOWN_TIMEOUT, 3_600)?,
            usage_cache_max_age: usage_cache_from_env()?,
        })
    }
}

/// Reads `CASOLA_SPA_ORIGIN`; unset or empty is `None`.
fn spa_origin_from_env() -> anyhow::Result<Option<SpaOrigin>> {
    match std::env::var("CASOLA_SPA_ORIGIN") {
        Ok(value) if !value.trim().is_empty() => Ok(Some(SpaOrigin::parse(value.trim()).map_err(anyhow::Error::msg)?)),
        _ => Ok(None),
    }
}

/// Reads the `STRIPE_*` variables. With `STRIPE_SECRET_KEY` set, the
/// publishable key, webhook secret and price id are required too.
fn stripe_from_env() -> anyhow::Result<Option<StripeSettings>> {
    let Ok(secret_key) = std::env::var("STRIPE_SECRET_KEY") else {
        return Ok(None);
    };
    let required = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
            .with_context(|| format!("{name} is missing; it is required when STRIPE_SECRET_KEY is set"))
    };
    let mut api_base = std::env::var("STRIPE_API_BASE").unwrap_or_else(|_| STRIPE_API_BASE.to_string());
    if !api_base.ends_with('/') {
        api_base.push('/');
    }

    Ok(Some(StripeSettings {
        secret_key: SecretString::from(secret_key),
        publishable_key: required("STRIPE_PUBLISHABLE_KEY")?,
        webhook_secret: SecretString::from(required("STRIPE_WEBHOOK_SECRET")?),
        price_id: required("STRIPE_PRICE_ID")?,
        api_base,
        js_url: std::env::var("STRIPE_JS_URL").unwrap_or_else(|_| STRIPE_JS_URL.to_string()),
        request_timeout: seconds_from_env("STRIPE_REQUEST_TIMEOUT_SECS", DEFAULT_REQUEST_TIMEOUT, 120)?,
    }))
}

/// Reads the variable `name`, a whole number of seconds from 1 to `max`, or
/// returns `default` when it is unset.
fn seconds_from_env(name: &str, default: Duration, max: u64) -> anyhow::Result<Duration> {
    let Ok(text) = std::env::var(name) else {
        return Ok(default);
    };
    match text.trim().parse::<u64>() {
        Ok(seconds) if (1..=max).contains(&seconds) => Ok(Duration::from_secs(seconds)),
        _ => bail!("{name} must be a whole number of seconds from 1 to {max}, not \"{text}\""),
    }
}

/// Reads `CASOLA_USAGE_CACHE_MS`, a whole number of milliseconds from 0
/// to 60,000.
fn usage_cache_from_env() -> anyhow::Result<Duration> {
    const NAME: &str = "CASOLA_USAGE_CACHE_MS";
    let Ok(text) = std::env::var(NAME) else {
        return Ok(DEFAULT_USAGE_CACHE_MAX_AGE);
    };
    match text.trim().parse::<u64>() {
        Ok(ms) if ms <= 60_000 => Ok(Duration::from_millis(ms)),
        _ => bail!("{NAME} must be a whole number of milliseconds from 0 (no cache) to 60000, not \"{text}\""),
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
