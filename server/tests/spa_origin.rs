//! Cross-origin calls from the static single-page app (`CASOLA_SPA_ORIGIN`).
//! The SPA origin gets CORS headers with credentials and may call server
//! functions, sign-in included, with the CSRF token it reads from
//! `GET /api/csrf-token`. Any other origin gets no CORS headers and is
//! rejected, and without the setting nothing is opened.

mod common;

use app::auth::Role;
use casola_server::database::Backend;
use common::{spawn_app, spawn_app_for_spa, TestApp, PASSWORD};

const SPA_ORIGIN: &str = "http://127.0.0.1:8080";

/// Builds a client that keeps cookies and sends the headers Chromium sends
/// on a `fetch` from a page on `origin` to the server on another port of
/// 127.0.0.1: `Origin` and `Sec-Fetch-Site: same-site`.
fn client_from(origin: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("origin", origin.parse().unwrap());
    headers.insert("sec-fetch-site", "same-site".parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(std::time::Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).map(|value| value.to_str().unwrap().to_string())
}

/// Reads the CSRF token for `client`'s cookies as the static app does.
async fn csrf_token_of(app: &TestApp, client: &reqwest::Client) -> String {
    let response = client.get(app.url("/api/csrf-token")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let token: String = response.json().await.unwrap();
    assert_eq!(token.len(), 64, "{token}");
    token
}

/// A server function POST from `client` with `token` in `x-csrf-token`.
fn post_with_token(app: &TestApp, client: &reqwest::Client, path: &str, token: &str) -> reqwest::RequestBuilder {
    client.post(app.url(path)).header(app::security::CSRF_HEADER, token)
}

async fn sign_in_call(app: &TestApp, client: &reqwest::Client, password: &str, token: &str) -> reqwest::Response {
    post_with_token(app, client, "/api/auth/sign-in", token)
        .form(&[("email", "owner@acme.test"), ("password", password)])
        .send()
        .await
        .unwrap()
}

async fn preflight(app: &TestApp, origin: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, x-csrf-token")
        .send()
        .await
        .unwrap()
}

async fn spa_origin_signs_in_and_calls_server_functions(backend: Backend) {
    let app = spawn_app_for_spa(backend, SPA_ORIGIN).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let client = client_from(SPA_ORIGIN);
    let token = csrf_token_of(&app, &client).await;

    let signed_in = sign_in_call(&app, &client, PASSWORD, &token).await;
    assert_eq!(signed_in.status(), 200);
    assert_eq!(header(&signed_in, "access-control-allow-origin").as_deref(), Some(SPA_ORIGIN));
    assert_eq!(header(&signed_in, "access-control-allow-credentials").as_deref(), Some("true"));
    let cookie = header(&signed_in, "set-cookie").unwrap_or_default();
    assert!(cookie.starts_with("casola_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");

    // The session cookie keys the token from now on.
    let token = csrf_token_of(&app, &client).await;
    let session = post_with_token(&app, &client, "/api/session", &token).send().await.unwrap();
    assert_eq!(session.status(), 200);
    assert_eq!(header(&session, "access-control-allow-origin").as_deref(), Some(SPA_ORIGIN));
    let body: serde_json::Value = session.json().await.unwrap();
    assert_eq!(body["email"], "owner@acme.test");

    let summary = post_with_token(&app, &client, "/api/usage/summary", &token)
        .form(&[("range", "24h"), ("tz", "UTC")])
        .send()
        .await
        .unwrap();
    assert_eq!(summary.status(), 200);
    assert_eq!(header(&summary, "access-control-allow-origin").as_deref(), Some(SPA_ORIGIN));

    let signed_out = post_with_token(&app, &client, "/api/auth/sign-out", &token).send().await.unwrap();
    assert_eq!(signed_out.status(), 200);
    let token = csrf_token_of(&app, &client).await;
    let after = post_with_token(&app, &client, "/api/session", &token).send().await.unwrap();
    assert_eq!(after.status(), 401, "the session ends at sign-out");
}

async fn spa_origin_reads_sign_in_errors(backend: Backend) {
    let app = spawn_app_for_spa(backend, SPA_ORIGIN).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;

    let client = client_from(SPA_ORIGIN);
    let token = csrf_token_of(&app, &client).await;
    let response = sign_in_call(&app, &client, "wrong password", &token).await;
    assert_eq!(response.status(), 400);
    assert_eq!(header(&response, "access-control-allow-origin").as_deref(), Some(SPA_ORIGIN));
    assert!(header(&response, "set-cookie").is_none());
    let body = response.text().await.unwrap();
    assert!(body.contains("The email address or password is incorrect."), "{body}");
}

async fn other_origins_get_no_cors_and_403(backend: Backend) {
    let app = spawn_app_for_spa(backend, SPA_ORIGIN).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;

    // Another host, another port, another scheme and a suffix of the origin.
    for origin in ["http://evil.example", "http://127.0.0.1:8081", "https://127.0.0.1:8080", "http://127.0.0.1:80800"] {
        // With a valid token, so that only the origin is wrong.
        let client = client_from(origin);
        let token = csrf_token_of(&app, &client).await;
        let response = sign_in_call(&app, &client, PASSWORD, &token).await;
        assert_eq!(response.status(), 403, "{origin}");
        assert!(header(&response, "access-control-allow-origin").is_none(), "{origin}");
        assert!(header(&response, "access-control-allow-credentials").is_none(), "{origin}");
        assert!(header(&response, "set-cookie").is_none(), "{origin}");
    }
}

async fn preflight_answered_only_for_spa_origin(backend: Backend) {
    let app = spawn_app_for_spa(backend, SPA_ORIGIN).await;

    let allowed = preflight(&app, SPA_ORIGIN, "/api/auth/sign-in").await;
    assert_eq!(allowed.status(), 204);
    assert_eq!(header(&allowed, "access-control-allow-origin").as_deref(), Some(SPA_ORIGIN));
    assert_eq!(header(&allowed, "access-control-allow-credentials").as_deref(), Some("true"));
    let methods = header(&allowed, "access-control-allow-methods").unwrap_or_default();
    assert!(methods.contains("POST"), "{methods}");
    let headers = header(&allowed, "access-control-allow-headers").unwrap_or_default();
    assert!(headers.contains("content-type"), "{headers}");
    assert!(headers.contains("x-csrf-token"), "{headers}");

    let other = preflight(&app, "http://evil.example", "/api/auth/sign-in").await;
    for name in ["access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods"] {
        assert!(header(&other, name).is_none(), "{name} sent to another origin");
    }
}

async fn spa_origin_opens_no_other_path(backend: Backend) {
    let app = spawn_app_for_spa(backend, SPA_ORIGIN).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let client = client_from(SPA_ORIGIN);
    let token = csrf_token_of(&app, &client).await;

    // Form posts stay same-origin only, even with a valid token.
    let form = client
        .post(app.url("/login"))
        .form(&[("email", "owner@acme.test"), ("password", PASSWORD), ("csrf_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 403);
    assert!(header(&form, "access-control-allow-origin").is_none());

    // Pages, the ingestion API and the CSV export get no CORS headers.
    for path in ["/login", "/usage/export.csv", "/healthz"] {
        let response = client.get(app.url(path)).send().await.unwrap();
        assert!(header(&response, "access-control-allow-origin").is_none(), "{path}");
    }
    let ingest = client.post(app.url("/api/v1/jobs")).json(&serde_json::json!({"jobs": []})).send().await.unwrap();
    assert_eq!(ingest.status(), 401);
    assert!(header(&ingest, "access-control-allow-origin").is_none());
    let ingest_preflight = preflight(&app, SPA_ORIGIN, "/api/v1/jobs").await;
    assert!(header(&ingest_preflight, "access-control-allow-origin").is_none());
}

async fn unset_spa_origin_opens_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;

    let client = client_from(SPA_ORIGIN);
    let token_response = client.get(app.url("/api/csrf-token")).send().await.unwrap();
    assert!(header(&token_response, "access-control-allow-origin").is_none());
    let token: String = token_response.json().await.unwrap();
    let response = sign_in_call(&app, &client, PASSWORD, &token).await;
    assert_eq!(response.status(), 403);
    assert!(header(&response, "access-control-allow-origin").is_none());
    assert!(header(&response, "set-cookie").is_none());

    let options = preflight(&app, SPA_ORIGIN, "/api/auth/sign-in").await;
    for name in ["access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods"] {
        assert!(header(&options, name).is_none(), "{name} sent without CASOLA_SPA_ORIGIN");
    }

    // The server's own pages still sign in through the server function.
    let own_browser = app.client();
    let own = sign_in_call(&app, &own_browser.client, PASSWORD, &own_browser.csrf_token()).await;
    assert_eq!(own.status(), 200);
    assert!(header(&own, "set-cookie").unwrap_or_default().starts_with("casola_session="));
}

async fn spa_calls_need_csrf_token(backend: Backend) {
    let app = spawn_app_for_spa(backend, SPA_ORIGIN).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let client = client_from(SPA_ORIGIN);
    let token = csrf_token_of(&app, &client).await;

    let without = client
        .post(app.url("/api/auth/sign-in"))
        .form(&[("email", "owner@acme.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), 403);
    // The CORS headers let the static app read why.
    assert_eq!(header(&without, "access-control-allow-origin").as_deref(), Some(SPA_ORIGIN));
    assert!(header(&without, "set-cookie").is_none());
    let body = without.text().await.unwrap();
    assert!(body.contains("CSRF token"), "{body}");

    let wrong = sign_in_call(&app, &client, PASSWORD, &"0".repeat(64)).await;
    assert_eq!(wrong.status(), 403);
    assert!(header(&wrong, "set-cookie").is_none());

    let signed_in = sign_in_call(&app, &client, PASSWORD, &token).await;
    assert_eq!(signed_in.status(), 200);

    // The token from before sign-in no longer counts.
    let stale = post_with_token(&app, &client, "/api/session", &token).send().await.unwrap();
    assert_eq!(stale.status(), 403);
    let fresh = csrf_token_of(&app, &client).await;
    assert_ne!(fresh, token);
    let session = post_with_token(&app, &client, "/api/session", &fresh).send().await.unwrap();
    assert_eq!(session.status(), 200);
}

async fn csrf_token_endpoint_cors_and_cookie(backend: Backend) {
    let app = spawn_app_for_spa(backend, SPA_ORIGIN).await;

    let response = client_from(SPA_ORIGIN).get(app.url("/api/csrf-token")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "access-control-allow-origin").as_deref(), Some(SPA_ORIGIN));
    assert_eq!(header(&response, "access-control-allow-credentials").as_deref(), Some("true"));
    assert_eq!(header(&response, "cache-control").as_deref(), Some("no-store"));
    let cookie = header(&response, "set-cookie").unwrap_or_default();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let cookie_value = cookie
        .strip_prefix("casola_csrf=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no casola_csrf cookie: {cookie}"));
    let token: String = response.json().await.unwrap();
    assert_eq!(token, app::security::ssr::token_for(cookie_value));

    // Another origin's page gets no CORS headers, so the browser keeps the
    // token from it.
    let other = client_from("http://evil.example").get(app.url("/api/csrf-token")).send().await.unwrap();
    for name in ["access-control-allow-origin", "access-control-allow-credentials"] {
        assert!(header(&other, name).is_none(), "{name} sent to another origin");
    }
}

on_both_databases!(
    spa_calls_need_csrf_token,
    csrf_token_endpoint_cors_and_cookie,
    spa_origin_signs_in_and_calls_server_functions,
    spa_origin_reads_sign_in_errors,
    other_origins_get_no_cors_and_403,
    preflight_answered_only_for_spa_origin,
    spa_origin_opens_no_other_path,
    unset_spa_origin_opens_nothing,
);
