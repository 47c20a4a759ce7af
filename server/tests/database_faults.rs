//! Database faults: a PostgreSQL restart while requests run, and SQLite
//! under concurrent ingestion and page loads.
//!
//! The restart test starts its own throwaway cluster with
//! `scripts/pg-cluster.sh` on a free port from 56000 to 56099, so it never
//! stops the shared cluster of the other tests.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use app::auth::Role;
use casola_server::database::Backend;
use chrono::{SecondsFormat, Utc};
use common::process::ServerProcess;
use common::{browser_client, sign_in, spawn_app, within_time_limit};
use serde_json::{json, Value};
use sqlx::AnyPool;

fn job(id: &str) -> Value {
    let submitted = Utc::now() - chrono::Duration::minutes(30);
    json!({
        "id": id,
        "model": "llama-3-70b",
        "status": "completed",
        "submitted_at": submitted.to_rfc3339_opts(SecondsFormat::Millis, true),
        "started_at": submitted.to_rfc3339_opts(SecondsFormat::Millis, true),
        "finished_at": (submitted + chrono::Duration::seconds(30)).to_rfc3339_opts(SecondsFormat::Millis, true),
        "gpu_count": 2
    })
}

fn batch(prefix: &str, size: usize) -> Value {
    json!({ "jobs": (0..size).map(|i| job(&format!("{prefix}-{i}"))).collect::<Vec<_>>() })
}

/// A PostgreSQL cluster of one test, stopped and deleted on drop.
struct OwnCluster {
    dir: PathBuf,
    port: u16,
    admin_url: String,
}

impl OwnCluster {
    /// Starts a cluster on the first free port from 56000 to 56099.
    fn start() -> OwnCluster {
        let port = (56_000..56_100)
            .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
            .expect("a free port from 56000 to 56099");
        let dir = PathBuf::from(format!("/tmp/casola-test-pg-{port}"));
        let mut cluster = OwnCluster { dir, port, admin_url: String::new() };
        let output = cluster.script("start");
        cluster.admin_url = String::from_utf8(output.stdout).expect("the admin URL is text").trim().to_string();
        cluster
    }

    /// Runs `scripts/pg-cluster.sh ACTION` on this cluster; it must succeed.
    fn script(&self, action: &str) -> std::process::Output {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-cluster.sh");
        let output = std::process::Command::new(script)
            .arg(action)
            .env("CASOLA_PG_DIR", &self.dir)
            .env("CASOLA_PG_PORT", self.port.to_string())
            .output()
            .expect("run scripts/pg-cluster.sh");
        assert!(
            output.status.success(),
            "pg-cluster.sh {action} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Creates an empty database and returns its URL.
    async fn create_database(&self, name: &str) -> String {
        sqlx::any::install_default_drivers();
        let admin = AnyPool::connect(&self.admin_url).await.expect("connect to the own cluster");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("create the database");
        admin.close().await;
        let (base, _) = self.admin_url.rsplit_once('/').expect("the URL ends with /DATABASE");
        format!("{base}/{name}")
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-cluster.sh");
        let _ = std::process::Command::new(script)
            .arg("stop")
            .env("CASOLA_PG_DIR", &self.dir)
            .env("CASOLA_PG_PORT", self.port.to_string())
            .status();
    }
}

/// One request of the background load and what came back.
struct Outcome {
    what: &'static str,
    status: u16,
    retry_after: bool,
}

/// Checks one request made while the database is down: 503 with
/// `Retry-After` and a body of the route's kind.
async fn expect_unavailable(response: reqwest::Response, what: &str, content_type: &str) -> String {
    assert_eq!(response.status(), 503, "{what} while the database is down");
    assert!(response.headers().contains_key("retry-after"), "{what}: 503 without Retry-After");
    let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(kind.starts_with(content_type), "{what}: content type {kind}, expected {content_type}");
    let body = response.text().await.unwrap();
    assert!(!body.contains("sqlx"), "{what} shows the internal cause: {body}");
    assert!(!body.contains("error communicating"), "{what} shows the internal cause: {body}");
    body
}

async fn postgres_restart_fails_cleanly_and_recovers() {
    let cluster = OwnCluster::start();
    let url = cluster.create_database("casola_restart").await;
    let server = ServerProcess::start(&url, &[]).await;

    let pool = casola_server::database::connect(&secrecy::SecretString::from(url.clone())).await.unwrap();
    casola_server::accounts::create_org(&pool, "acme", "Acme", "UTC").await.unwrap();
    casola_server::accounts::create_user(&pool, "owner@acme.test", "Owner", common::PASSWORD).await.unwrap();
    casola_server::accounts::add_member(&pool, "acme", "owner@acme.test", Role::Owner).await.unwrap();
    let org_id = app::api_keys::ssr::org_id_of(&pool, "acme").await.unwrap();
    let key = app::api_keys::ssr::create_key(&pool, org_id, "platform").await.unwrap();
    pool.close().await;

    let browser = browser_client(&server.base, Default::default());
    sign_in(&server.base, &browser, "owner@acme.test").await;
    let api = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let summary = |client: &common::Browser| {
        client.post(server.url("/api/usage/summary")).form(&[("range", "24h"), ("tz", "UTC")]).send()
    };

    // Background load across the restart: ingestion and usage calls.
    let running = Arc::new(AtomicBool::new(true));
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let load = {
        let (running, acknowledged, api, browser, base, key) =
            (running.clone(), acknowledged.clone(), api.clone(), browser.clone(), server.base.clone(), key.clone());
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut round = 0;
            while running.load(Ordering::SeqCst) {
                round += 1;
                let prefix = format!("load-{round}");
                let response = api
                    .post(format!("{base}/api/v1/jobs"))
                    .bearer_auth(&key)
                    .json(&batch(&prefix, 50))
                    .send()
                    .await
                    .expect("the server answers every ingestion request");
                if response.status() == 200 {
                    acknowledged.lock().unwrap().push(prefix);
                }
                outcomes.push(Outcome {
                    what: "ingestion",
                    status: response.status().as_u16(),
                    retry_after: response.headers().contains_key("retry-after"),
                });
                let response = browser
                    .post(format!("{base}/api/usage/summary"))
                    .form(&[("range", "24h"), ("tz", "UTC")])
                    .send()
                    .await
                    .expect("the server answers every usage call");
                outcomes.push(Outcome {
                    what: "usage summary",
                    status: response.status().as_u16(),
                    retry_after: response.headers().contains_key("retry-after"),
                });
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            outcomes
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(api.get(server.url("/readyz")).send().await.unwrap().status(), 200);

    cluster.script("pause");

    let readiness = api.get(server.url("/readyz")).send().await.unwrap();
    expect_unavailable(readiness, "/readyz", "text/plain").await;
    let ingestion = api.post(server.url("/api/v1/jobs")).bearer_auth(&key).json(&batch("outage", 10)).send().await.unwrap();
    let body = expect_unavailable(ingestion, "ingestion", "application/json").await;
    assert!(body.contains("Retry the same batch"), "{body}");
    let usage = summary(&browser).await.unwrap();
    let body = expect_unavailable(usage, "usage summary", "application/json").await;
    assert!(body.contains("The database is unavailable right now"), "{body}");
    let page = browser.get(server.url("/usage")).send().await.unwrap();
    let body = expect_unavailable(page, "the usage page", "text/html").await;
    assert!(body.contains("The database is unavailable right now"), "{body}");

    cluster.script("resume");

    let mut ready = false;
    for _ in 0..150 {
        if api.get(server.url("/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "/readyz is 200 within 30 s of the restart, without restarting the server");
    assert_eq!(summary(&browser).await.unwrap().status(), 200, "the session survived the restart");
    assert_eq!(browser.get(server.url("/usage")).send().await.unwrap().status(), 200);
    let after = api.post(server.url("/api/v1/jobs")).bearer_auth(&key).json(&batch("after", 10)).send().await.unwrap();
    assert_eq!(after.status(), 200);

    tokio::time::sleep(Duration::from_millis(500)).await;
    running.store(false, Ordering::SeqCst);
    let outcomes = load.await.unwrap();
    for outcome in &outcomes {
        assert!(
            outcome.status == 200 || (outcome.status == 503 && outcome.retry_after),
            "{} answered {} (Retry-After sent: {}); expected 200, or 503 with Retry-After",
            outcome.what,
            outcome.status,
            outcome.retry_after
        );
    }
    let failed = outcomes.iter().filter(|o| o.status == 503).count();
    println!("background load: {} requests, {failed} answered 503 during the outage", outcomes.len());
    assert!(outcomes.iter().any(|o| o.status == 200), "the load ran before and after the outage");

    let pool = casola_server::database::connect(&secrecy::SecretString::from(url)).await.unwrap();
    for prefix in acknowledged.lock().unwrap().iter() {
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE job_id LIKE $1")
            .bind(format!("{prefix}-%"))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(stored, 50, "acknowledged batch {prefix} is stored whole");
    }
    pool.close().await;
}

/// Ingestion batches and usage calls at the same time on one SQLite file:
/// every request succeeds, none reports "database is locked".
async fn sqlite_concurrent_ingestion_and_reads() {
    let app = spawn_app(Backend::Sqlite).await;
    let org_id = app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let key = app::api_keys::ssr::create_key(&app.pool, org_id, "platform").await.unwrap();
    let owner = app.signed_in("owner@acme.test").await;

    const WRITERS: usize = 4;
    const BATCHES: usize = 8;
    const BATCH_SIZE: usize = 1_000;
    const READERS: usize = 4;
    const READS: usize = 12;

    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let (url, key) = (app.url("/api/v1/jobs"), key.clone());
        tasks.spawn(async move {
            let client = reqwest::Client::new();
            let mut results = Vec::new();
            for round in 0..BATCHES {
                let response = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&batch(&format!("w{writer}-{round}"), BATCH_SIZE))
                    .send()
                    .await
                    .unwrap();
                results.push(("ingestion", response.status().as_u16(), response.text().await.unwrap()));
            }
            results
        });
    }
    for _ in 0..READERS {
        let (client, summary_url, page_url) = (owner.clone(), app.url("/api/usage/summary"), app.url("/usage?range=24h"));
        tasks.spawn(async move {
            let mut results = Vec::new();
            for _ in 0..READS {
                let response = client.post(&summary_url).form(&[("range", "24h"), ("tz", "UTC")]).send().await.unwrap();
                results.push(("usage summary", response.status().as_u16(), response.text().await.unwrap()));
                let response = client.get(&page_url).send().await.unwrap();
                results.push(("usage page", response.status().as_u16(), response.text().await.unwrap()));
            }
            results
        });
    }

    let mut requests = 0;
    while let Some(results) = tasks.join_next().await {
        for (what, status, body) in results.unwrap() {
            requests += 1;
            assert!((200..300).contains(&status), "{what} answered {status}: {body}");
            assert!(!body.contains("database is locked"), "{what} reported a locked database");
        }
    }
    assert_eq!(requests, WRITERS * BATCHES + READERS * READS * 2);

    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&app.pool).await.unwrap();
    assert_eq!(stored, (WRITERS * BATCHES * BATCH_SIZE) as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart() {
    within_time_limit(postgres_restart_fails_cleanly_and_recovers()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_load() {
    within_time_limit(sqlite_concurrent_ingestion_and_reads()).await;
}
