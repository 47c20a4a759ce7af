//! Two `casola` processes on one PostgreSQL database, driven alternately.
//! Both start together on a fresh database, and a session made on one works
//! on the other. A webhook event delivered to both at once is applied once,
//! two owners who cancel at the same moment cancel once, and one batch
//! ingested through both is stored once. Jobs stored through one show on
//! the other's usage page within a second.

mod common;

use std::sync::Arc;
use std::time::Duration;

use app::auth::Role;
use chrono::{SecondsFormat, Utc};
use common::billing::{add_card, call, overview};
use common::process::{free_port, stripe_env, ServerProcess};
use common::stand_in::StandIn;
use common::{
    browser_client, create_postgres_database, location, sign_in, stand_in_behind_proxy, stand_in_settings,
    within_time_limit,
};
use secrecy::ExposeSecret;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::AnyPool;

/// Two servers on one database and a pool of the test's own on it.
struct Pair {
    first: ServerProcess,
    second: ServerProcess,
    pool: AnyPool,
}

/// Starts two servers at the same moment on a fresh, unmigrated database,
/// so that both run the migrations at once, and checks that both come up
/// and each migration is applied once.
async fn start_pair(env: &[(&str, String)]) -> Pair {
    let url = create_postgres_database().await;
    let mut first = ServerProcess::spawn(free_port(), &url, env);
    let mut second = ServerProcess::spawn(free_port(), &url, env);
    tokio::join!(first.wait_until_healthy(), second.wait_until_healthy());

    let pool = casola_server::database::connect(&secrecy::SecretString::from(url)).await.unwrap();
    let applied: Vec<(i64, bool)> = sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&pool)
        .await
        .unwrap();
    let expected = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .filter(|entry| entry.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql")))
        .count();
    assert_eq!(applied.len(), expected, "each migration has one row: {applied:?}");
    assert!(applied.iter().all(|(_, success)| *success), "every migration succeeded: {applied:?}");

    let client = reqwest::Client::new();
    for server in [&first, &second] {
        let ready = client.get(server.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "{} is ready", server.base);
    }
    Pair { first, second, pool }
}

async fn add_owner(pool: &AnyPool, email: &str) {
    casola_server::accounts::create_user(pool, email, "Owner", common::PASSWORD).await.unwrap();
    casola_server::accounts::add_member(pool, "acme", email, Role::Owner).await.unwrap();
}

/// With sqlx's advisory lock switched off (`Migrator::set_locking(false)`)
/// this failed in each of two runs: one server stopped with "duplicate key
/// value violates unique constraint pg_type_typname_nsp_index".
async fn servers_start_together_on_fresh_database() {
    // Three fresh databases: each start is a race for the migrations.
    for _ in 0..3 {
        let pair = start_pair(&[]).await;
        pair.pool.close().await;
    }
}

async fn session_works_on_both_servers() {
    let pair = start_pair(&[]).await;
    casola_server::accounts::create_org(&pair.pool, "acme", "Acme", "UTC").await.unwrap();
    add_owner(&pair.pool, "owner@acme.test").await;

    // One browser, one cookie jar; each client sends its own server's Origin.
    let jar: Arc<reqwest::cookie::Jar> = Default::default();
    let on_first = browser_client(&pair.first.base, jar.clone());
    let on_second = browser_client(&pair.second.base, jar);
    sign_in(&pair.first.base, &on_first, "owner@acme.test").await;

    for (server, client) in [(&pair.second, &on_second), (&pair.first, &on_first), (&pair.second, &on_second)] {
        let page = client.get(server.url("/usage")).send().await.unwrap();
        assert_eq!(page.status(), 200, "the usage page on {}", server.base);
        let summary = client.post(server.url("/api/usage/summary")).form(&[("range", "24h"), ("tz", "UTC")]).send().await.unwrap();
        assert_eq!(summary.status(), 200, "the usage summary on {}", server.base);
    }

    let signed_out = on_second.post(pair.second.url("/logout")).send().await.unwrap();
    assert_eq!(signed_out.status(), 303);
    let page = on_first.get(pair.first.url("/usage")).send().await.unwrap();
    assert_eq!(page.status(), 303, "signing out on one server ends the session on both");
    assert!(location(&page).starts_with("/login"), "{}", location(&page));
}

fn signature(secret: &str, body: &str) -> String {
    let timestamp = Utc::now().timestamp();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

async fn deliver(client: &reqwest::Client, server: &ServerProcess, body: &str, secret: &str) -> (u16, String) {
    let response = client
        .post(server.url("/webhooks/stripe"))
        .header("stripe-signature", signature(secret, body))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn webhook_to_both_applied_once() {
    const EVENTS: usize = 20;
    let stand_in = StandIn::start().await;
    let webhook_secret = "whsec_casola_pair";
    let settings = stand_in_settings(&stand_in.base, stand_in.base.clone(), "sk_test_casola_pair", webhook_secret, Duration::from_secs(10));
    let pair = start_pair(&stripe_env(&settings)).await;
    let org_id = casola_server::accounts::create_org(&pair.pool, "acme", "Acme", "UTC").await.unwrap();
    sqlx::query(
        "INSERT INTO billing_customers (org_id, stripe_customer_id, default_payment_method_id, default_state_at, synced_at) \
         VALUES ($1, 'cus_pair', NULL, 0, $2)",
    )
    .bind(org_id)
    .bind(app::db::now_ms())
    .execute(&pair.pool)
    .await
    .unwrap();

    let client = reqwest::Client::new();
    let first_created = Utc::now().timestamp() + 1;
    for i in 0..EVENTS {
        let status = if i % 2 == 0 { "past_due" } else { "active" };
        let event = json!({
            "id": format!("evt_pair_{i}"),
            "type": "customer.subscription.updated",
            "created": first_created + i as i64,
            "data": { "object": {
                "id": "sub_pair", "customer": "cus_pair", "status": status,
                "created": first_created, "items": { "data": [] }
            } }
        })
        .to_string();
        let (on_first, on_second) = tokio::join!(
            deliver(&client, &pair.first, &event, webhook_secret),
            deliver(&client, &pair.second, &event, webhook_secret),
        );
        let mut outcomes = [on_first, on_second];
        outcomes.sort();
        assert_eq!(
            outcomes,
            [(200, "applied".to_string()), (200, "duplicate".to_string())],
            "event {i} is applied by one server and a duplicate for the other"
        );
    }

    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM billing_webhook_events WHERE event_id LIKE 'evt_pair_%'")
        .fetch_one(&pair.pool)
        .await
        .unwrap();
    assert_eq!(recorded, EVENTS as i64);
    let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM billing_audit_log WHERE org_id = $1 AND actor = 'Stripe webhook'")
        .bind(org_id)
        .fetch_one(&pair.pool)
        .await
        .unwrap();
    assert_eq!(audited, EVENTS as i64, "one audit row per event");
}

async fn two_owners_cancel_once() {
    // A short delay per Stripe request keeps the first run going while the
    // second request arrives.
    let (stand_in, proxy, settings) = stand_in_behind_proxy().await;
    let secret_key = settings.secret_key.expose_secret().to_string();
    let pair = start_pair(&stripe_env(&settings)).await;
    casola_server::accounts::create_org(&pair.pool, "acme", "Acme", "UTC").await.unwrap();
    add_owner(&pair.pool, "ana@acme.test").await;
    add_owner(&pair.pool, "ben@acme.test").await;

    let ana = browser_client(&pair.first.base, Default::default());
    sign_in(&pair.first.base, &ana, "ana@acme.test").await;
    let ben = browser_client(&pair.second.base, Default::default());
    sign_in(&pair.second.base, &ben, "ben@acme.test").await;
    add_card(&pair.first.base, &stand_in, &ana, "4242424242424242").await;
    let (status, body) = call(&pair.first.base, &ana, "subscribe", &[]).await;
    assert_eq!(status, 200, "{body}");
    let subscription_id = overview(&pair.second.base, &ben).await.subscription.expect("a subscription").id;

    proxy.set_delay(Duration::from_millis(200));
    let (by_ana, by_ben) = tokio::join!(
        call(&pair.first.base, &ana, "cancel-subscription", &[]),
        call(&pair.second.base, &ben, "cancel-subscription", &[]),
    );
    proxy.set_delay(Duration::ZERO);

    let (done, refused) = if by_ana.0 == 200 { (by_ana, by_ben) } else { (by_ben, by_ana) };
    assert_eq!(done.0, 200, "one cancel succeeds: {:?}", done.1);
    assert_eq!(refused.0, 409, "the other finds it already canceled: {:?}", refused.1);
    assert_eq!(
        refused.1["Conflict"],
        "The subscription of Acme is already canceled, and it has no cards left, so nothing was changed."
    );

    let subscription = stand_in.get(&secret_key, &format!("subscriptions/{subscription_id}")).await;
    assert_eq!(subscription["status"], "canceled");
    let cancels: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM billing_audit_log WHERE action = 'Canceled subscription'")
        .fetch_one(&pair.pool)
        .await
        .unwrap();
    assert_eq!(cancels, 1, "one cancellation in the audit log");
    for (server, client) in [(&pair.first, &ana), (&pair.second, &ben)] {
        let page = overview(&server.base, client).await;
        assert_eq!(page.plan, "free", "{}", server.base);
        assert!(!page.cancel_unfinished, "{}", server.base);
    }
}

fn batch(round: usize, status: &str, size: usize) -> Value {
    let submitted = Utc::now() - chrono::Duration::minutes(30);
    let time = submitted.to_rfc3339_opts(SecondsFormat::Millis, true);
    let finished = (status == "completed")
        .then(|| (submitted + chrono::Duration::seconds(30)).to_rfc3339_opts(SecondsFormat::Millis, true));
    let jobs: Vec<Value> = (0..size)
        .map(|i| {
            json!({
                "id": format!("r{round}-{i}"), "model": "llama-3-70b", "status": status,
                "submitted_at": time, "started_at": time, "finished_at": finished, "gpu_count": 2
            })
        })
        .collect();
    json!({ "jobs": jobs })
}

/// Creates the organization "acme" and returns an API key of it.
async fn organization_key(pool: &AnyPool) -> String {
    let org_id = casola_server::accounts::create_org(pool, "acme", "Acme", "UTC").await.unwrap();
    app::api_keys::ssr::create_key(pool, org_id, "platform").await.unwrap()
}

/// Posts a batch to `server` and returns the status and JSON body.
async fn post_batch(server: &ServerProcess, key: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/jobs"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("post a batch");
    (response.status().as_u16(), response.json().await.expect("a JSON body"))
}

async fn same_batch_to_both_stored_once() {
    const ROUNDS: usize = 5;
    let pair = start_pair(&[]).await;
    let key = organization_key(&pair.pool).await;

    // Each round sends the running reports to both at once, then the
    // completed ones, so the second round of a job is an update.
    for round in 0..ROUNDS {
        for status in ["running", "completed"] {
            let body = batch(round, status, 1_000);
            let (on_first, on_second) = tokio::join!(post_batch(&pair.first, &key, &body), post_batch(&pair.second, &key, &body));
            for (code, body) in [on_first, on_second] {
                assert_eq!(code, 200, "round {round}, {status}: {body}");
                assert_eq!(body, json!({ "accepted": 1_000 }));
            }
        }
    }

    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        .fetch_all(&pair.pool)
        .await
        .unwrap();
    assert_eq!(rows, vec![("completed".to_string(), (ROUNDS * 1_000) as i64)], "each job stored once, completed");
}

/// Checks that jobs stored through one server show on the other's usage
/// summary once its cached summary is a second old. A server drops an
/// organization's cached summaries only when it stores the batch itself.
async fn other_server_shows_jobs_within_a_second() {
    let pair = start_pair(&[]).await;
    let key = organization_key(&pair.pool).await;
    add_owner(&pair.pool, "owner@acme.test").await;
    let client = browser_client(&pair.second.base, Default::default());
    sign_in(&pair.second.base, &client, "owner@acme.test").await;
    let jobs = || async {
        let response = client.post(pair.second.url("/api/usage/summary")).form(&[("range", "1h"), ("tz", "UTC")]).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json::<app::usage::UsageSummary>().await.unwrap().totals.jobs
    };
    assert_eq!(jobs().await, 0);

    let (code, body) = post_batch(&pair.first, &key, &batch(0, "completed", 10)).await;
    assert_eq!(code, 200, "{body}");
    // The default CASOLA_USAGE_CACHE_MS, and a margin for a busy machine.
    tokio::time::sleep(casola_server::settings::DEFAULT_USAGE_CACHE_MAX_AGE + Duration::from_millis(100)).await;
    assert_eq!(jobs().await, 10);
}

/// Sends the same new jobs in opposite orders through both servers at once.
/// Unless the server orders the rows itself, the two transactions lock
/// them in opposite orders and PostgreSQL aborts one as a deadlock.
async fn reversed_batches_to_both_stored_once() {
    const ROUNDS: usize = 5;
    // Several INSERT statements per batch, so that the two overlap.
    const REVERSED_BATCH_SIZE: usize = 5_000;
    let pair = start_pair(&[]).await;
    let key = organization_key(&pair.pool).await;

    for round in 0..ROUNDS {
        let forward = batch(round, "completed", REVERSED_BATCH_SIZE);
        let mut reversed = forward.clone();
        reversed["jobs"].as_array_mut().unwrap().reverse();
        let (on_first, on_second) = tokio::join!(post_batch(&pair.first, &key, &forward), post_batch(&pair.second, &key, &reversed));
        for (status, body) in [on_first, on_second] {
            assert_eq!(status, 200, "round {round}: {body}");
        }
    }

    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&pair.pool).await.unwrap();
    assert_eq!(stored, (ROUNDS * REVERSED_BATCH_SIZE) as i64);
    let retries = [&pair.first, &pair.second]
        .iter()
        .map(|server| server.log_text().matches("retrying").count())
        .sum::<usize>();
    println!("reversed batches: {retries} retried transactions in {ROUNDS} rounds");
}

macro_rules! tests_on_postgres {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                within_time_limit(super::$name()).await;
            }
        )*
    };
}

mod postgres {
    use super::*;

    tests_on_postgres!(
        servers_start_together_on_fresh_database,
        session_works_on_both_servers,
        webhook_to_both_applied_once,
        two_owners_cancel_once,
        same_batch_to_both_stored_once,
        reversed_batches_to_both_stored_once,
        other_server_shows_jobs_within_a_second,
    );
}
