//! The `casola` process stopped by a signal. SIGTERM drains in-flight
//! requests for up to the shutdown timeout. After `kill -9` during
//! ingestion or during Cancel Subscription no acknowledged work is lost,
//! and a retry finishes the rest.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use app::auth::Role;
use casola_server::database::Backend;
use chrono::{SecondsFormat, Utc};
use common::billing::{add_card, call, overview};
use common::process::{stripe_env, ServerProcess};
use common::{browser_client, fresh_database_with_url, sign_in, stand_in_behind_proxy};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn batch(prefix: &str, size: usize) -> Value {
    let submitted = Utc::now() - chrono::Duration::minutes(30);
    let time = submitted.to_rfc3339_opts(SecondsFormat::Millis, true);
    let finished = (submitted + chrono::Duration::seconds(30)).to_rfc3339_opts(SecondsFormat::Millis, true);
    let jobs: Vec<Value> = (0..size)
        .map(|i| {
            json!({
                "id": format!("{prefix}-{i}"), "model": "llama-3-70b", "status": "completed",
                "submitted_at": time, "started_at": time, "finished_at": finished, "gpu_count": 2
            })
        })
        .collect();
    json!({ "jobs": jobs })
}

async fn organization_with_key(pool: &sqlx::AnyPool) -> String {
    let org_id = casola_server::accounts::create_org(pool, "acme", "Acme", "UTC").await.unwrap();
    app::api_keys::ssr::create_key(pool, org_id, "platform").await.unwrap()
}

async fn jobs_with_prefix(pool: &sqlx::AnyPool, prefix: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE job_id LIKE $1")
        .bind(format!("{prefix}-%"))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Opens a connection to `server`, waits until the server has accepted it,
/// and sends the head of a `POST /api/v1/jobs` and the first half of
/// `body`. Returns the connection and the half not yet sent.
async fn start_half_sent_batch<'a>(
    server: &ServerProcess,
    key: &str,
    body: &'a str,
) -> (tokio::net::TcpStream, &'a [u8]) {
    let (first_half, second_half) = body.as_bytes().split_at(body.len() / 2);
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    // A first request on the same connection proves that the server has
    // accepted it, so SIGTERM cannot drop it from the listen queue.
    let probe = format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", server.port);
    stream.write_all(probe.as_bytes()).await.unwrap();
    let mut probe_response = Vec::new();
    while !probe_response.ends_with(b"\r\n\r\nok") {
        let mut chunk = [0u8; 512];
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the server closed the connection after /healthz");
        probe_response.extend_from_slice(&chunk[..read]);
    }

    let head = format!(
        "POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.port,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first_half).await.unwrap();
    // Let the server read the request head, so the request is in flight.
    tokio::time::sleep(Duration::from_millis(500)).await;
    (stream, second_half)
}

/// SIGTERM while a request's body is half sent: the server stops accepting
/// connections, finishes that request with 200, and exits with status 0.
async fn sigterm_drains_in_flight_request(backend: Backend) {
    let (pool, url, _dir) = fresh_database_with_url(backend).await;
    let key = organization_with_key(&pool).await;
    let mut server = ServerProcess::start(&url, &[]).await;
    let body = batch("drained", 500).to_string();
    let (mut stream, second_half) = start_half_sent_batch(&server, &key, &body).await;

    server.terminate();
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "new connections are refused within 5 s of SIGTERM");

    stream.write_all(second_half).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "the in-flight request completes: {response}");
    assert!(response.ends_with("{\"accepted\":500}"), "{response}");

    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "casola exits cleanly after draining: {status}");
    assert_eq!(jobs_with_prefix(&pool, "drained").await, 500);
}

/// SIGTERM while a client never finishes its request: the server exits
/// once `CASOLA_SHUTDOWN_TIMEOUT_SECS` has passed, and stores nothing of it.
async fn sigterm_gives_up_after_timeout(backend: Backend) {
    let (pool, url, _dir) = fresh_database_with_url(backend).await;
    let key = organization_with_key(&pool).await;
    let mut server = ServerProcess::start(&url, &[("CASOLA_SHUTDOWN_TIMEOUT_SECS", "2".to_string())]).await;
    let body = batch("abandoned", 500).to_string();
    let (mut stream, _never_sent) = start_half_sent_batch(&server, &key, &body).await;

    server.terminate();
    let status = server.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "casola exits with 0 after the shutdown timeout: {status}");
    assert!(
        server.log_text().contains("requests still running at the shutdown timeout"),
        "the log names the abandoned requests: {}",
        server.log_text()
    );
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    assert_eq!(response, "", "the abandoned request gets no response");
    assert_eq!(jobs_with_prefix(&pool, "abandoned").await, 0);
}

/// `kill -9` while batches are being sent: every acknowledged batch is
/// stored whole after a restart, and every other batch is stored whole or
/// not at all.
async fn kill_during_ingestion_loses_nothing_acknowledged(backend: Backend) {
    const SENDERS: usize = 3;
    const BATCH_SIZE: usize = 500;

    let (pool, url, _dir) = fresh_database_with_url(backend).await;
    let key = organization_with_key(&pool).await;
    let mut server = ServerProcess::start(&url, &[]).await;

    let acknowledged = Arc::new(AtomicUsize::new(0));
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..SENDERS {
        let (jobs_url, key, acknowledged) = (server.url("/api/v1/jobs"), key.clone(), acknowledged.clone());
        senders.spawn(async move {
            let client = reqwest::Client::new();
            let mut sent = Vec::new();
            for round in 0.. {
                let prefix = format!("s{sender}-{round}");
                let body = batch(&prefix, BATCH_SIZE);
                match client.post(&jobs_url).bearer_auth(&key).json(&body).send().await {
                    Ok(response) => {
                        assert_eq!(response.status(), 200, "batch {prefix} before the kill");
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                        sent.push((prefix, true));
                    }
                    // Refused: the server was gone before this request.
                    Err(error) if error.is_connect() => return sent,
                    // The kill cut this request while it was in flight.
                    Err(_) => {
                        sent.push((prefix, false));
                        return sent;
                    }
                }
            }
            unreachable!("the loop ends when the server is killed")
        });
    }
    while acknowledged.load(Ordering::SeqCst) < 6 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().await;

    let mut batches = Vec::new();
    while let Some(sent) = senders.join_next().await {
        batches.extend(sent.unwrap());
    }
    let cut = batches.iter().filter(|(_, acknowledged)| !acknowledged).count();
    assert!(cut >= 1, "at least one batch was in flight when the server died");

    let restarted = ServerProcess::start(&url, &[]).await;
    let ready = reqwest::get(restarted.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    for (prefix, acknowledged) in &batches {
        let stored = jobs_with_prefix(&pool, prefix).await;
        if *acknowledged {
            assert_eq!(stored, BATCH_SIZE as i64, "acknowledged batch {prefix} is stored whole");
        } else {
            assert!(stored == 0 || stored == BATCH_SIZE as i64, "cut batch {prefix} is whole or absent: {stored}");
        }
    }
    println!("kill -9 during ingestion: {} batches acknowledged, {cut} cut", batches.len() - cut);
}

/// `kill -9` after Stripe canceled the subscription but before the cards
/// were detached. After a restart the page shows that the cancellation did
/// not finish, and running it again completes it.
async fn kill_during_cancel_then_retry(backend: Backend) {
    let (pool, url, _dir) = fresh_database_with_url(backend).await;
    casola_server::accounts::create_org(&pool, "acme", "Acme", "UTC").await.unwrap();
    casola_server::accounts::create_user(&pool, "owner@acme.test", "Owner", common::PASSWORD).await.unwrap();
    casola_server::accounts::add_member(&pool, "acme", "owner@acme.test", Role::Owner).await.unwrap();

    let (stand_in, proxy, settings) = stand_in_behind_proxy().await;
    let secret_key = settings.secret_key.expose_secret().to_string();
    let env = stripe_env(&settings);

    let mut server = ServerProcess::start(&url, &env).await;
    let jar: Arc<reqwest::cookie::Jar> = Default::default();
    let owner = browser_client(&server.base, jar.clone());
    sign_in(&server.base, &owner, "owner@acme.test").await;
    for number in ["4242424242424242", "5555555555554444"] {
        add_card(&server.base, &stand_in, &owner, number).await;
    }
    let (status, body) = call(&server.base, &owner, "subscribe", &[]).await;
    assert_eq!(status, 200, "{body}");
    let subscription_id = overview(&server.base, &owner).await.subscription.unwrap().id;

    // Each Stripe request now takes at least 0.7 s, so the run is still
    // detaching cards well after the subscription is canceled.
    proxy.set_delay(Duration::from_millis(700));
    let cancel = {
        let (base, owner) = (server.base.clone(), owner.clone());
        tokio::spawn(async move { owner.post(format!("{base}/api/billing/cancel-subscription")).send().await })
    };
    let mut canceled = false;
    for _ in 0..400 {
        let subscription = stand_in.get(&secret_key, &format!("subscriptions/{subscription_id}")).await;
        if subscription["status"] == "canceled" {
            canceled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(canceled, "Stripe canceled the subscription within 10 s");
    server.kill().await;
    assert!(cancel.await.unwrap().is_err(), "the cancel request was cut by the kill");

    proxy.set_delay(Duration::ZERO);
    let restarted = ServerProcess::start(&url, &env).await;
    let owner = browser_client(&restarted.base, jar);
    let page = overview(&restarted.base, &owner).await;
    assert!(page.cancel_unfinished, "the page says Cancel Subscription did not finish");

    let (status, body) = call(&restarted.base, &owner, "cancel-subscription", &[]).await;
    assert_eq!(status, 200, "the retried cancel completes: {body}");
    let subscription = stand_in.get(&secret_key, &format!("subscriptions/{subscription_id}")).await;
    assert_eq!(subscription["status"], "canceled");
    let customer: String = sqlx::query_scalar("SELECT stripe_customer_id FROM billing_customers")
        .fetch_one(&pool)
        .await
        .unwrap();
    let attached = stand_in.get(&secret_key, &format!("payment_methods?customer={customer}&type=card")).await;
    assert_eq!(attached["data"].as_array().map(Vec::len), Some(0), "Stripe has no card left: {attached}");
    let page = overview(&restarted.base, &owner).await;
    assert!(!page.cancel_unfinished);
    assert!(page.cards.is_empty(), "the mirror has no card left");
    assert_eq!(page.plan, "free");
    let cancels = page.audit_log.iter().filter(|e| e.action == "Canceled subscription").count();
    // The kill may come between Stripe's response and the audit row. The
    // retry never cancels again, so there is at most one row.
    assert!(cancels <= 1, "the subscription was canceled once: {cancels} audit rows");
}

on_both_databases!(
    sigterm_drains_in_flight_request,
    sigterm_gives_up_after_timeout,
    kill_during_ingestion_loses_nothing_acknowledged,
    kill_during_cancel_then_retry,
);
