//! Test harness: the real router on port 0 with a fresh database, SQLite or
//! PostgreSQL, and an HTTP client that keeps cookies.

#![allow(dead_code)]

pub mod billing;
pub mod delay_proxy;
pub mod process;
pub mod stand_in;

use std::net::SocketAddr;
use std::sync::Arc;

use app::billing::stripe::{Stripe, StripeSettings};
use app::state::AppState;
use app::usage::cache::SummaryCache;
use casola_server::settings::DEFAULT_USAGE_CACHE_MAX_AGE;
use casola_server::database::{self, Backend};
use casola_server::jobs::{upsert_jobs, JobRecord, JobStatus};
use casola_server::{accounts, router};
use leptos::config::LeptosOptions;
use secrecy::SecretString;
use sqlx::AnyPool;

/// Environment variable with an admin URL of the throwaway PostgreSQL
/// cluster that `make test` starts.
pub const POSTGRES_URL_VAR: &str = "CASOLA_TEST_POSTGRES_URL";

/// The password of every user the tests create.
pub const PASSWORD: &str = "correct horse battery";

/// A running server and a direct handle on its database.
pub struct TestApp {
    pub base: String,
    pub pool: AnyPool,
    pub backend: Backend,
    /// The app's Stripe client, for billing tests.
    pub stripe: Option<Stripe>,
    _sqlite_dir: Option<tempfile::TempDir>,
}

/// Opens a fresh, migrated database on `backend`.
pub async fn fresh_database(backend: Backend) -> (AnyPool, Option<tempfile::TempDir>) {
    let (pool, _, dir) = fresh_database_with_url(backend).await;
    (pool, dir)
}

/// Like `fresh_database`, also returning the URL, for a second process.
pub async fn fresh_database_with_url(backend: Backend) -> (AnyPool, String, Option<tempfile::TempDir>) {
    let (url, dir) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("create a temporary folder");
            let url = format!("sqlite://{}/casola.db?mode=rwc", dir.path().display());
            (url, Some(dir))
        }
        Backend::Postgres => (create_postgres_database().await, None),
    };
    let pool = database::connect(&SecretString::from(url.clone())).await.expect("connect to the test database");
    database::migrate(&pool, backend).await.expect("migrate the test database");
    (pool, url, dir)
}

/// Creates an empty database, without migrations, in the PostgreSQL test
/// cluster and returns its URL.
pub async fn create_postgres_database() -> String {
    let admin_url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VAR} is not set. Run the tests with `make test`, which starts a \
             throwaway PostgreSQL cluster, or point {POSTGRES_URL_VAR} at one."
        )
    });
    sqlx::any::install_default_drivers();
    let admin = AnyPool::connect(&admin_url).await.expect("connect to the PostgreSQL test cluster");
    let name = format!("casola_test_{}", app::db::new_request_id());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create a test database");
    admin.close().await;
    let (base, _) = admin_url.rsplit_once('/').expect("the PostgreSQL URL ends with /DATABASE");
    format!("{base}/{name}")
}

/// Starts the real router on 127.0.0.1 with a fresh database and no Stripe.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, None, false, None).await
}

/// Starts the real router like `spawn_app`, letting pages served from
/// `spa_origin` (the static single-page app) call the server functions.
pub async fn spawn_app_for_spa(backend: Backend, spa_origin: &str) -> TestApp {
    let origin = casola_server::spa::SpaOrigin::parse(spa_origin).expect("a valid SPA origin");
    spawn_app_with(backend, None, false, Some(origin)).await
}

/// The paid plan's id in the stand-in.
pub const TEST_PRICE_ID: &str = "casola_pro_test";

/// A running app wired to its own localstripe.
pub struct BillingApp {
    pub app: TestApp,
    pub stand_in: stand_in::StandIn,
    /// The app's Stripe secret key, unique per test so that the stand-in's
    /// request count covers only this app.
    pub secret_key: String,
    pub webhook_secret: String,
}

/// Starts a localstripe, the real router with Stripe settings pointing at
/// it, the paid plan, and the stand-in's webhooks to the app.
pub async fn spawn_billing_app(backend: Backend) -> BillingApp {
    let stand_in = stand_in::StandIn::start().await;
    let api_base = stand_in.base.clone();
    spawn_billing_app_at(backend, stand_in, api_base, app::billing::stripe::DEFAULT_REQUEST_TIMEOUT).await
}

/// Like `spawn_billing_app`, but the app reaches the stand-in through a
/// `DelayProxy` and gives up on a Stripe request after `timeout`.
pub async fn spawn_billing_app_behind_proxy(
    backend: Backend,
    timeout: std::time::Duration,
) -> (BillingApp, delay_proxy::DelayProxy) {
    let stand_in = stand_in::StandIn::start().await;
    let proxy = delay_proxy::DelayProxy::start(stand_in.port).await;
    let billing = spawn_billing_app_at(backend, stand_in, proxy.base.clone(), timeout).await;
    (billing, proxy)
}

/// Returns Stripe settings for a stand-in at `stand_in_base`, reached at
/// `api_base`, with this test's own keys and the test plan.
pub fn stand_in_settings(
    stand_in_base: &str,
    api_base: String,
    secret_key: &str,
    webhook_secret: &str,
    timeout: std::time::Duration,
) -> StripeSettings {
    StripeSettings {
        secret_key: SecretString::from(secret_key.to_string()),
        publishable_key: "pk_test_casola".to_string(),
        webhook_secret: SecretString::from(webhook_secret.to_string()),
        price_id: TEST_PRICE_ID.to_string(),
        api_base,
        js_url: format!("{stand_in_base}js.stripe.com/v3/"),
        request_timeout: timeout,
    }
}

/// Starts a stand-in with a `DelayProxy` in front and creates the test
/// plan. Returns them with Stripe settings, with fresh keys, that reach the
/// stand-in through the proxy, for `casola` child processes.
pub async fn stand_in_behind_proxy() -> (stand_in::StandIn, delay_proxy::DelayProxy, StripeSettings) {
    let stand_in = stand_in::StandIn::start().await;
    let proxy = delay_proxy::DelayProxy::start(stand_in.port).await;
    let secret_key = format!("sk_test_casola_{}", app::db::new_request_id());
    let webhook_secret = format!("whsec_casola_{}", app::db::new_request_id());
    let settings = stand_in_settings(
        &stand_in.base,
        proxy.base.clone(),
        &secret_key,
        &webhook_secret,
        app::billing::stripe::DEFAULT_REQUEST_TIMEOUT,
    );
    let stripe = Stripe::new(settings.clone()).expect("build the Stripe client");
    stripe.ensure_stand_in_plan(4_900, "usd", "Casola Pro").await.expect("create the test plan");
    (stand_in, proxy, settings)
}

async fn spawn_billing_app_at(
    backend: Backend,
    stand_in: stand_in::StandIn,
    api_base: String,
    timeout: std::time::Duration,
) -> BillingApp {
    let secret_key = format!("sk_test_casola_{}", app::db::new_request_id());
    let webhook_secret = format!("whsec_casola_{}", app::db::new_request_id());
    let settings = stand_in_settings(&stand_in.base, api_base, &secret_key, &webhook_secret, timeout);
    let stripe = Stripe::new(settings).expect("build the Stripe client");
    stripe.ensure_stand_in_plan(4_900, "usd", "Casola Pro").await.expect("create the test plan");

    let app = spawn_app_with(backend, Some(stripe), false, None).await;
    stand_in.register_webhook(&app.url("/webhooks/stripe"), &webhook_secret).await;
    BillingApp { app, stand_in, secret_key, webhook_secret }
}

impl BillingApp {
    /// Calls a billing server function and returns the status and JSON body.
    pub async fn call(&self, client: &Browser, endpoint: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
        billing::call(&self.app.base, client, endpoint, form).await
    }

    /// Creates a SetupIntent through the server and confirms it with card
    /// `number` the way Stripe.js does, from outside the server. Returns
    /// the SetupIntent's id and the new card's id.
    pub async fn confirm_new_card(&self, client: &Browser, number: &str) -> (String, String) {
        let (status, setup) = self.call(client, "card-setup", &[]).await;
        assert_eq!(status, 200, "card setup failed: {setup}");
        let intent_id = setup["setup_intent_id"].as_str().expect("setup_intent_id").to_string();
        let confirmed = self
            .stand_in
            .confirm_setup_intent(
                &intent_id,
                setup["client_secret"].as_str().expect("client_secret"),
                setup["publishable_key"].as_str().expect("publishable_key"),
                number,
            )
            .await;
        assert_eq!(confirmed["status"], "succeeded");
        let card_id = confirmed["payment_method"].as_str().expect("payment_method").to_string();
        (intent_id, card_id)
    }

    /// Returns the id of a SetupIntent confirmed with card `number` but not
    /// yet completed on the server.
    pub async fn confirmed_setup_intent(&self, client: &Browser, number: &str) -> String {
        self.confirm_new_card(client, number).await.0
    }

    /// Adds a card as the browser does: the server creates a SetupIntent,
    /// the stand-in's Stripe.js confirms it, the server completes it.
    /// Returns the card's id.
    pub async fn add_card(&self, client: &Browser, number: &str) -> String {
        let (intent_id, card_id) = self.confirm_new_card(client, number).await;
        let (status, body) = self.call(client, "complete-card-setup", &[("setup_intent_id", &intent_id)]).await;
        assert_eq!(status, 200, "completing the card setup failed: {body}");
        card_id
    }
}

/// Starts the real router as in production, where cookies are `Secure`.
pub async fn spawn_production_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, None, true, None).await
}

async fn spawn_app_with(
    backend: Backend,
    stripe: Option<Stripe>,
    secure_cookies: bool,
    spa_origin: Option<casola_server::spa::SpaOrigin>,
) -> TestApp {
    let (pool, dir) = fresh_database(backend).await;
    let state = AppState {
        pool: pool.clone(),
        secure_cookies,
        stripe: stripe.clone(),
        usage_cache: Arc::new(SummaryCache::new(DEFAULT_USAGE_CACHE_MAX_AGE)),
    };
    let options = LeptosOptions::builder().output_name("casola").build();
    let app = router::build_router_with_spa_origin(state, options, spa_origin);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
    let address: SocketAddr = listener.local_addr().expect("read the bound address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });

    TestApp { base: format!("http://{address}"), pool, backend, stripe, _sqlite_dir: dir }
}

/// An HTTP client that acts like a browser on our pages. It keeps cookies,
/// does not follow redirects and sends our own `Origin` header. Like the
/// page's `csrf.js`, it sends the CSRF token of its cookies with every POST.
#[derive(Clone)]
pub struct Browser {
    pub client: reqwest::Client,
    jar: std::sync::Arc<reqwest::cookie::Jar>,
    base: reqwest::Url,
}

impl Browser {
    pub fn get(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.client.get(url)
    }

    /// Starts a POST with the `x-csrf-token` header of this browser's cookies.
    pub fn post(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.client.post(url).header(app::security::CSRF_HEADER, self.csrf_token())
    }

    /// Starts a POST without a CSRF token, as another site's form sends it.
    pub fn post_without_token(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.client.post(url)
    }

    /// Returns the value of cookie `name` in this browser's jar.
    pub fn cookie(&self, name: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let header = self.jar.cookies(&self.base)?;
        header.to_str().ok()?.split("; ").find_map(|pair| {
            pair.split_once('=').filter(|(key, _)| *key == name).map(|(_, value)| value.to_string())
        })
    }

    /// Returns a copy of this browser, with the same cookies, that also
    /// sends `Authorization: Bearer <key>` with every request.
    pub fn with_bearer(&self, key: &str) -> Browser {
        let mut headers = reqwest::header::HeaderMap::new();
        let origin = self.base.as_str().trim_end_matches('/');
        headers.insert("origin", origin.parse().expect("origin header"));
        headers.insert("authorization", format!("Bearer {key}").parse().expect("authorization header"));
        let client = reqwest::Client::builder()
            .cookie_provider(self.jar.clone())
            .timeout(std::time::Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .expect("build the HTTP client");
        Browser { client, jar: self.jar.clone(), base: self.base.clone() }
    }

    /// Returns the token the server expects: derived from the session
    /// cookie, or from the `casola_csrf` cookie before sign-in.
    pub fn csrf_token(&self) -> String {
        let key = self
            .cookie(app::auth::ssr::SESSION_COOKIE)
            .or_else(|| self.cookie(app::security::ssr::CSRF_COOKIE))
            .unwrap_or_default();
        app::security::ssr::token_for(&key)
    }
}

impl TestApp {
    /// Returns a signed-out `Browser` that already has a `casola_csrf`
    /// cookie, as after loading the sign-in page.
    pub fn client(&self) -> Browser {
        self.client_with_jar(Default::default())
    }

    /// Like `client`, with cookies kept in `jar`, where a test can add its own.
    pub fn client_with_jar(&self, jar: std::sync::Arc<reqwest::cookie::Jar>) -> Browser {
        browser_client(&self.base, jar)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates an organization with one user of `role` and returns the org id.
    pub async fn org_with_user(&self, slug: &str, email: &str, role: app::auth::Role) -> i64 {
        let org_id = accounts::create_org(&self.pool, slug, &format!("Org {slug}"), "UTC")
            .await
            .expect("create org");
        self.user_in(slug, email, role).await;
        org_id
    }

    /// Creates a user (if needed) and adds them to `slug` with `role`.
    pub async fn user_in(&self, slug: &str, email: &str, role: app::auth::Role) {
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await
            .expect("look up user");
        if exists.is_none() {
            accounts::create_user(&self.pool, email, "Test User", PASSWORD).await.expect("create user");
        }
        accounts::add_member(&self.pool, slug, email, role).await.expect("add member");
    }

    /// Signs `email` in through the form and returns the signed-in client.
    pub async fn signed_in(&self, email: &str) -> Browser {
        self.sign_in_with(self.client(), email).await
    }

    /// Signs `email` in with `client` and returns it.
    pub async fn sign_in_with(&self, client: Browser, email: &str) -> Browser {
        sign_in(&self.base, &client, email).await;
        client
    }

    /// Stores finished jobs of `model` with `status` submitted at `times_ms`.
    pub async fn add_jobs(&self, org_id: i64, model: &str, status: JobStatus, times_ms: &[i64]) {
        let records: Vec<JobRecord> = times_ms
            .iter()
            .enumerate()
            .map(|(i, &t)| JobRecord {
                job_id: format!("{model}-{}-{t}-{i}", status.as_str()),
                model: model.to_string(),
                status,
                submitted_at: t,
                started_at: Some(t),
                finished_at: matches!(status, JobStatus::Completed | JobStatus::Failed).then_some(t + 60_000),
                gpu_count: 2,
                gpu_ms: None,
            })
            .collect();
        upsert_jobs(&self.pool, org_id, &records).await.expect("store jobs");
    }
}

/// Returns a client for the server at `base` that keeps cookies in `jar`,
/// does not follow redirects and sends the `Origin` header a browser sends
/// from that server's pages.
pub fn browser_client(base: &str, jar: std::sync::Arc<reqwest::cookie::Jar>) -> Browser {
    let base_url: reqwest::Url = base.parse().expect("the app's base URL");
    let csrf_cookie = format!("{}={}", app::security::ssr::CSRF_COOKIE, app::auth::ssr::new_token());
    jar.add_cookie_str(&csrf_cookie, &base_url);

    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("origin", base.parse().expect("origin header"));
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        // A hung request fails the test instead of stalling the run.
        .timeout(std::time::Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .expect("build the HTTP client");
    Browser { client, jar, base: base_url }
}

/// Signs `email` in through the form of the server at `base`.
pub async fn sign_in(base: &str, client: &Browser, email: &str) {
    let response = client
        .post(format!("{base}/login"))
        .form(&[("email", email), ("password", PASSWORD), ("next", "/usage")])
        .send()
        .await
        .expect("post the sign-in form");
    assert_eq!(response.status(), 303, "sign-in of {email} should redirect");
    assert_eq!(location(&response), "/usage", "sign-in of {email} should succeed");
}

/// Returns the `Location` header of a redirect.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Runs a test body, failing it after three minutes so that a hang names
/// its test instead of stalling the whole run.
pub async fn within_time_limit(test: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(std::time::Duration::from_secs(180), test).await.is_err() {
        panic!("the test did not finish within 180 s");
    }
}

/// Generates one `#[tokio::test]` per backend from an async test body that
/// takes a `Backend`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::within_time_limit(super::$name(casola_server::database::Backend::Sqlite)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::within_time_limit(super::$name(casola_server::database::Backend::Postgres)).await;
                }
            )*
        }
    };
}
