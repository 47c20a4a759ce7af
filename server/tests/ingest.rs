//! The ingestion API over HTTP, on SQLite and PostgreSQL: stored batches,
//! every error status, keys, and durability across `kill -9`.

mod common;

use app::auth::Role;
use app::usage::UsageSummary;
use app::api_keys::ssr::{create_key, org_id_of, revoke_key};
use casola_server::database::Backend;
use chrono::{Duration, SecondsFormat, Utc};
use common::{spawn_app, TestApp};
use serde_json::{json, Value};

fn job(id: &str, status: &str, minutes_ago: i64) -> Value {
    let submitted = Utc::now() - Duration::minutes(minutes_ago);
    let finished = matches!(status, "completed" | "failed" | "cancelled")
        .then(|| (submitted + Duration::seconds(30)).to_rfc3339_opts(SecondsFormat::Millis, true));
    json!({
        "id": id,
        "model": "llama-3-70b",
        "status": status,
        "submitted_at": submitted.to_rfc3339_opts(SecondsFormat::Millis, true),
        "started_at": submitted.to_rfc3339_opts(SecondsFormat::Millis, true),
        "finished_at": finished,
        "gpu_count": 4
    })
}

async fn create_api_key(pool: &sqlx::AnyPool, slug: &str, name: &str) -> Result<String, app::error::AppError> {
    create_key(pool, org_id_of(pool, slug).await?, name).await
}

async fn revoke_api_key(pool: &sqlx::AnyPool, slug: &str, name: &str) -> Result<(), app::error::AppError> {
    revoke_key(pool, org_id_of(pool, slug).await?, name).await
}

async fn post(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/v1/jobs"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("post a batch")
}

async fn job_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&app.pool).await.unwrap()
}

async fn setup(backend: Backend) -> (TestApp, String) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let key = create_api_key(&app.pool, "acme", "platform").await.unwrap();
    (app, key)
}

async fn batch_is_stored_and_seen_by_usage(backend: Backend) {
    let (app, key) = setup(backend).await;
    let batch = json!({ "jobs": [job("a", "completed", 10), job("b", "failed", 9), job("c", "running", 8)] });

    let response = post(&app, &key, &batch).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({ "accepted": 3 }));

    let client = app.signed_in("owner@acme.test").await;
    let summary: UsageSummary = client
        .post(app.url("/api/usage/summary"))
        .form(&[("range", "1h"), ("tz", "UTC")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary.totals.jobs, 3);
    assert_eq!(summary.totals.completed, 1);
    assert_eq!(summary.totals.failed, 1);
    assert_eq!(summary.totals.gpu_ms, 2 * 4 * 30_000, "finished jobs: GPUs × run time");
}

async fn usage_summary(app: &TestApp, client: &common::Browser) -> UsageSummary {
    let response = client.post(app.url("/api/usage/summary")).form(&[("range", "1h"), ("tz", "UTC")]).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

// The usage summary is cached for a second, but a batch stored through
// this server shows at once, even right after a read of the same window.
async fn batch_shows_at_once_after_a_cached_read(backend: Backend) {
    let (app, key) = setup(backend).await;
    let client = app.signed_in("owner@acme.test").await;
    assert_eq!(post(&app, &key, &json!({ "jobs": [job("a", "running", 10)] })).await.status(), 200);
    assert_eq!(usage_summary(&app, &client).await.totals.completed, 0);

    let later = json!({ "jobs": [job("a", "completed", 10), job("b", "failed", 9)] });
    assert_eq!(post(&app, &key, &later).await.status(), 200);
    let summary = usage_summary(&app, &client).await;
    assert_eq!(summary.totals.jobs, 2);
    assert_eq!(summary.totals.completed, 1);
    assert_eq!(summary.totals.failed, 1);
}

async fn repeated_batch_changes_nothing(backend: Backend) {
    let (app, key) = setup(backend).await;
    let first = json!({ "jobs": [job("a", "running", 5)] });
    let later = json!({ "jobs": [job("a", "completed", 5)] });

    assert_eq!(post(&app, &key, &first).await.status(), 200);
    assert_eq!(post(&app, &key, &later).await.status(), 200);
    assert_eq!(post(&app, &key, &first).await.status(), 200, "a late running report is accepted");
    assert_eq!(post(&app, &key, &later).await.status(), 200);

    let status: String = sqlx::query_scalar("SELECT status FROM jobs WHERE job_id = 'a'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "completed");
    assert_eq!(job_count(&app).await, 1);
}

async fn same_job_twice_in_one_batch(backend: Backend) {
    let (app, key) = setup(backend).await;
    let batch = json!({ "jobs": [job("a", "queued", 5), job("a", "running", 5), job("a", "queued", 5)] });
    assert_eq!(post(&app, &key, &batch).await.status(), 200);
    let status: String = sqlx::query_scalar("SELECT status FROM jobs WHERE job_id = 'a'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "running");
}

async fn invalid_record_rejects_whole_batch(backend: Backend) {
    let (app, key) = setup(backend).await;
    let mut bad = job("b", "completed", 5);
    bad["status"] = json!("done");
    bad["gpu_count"] = json!(-2);
    let batch = json!({ "jobs": [job("a", "completed", 5), bad, job("c", "queued", 1)] });

    let response = post(&app, &key, &batch).await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert!(errors.iter().all(|e| e["index"] == 1));
    let fields: Vec<&str> = errors.iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["status", "gpu_count"]);
    assert!(errors[0]["message"].as_str().unwrap().contains("\"done\""));
    assert!(body["error"].as_str().unwrap().contains("nothing was stored"));
    assert_eq!(job_count(&app).await, 0);
}

async fn error_statuses_have_json_bodies(backend: Backend) {
    let (app, key) = setup(backend).await;
    let client = reqwest::Client::new();
    let url = app.url("/api/v1/jobs");

    let bad_json = client.post(&url).bearer_auth(&key).header("content-type", "application/json").body("{\"jobs\": [").send().await.unwrap();
    assert_eq!(bad_json.status(), 400);
    assert!(bad_json.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("not valid JSON"));

    let no_array = post(&app, &key, &json!({ "records": [] })).await;
    assert_eq!(no_array.status(), 400);

    let form = client.post(&url).bearer_auth(&key).form(&[("jobs", "x")]).send().await.unwrap();
    assert_eq!(form.status(), 415);
    assert!(form.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("application/x-www-form-urlencoded"));

    let too_many = json!({ "jobs": vec![json!({}); 10_001] });
    let response = post(&app, &key, &too_many).await;
    assert_eq!(response.status(), 413);
    assert!(response.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("10001"));

    let huge = format!("{{\"jobs\": [], \"padding\": \"{}\"}}", "x".repeat(17 * 1024 * 1024));
    let response = client.post(&url).bearer_auth(&key).header("content-type", "application/json").body(huge).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(job_count(&app).await, 0);
}

async fn bad_keys_are_401(backend: Backend) {
    let (app, key) = setup(backend).await;
    let batch = json!({ "jobs": [job("a", "queued", 1)] });
    let client = reqwest::Client::new();

    let missing = client.post(app.url("/api/v1/jobs")).json(&batch).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert!(missing.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("Bearer"));

    let basic = client.post(app.url("/api/v1/jobs")).basic_auth("user", Some("pw")).json(&batch).send().await.unwrap();
    assert_eq!(basic.status(), 401);

    assert_eq!(post(&app, "csk_not-a-real-key", &batch).await.status(), 401);

    revoke_api_key(&app.pool, "acme", "platform").await.unwrap();
    let revoked = post(&app, &key, &batch).await;
    assert_eq!(revoked.status(), 401);
    assert!(revoked.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("revoked"));
    assert_eq!(job_count(&app).await, 0);
}

async fn key_writes_only_its_organization(backend: Backend) {
    let (app, key) = setup(backend).await;
    let rival = app.org_with_user("rival", "owner@rival.test", Role::Owner).await;
    let rival_key = create_api_key(&app.pool, "rival", "platform").await.unwrap();

    assert_eq!(post(&app, &key, &json!({ "jobs": [job("shared-id", "queued", 1)] })).await.status(), 200);
    assert_eq!(post(&app, &rival_key, &json!({ "jobs": [job("shared-id", "completed", 1)] })).await.status(), 200);

    let rows: Vec<(i64, String)> = sqlx::query_as("SELECT org_id, status FROM jobs ORDER BY org_id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "the same job id in two organizations is two jobs");
    assert_eq!(rows.iter().find(|(org, _)| *org == rival).unwrap().1, "completed");
    assert_eq!(rows.iter().find(|(org, _)| *org != rival).unwrap().1, "queued");
}

async fn acknowledged_batches_survive_kill(backend: Backend) {
    use std::process::Stdio;

    let (pool, url, _dir) = common::fresh_database_with_url(backend).await;
    casola_server::accounts::create_org(&pool, "acme", "Acme", "UTC").await.unwrap();
    let key = create_api_key(&pool, "acme", "platform").await.unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_casola"))
        .env("DATABASE_URL", &url)
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("CASOLA_ENV", "development")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the casola binary");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let mut acknowledged = 0;
    for batch in 0..5 {
        let jobs: Vec<Value> = (0..1_000).map(|i| job(&format!("{batch}-{i}"), "completed", 30)).collect();
        let response = client
            .post(format!("{base}/api/v1/jobs"))
            .bearer_auth(&key)
            .json(&json!({ "jobs": jobs }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        acknowledged += 1_000;
    }
    // SIGKILL right after the last acknowledgement: no shutdown code runs.
    server.start_kill().unwrap();
    server.wait().await.unwrap();

    pool.close().await;
    let reopened = casola_server::database::connect(&secrecy::SecretString::from(url)).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&reopened).await.unwrap();
    assert_eq!(stored, acknowledged);
}

on_both_databases!(
    batch_is_stored_and_seen_by_usage,
    batch_shows_at_once_after_a_cached_read,
    repeated_batch_changes_nothing,
    same_job_twice_in_one_batch,
    invalid_record_rejects_whole_batch,
    error_statuses_have_json_bodies,
    bad_keys_are_401,
    key_writes_only_its_organization,
    acknowledged_batches_survive_kill,
);

mod key_management {
    use super::*;

    async fn call(client: &common::Browser, app: &TestApp, endpoint: &str, form: &[(&str, &str)]) -> reqwest::Response {
        client.post(app.url(&format!("/api/api-keys/{endpoint}"))).form(form).send().await.unwrap()
    }

    async fn owner_creates_lists_and_revokes(backend: Backend) {
        let app = spawn_app(backend).await;
        app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
        let owner = app.signed_in("owner@acme.test").await;

        let created = call(&owner, &app, "create", &[("name", "ci runner")]).await;
        assert_eq!(created.status(), 200);
        let key: String = created.json().await.unwrap();
        assert!(key.starts_with("csk_"), "{key}");
        assert_eq!(post(&app, &key, &json!({ "jobs": [job("a", "queued", 1)] })).await.status(), 200);

        let duplicate = call(&owner, &app, "create", &[("name", "ci runner")]).await;
        assert_eq!(duplicate.status(), 409);

        let listed: Vec<app::api_keys::ApiKeyInfo> = call(&owner, &app, "list", &[]).await.json().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, "ci runner");
        assert!(key.starts_with(&listed[0].prefix));
        assert!(listed[0].prefix.len() < key.len() / 2, "the list never shows the whole key");

        assert_eq!(call(&owner, &app, "revoke", &[("name", "ci runner")]).await.status(), 200);
        assert_eq!(post(&app, &key, &json!({ "jobs": [job("b", "queued", 1)] })).await.status(), 401);
        let missing = call(&owner, &app, "revoke", &[("name", "nope")]).await;
        assert_eq!(missing.status(), 404);
    }

    async fn only_owners_manage_keys(backend: Backend) {
        let app = spawn_app(backend).await;
        app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
        app.user_in("acme", "admin@acme.test", Role::Admin).await;
        app.user_in("acme", "member@acme.test", Role::Member).await;
        app.org_with_user("rival", "owner@rival.test", Role::Owner).await;
        create_api_key(&app.pool, "acme", "platform").await.unwrap();

        for email in ["admin@acme.test", "member@acme.test"] {
            let client = app.signed_in(email).await;
            assert_eq!(call(&client, &app, "list", &[]).await.status(), 403, "{email} list");
            assert_eq!(call(&client, &app, "create", &[("name", "x")]).await.status(), 403, "{email} create");
            assert_eq!(call(&client, &app, "revoke", &[("name", "platform")]).await.status(), 403, "{email} revoke");
        }
        let signed_out = app.client();
        assert_eq!(call(&signed_out, &app, "list", &[]).await.status(), 401);

        let rival = app.signed_in("owner@rival.test").await;
        assert_eq!(call(&rival, &app, "revoke", &[("name", "platform")]).await.status(), 404);
        let listed: Vec<app::api_keys::ApiKeyInfo> = call(&rival, &app, "list", &[]).await.json().await.unwrap();
        assert!(listed.is_empty(), "another organization's keys stay hidden");

        let revoked: Option<i64> = sqlx::query_scalar("SELECT revoked_at FROM api_keys WHERE name = 'platform'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(revoked, None);
    }

    on_both_databases!(owner_creates_lists_and_revokes, only_owners_manage_keys);
}
