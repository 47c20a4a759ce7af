//! Runs the main flows with every log level on (as `RUST_LOG=trace` would)
//! and searches everything logged for the secrets those flows used:
//! passwords, session cookies, CSRF tokens, API keys, card numbers, the
//! SetupIntent's client secret and the Stripe keys.
//!
//! The server runs in this process, so the capture contains the server's
//! lines; the test client's HTTP crates are left out. SQLite only: the database driver does
//! not change what the app logs.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use app::auth::Role;
use casola_server::database::Backend;
use common::{spawn_billing_app, PASSWORD};
use serde_json::json;

const CARD_NUMBER: &str = "4242424242424242";

/// Everything logged in this process since the capture was installed.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            // reqwest and its cookie store are the test client's, and the
            // server does not link them: the cookie store logs every
            // Set-Cookie it receives.
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace,cookie_store=off,reqwest=off"))
            .with_ansi(false)
            .with_writer(move || CaptureWriter(writer.clone()))
            .init();
        buffer
    })
}

struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("the log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_trace_logs() {
    common::within_time_limit(run_flows_and_search_logs()).await;
}

async fn run_flows_and_search_logs() {
    let log = captured();
    let billing = spawn_billing_app(Backend::Sqlite).await;
    let app = &billing.app;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;

    // Sign in, load pages and call server functions.
    let owner = app.signed_in("owner@acme.test").await;
    let session = owner.cookie(app::auth::ssr::SESSION_COOKIE).expect("a session cookie");
    let csrf_token = owner.csrf_token();
    let page = owner.get(app.url("/usage?range=7d")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let summary = owner.post(app.url("/api/usage/summary")).form(&[("range", "7d"), ("tz", "UTC")]).send().await.unwrap();
    assert_eq!(summary.status(), 200);

    // Add a card through the stand-in, as the billing page does.
    let (status, setup) = billing.call(&owner, "card-setup", &[]).await;
    assert_eq!(status, 200, "{setup}");
    let intent_id = setup["setup_intent_id"].as_str().unwrap().to_string();
    let client_secret = setup["client_secret"].as_str().unwrap().to_string();
    billing
        .stand_in
        .confirm_setup_intent(&intent_id, &client_secret, setup["publishable_key"].as_str().unwrap(), CARD_NUMBER)
        .await;
    let (status, body) = billing.call(&owner, "complete-card-setup", &[("setup_intent_id", &intent_id)]).await;
    assert_eq!(status, 200, "{body}");
    let page = owner.get(app.url("/billing")).send().await.unwrap();
    assert_eq!(page.status(), 200);

    // Create an API key and report jobs with it, then with a wrong key.
    let created = owner.post(app.url("/api/api-keys/create")).form(&[("name", "platform")]).send().await.unwrap();
    assert_eq!(created.status(), 200);
    let api_key: String = created.json().await.unwrap();
    let batch = json!({ "jobs": [{
        "id": "job-1", "model": "llama", "status": "queued",
        "submitted_at": "2026-01-01T00:00:00Z", "gpu_count": 1
    }] });
    let ingest = reqwest::Client::new().post(app.url("/api/v1/jobs")).bearer_auth(&api_key).json(&batch).send().await.unwrap();
    assert_eq!(ingest.status(), 200);
    let wrong_key = format!("{api_key}x");
    let rejected = reqwest::Client::new().post(app.url("/api/v1/jobs")).bearer_auth(&wrong_key).json(&batch).send().await.unwrap();
    assert_eq!(rejected.status(), 401);

    // A webhook with a bad signature; the stand-in's own deliveries for
    // the card above arrive signed.
    let webhook = reqwest::Client::new()
        .post(app.url("/webhooks/stripe"))
        .header("stripe-signature", "t=1,v1=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), 400);

    // A failed sign-in and a sign-out.
    let failed = app
        .client()
        .post(app.url("/login"))
        .form(&[("email", "owner@acme.test"), ("password", "a wrong password 123")])
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 303);
    let signed_out = owner.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(signed_out.status(), 303);
    // Let the stand-in's webhook deliveries finish.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;

    let text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(text.contains("TRACE"), "the capture holds trace-level lines");
    assert!(text.contains("stored a job batch"), "the capture holds the server's lines");

    let secrets = [
        ("password", PASSWORD.to_string()),
        ("wrong password", "a wrong password 123".to_string()),
        ("session cookie", session),
        ("CSRF token", csrf_token),
        ("API key", api_key.clone()),
        ("wrong API key", wrong_key),
        ("card number", CARD_NUMBER.to_string()),
        ("SetupIntent client secret", client_secret),
        ("Stripe secret key", billing.secret_key.clone()),
        ("webhook secret", billing.webhook_secret.clone()),
    ];
    for (what, secret) in secrets {
        let line = text.lines().find(|line| line.contains(&secret));
        assert!(line.is_none(), "the {what} appears in the log: {}", line.unwrap_or_default());
    }
    // The part of an API key that the key list shows is not secret; the
    // rest must not appear either.
    let secret_part = &api_key[api_key.len() / 2..];
    assert!(!text.contains(secret_part), "the secret part of the API key appears in the log");
}
