//! Sign-in, sessions, cross-site protection, the demo seed and the job
//! store, on SQLite and PostgreSQL.

mod common;

use app::auth::Role;
use casola_server::database::Backend;
use casola_server::jobs::{upsert_jobs, JobRecord, JobStatus};
use casola_server::seed::{seed_demo, SeedOutcome};
use common::{fresh_database, location, spawn_app, PASSWORD};
use sqlx::Row;

async fn wrong_password_keeps_email_and_names_no_cause(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;

    for email in ["owner@acme.test", "nobody@acme.test"] {
        let response = app
            .client()
            .post(app.url("/login"))
            .form(&[("email", email), ("password", "wrong password"), ("next", "/usage")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        let target = location(&response);
        assert!(target.starts_with("/login?error=invalid"), "{target}");
        assert!(target.contains(&format!("email={}", email.replace('@', "%40"))), "{target}");
    }
}

async fn session_cookie_is_http_only_and_lax(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let response = app
        .client()
        .post(app.url("/login"))
        .form(&[("email", "Owner@Acme.test "), ("password", PASSWORD), ("next", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/usage", "email is matched case-insensitively");
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("casola_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
}

async fn sign_in_rate_limit_after_five_failures(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let client = app.client();
    let attempt = |password: &'static str| {
        client
            .post(app.url("/login"))
            .form(&[("email", "owner@acme.test"), ("password", password)])
            .send()
    };

    for _ in 0..5 {
        let response = attempt("wrong").await.unwrap();
        assert!(location(&response).contains("error=invalid"));
    }
    let limited = attempt(PASSWORD).await.unwrap();
    assert!(location(&limited).contains("error=rate_limited"), "even the right password waits");
}

async fn sign_out_invalidates_session_on_server(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let client = app.signed_in("owner@acme.test").await;
    let token: String = sqlx::query_scalar("SELECT token_hash FROM sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!token.is_empty());

    let response = client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(&app.pool).await.unwrap();
    assert_eq!(sessions, 0);
}

async fn stolen_cookie_fails_after_sign_out(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let response = app
        .client()
        .post(app.url("/login"))
        .form(&[("email", "owner@acme.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();

    let thief = app.client();
    let page = thief.get(app.url("/usage")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 200, "the cookie works while signed in");

    // Anyone with the session cookie can derive its CSRF token.
    let stolen_token = app::security::ssr::token_for(cookie.split_once('=').unwrap().1);
    let logout = thief
        .post_without_token(app.url("/logout"))
        .header("cookie", &cookie)
        .header(app::security::CSRF_HEADER, stolen_token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 303);
    let page = thief.get(app.url("/usage")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 303, "the old cookie no longer opens a page");
}

async fn sign_in_rotates_session_id(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let client = app.signed_in("owner@acme.test").await;
    let first: String = sqlx::query_scalar("SELECT token_hash FROM sessions").fetch_one(&app.pool).await.unwrap();

    let response = client
        .post(app.url("/login"))
        .form(&[("email", "owner@acme.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/usage");
    let hashes: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM sessions").fetch_all(&app.pool).await.unwrap();
    assert_eq!(hashes.len(), 1, "the previous session is deleted");
    assert_ne!(hashes[0], first);
}

async fn cross_site_posts_are_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let plain = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let no_origin = plain
        .post(app.url("/login"))
        .form(&[("email", "owner@acme.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), 403);

    let foreign = plain
        .post(app.url("/login"))
        .header("origin", "http://evil.example")
        .form(&[("email", "owner@acme.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert!(foreign.text().await.unwrap().contains("Cross-site request rejected"));

    let fetch_metadata = plain
        .post(app.url("/api/usage/summary"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("range", "7d"), ("tz", "UTC")])
        .send()
        .await
        .unwrap();
    assert_eq!(fetch_metadata.status(), 403);
}

async fn next_parameter_cannot_leave_site(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let response = app
        .client()
        .post(app.url("/login"))
        .form(&[("email", "owner@acme.test"), ("password", PASSWORD), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/usage");
}

async fn user_without_organization_is_told_why(backend: Backend) {
    let app = spawn_app(backend).await;
    casola_server::accounts::create_user(&app.pool, "lonely@acme.test", "Lonely", PASSWORD).await.unwrap();
    let client = app.client();
    client
        .post(app.url("/login"))
        .form(&[("email", "lonely@acme.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let response = client.post(app.url("/api/session")).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("not a member of any organization"));
}

async fn demo_seed_imports_trace_once(backend: Backend) {
    let (pool, _dir) = fresh_database(backend).await;
    let now = chrono::Utc::now();

    assert_eq!(seed_demo(&pool, now).await.unwrap(), SeedOutcome::Seeded { jobs: 15_000 });
    assert_eq!(seed_demo(&pool, now).await.unwrap(), SeedOutcome::SkippedNotEmpty);

    let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&pool).await.unwrap();
    assert_eq!(jobs, 15_000);
    let models: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT model) FROM jobs").fetch_one(&pool).await.unwrap();
    assert_eq!(models, 136, "one label per trace user");
    let roles: Vec<String> = sqlx::query_scalar(
        "SELECT m.role FROM memberships m JOIN organizations o ON o.id = m.org_id \
         WHERE o.slug = 'demo' ORDER BY m.role",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(roles, ["admin", "member", "owner"]);
}

fn record(id: &str, status: JobStatus, gpu_ms: Option<i64>) -> JobRecord {
    JobRecord {
        job_id: id.to_string(),
        model: "m".to_string(),
        status,
        submitted_at: 1_700_000_000_000,
        started_at: Some(1_700_000_000_000),
        finished_at: None,
        gpu_count: 4,
        gpu_ms,
    }
}

async fn job_status_only_moves_forward(backend: Backend) {
    let (pool, _dir) = fresh_database(backend).await;
    let org = casola_server::accounts::create_org(&pool, "acme", "Acme", "UTC").await.unwrap();
    let read = |pool: sqlx::AnyPool| async move {
        let row = sqlx::query("SELECT status, gpu_ms FROM jobs WHERE job_id = 'j1'").fetch_one(&pool).await.unwrap();
        (row.get::<String, _>(0), row.get::<Option<i64>, _>(1))
    };

    upsert_jobs(&pool, org, &[record("j1", JobStatus::Running, None)]).await.unwrap();
    assert_eq!(read(pool.clone()).await, ("running".to_string(), None));

    upsert_jobs(&pool, org, &[record("j1", JobStatus::Completed, Some(9_000))]).await.unwrap();
    assert_eq!(read(pool.clone()).await, ("completed".to_string(), Some(9_000)));

    upsert_jobs(&pool, org, &[record("j1", JobStatus::Queued, None)]).await.unwrap();
    assert_eq!(read(pool.clone()).await, ("completed".to_string(), Some(9_000)), "no step back");

    upsert_jobs(&pool, org, &[record("j1", JobStatus::Failed, Some(1))]).await.unwrap();
    assert_eq!(read(pool.clone()).await, ("completed".to_string(), Some(9_000)), "a final state is final");

    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&pool).await.unwrap();
    assert_eq!(count, 1);
}

async fn job_batch_is_all_or_nothing(backend: Backend) {
    let (pool, _dir) = fresh_database(backend).await;
    let org = casola_server::accounts::create_org(&pool, "acme", "Acme", "UTC").await.unwrap();
    let mut batch: Vec<JobRecord> = (0..2_500).map(|i| record(&format!("ok-{i}"), JobStatus::Queued, None)).collect();
    // Violates the CHECK on gpu_count, in the third statement of the batch.
    batch.push(JobRecord { gpu_count: -1, ..record("bad", JobStatus::Queued, None) });

    assert!(upsert_jobs(&pool, org, &batch).await.is_err());
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&pool).await.unwrap();
    assert_eq!(count, 0);

    batch.pop();
    upsert_jobs(&pool, org, &batch).await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&pool).await.unwrap();
    assert_eq!(count, 2_500);
}

on_both_databases!(
    wrong_password_keeps_email_and_names_no_cause,
    session_cookie_is_http_only_and_lax,
    sign_in_rate_limit_after_five_failures,
    sign_out_invalidates_session_on_server,
    stolen_cookie_fails_after_sign_out,
    sign_in_rotates_session_id,
    cross_site_posts_are_rejected,
    next_parameter_cannot_leave_site,
    user_without_organization_is_told_why,
    demo_seed_imports_trace_once,
    job_status_only_moves_forward,
    job_batch_is_all_or_nothing,
);
