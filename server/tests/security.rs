//! CSRF tokens, security headers and `Secure` cookies, on SQLite and
//! PostgreSQL.

mod common;

use app::auth::Role;
use casola_server::database::Backend;
use common::{location, spawn_app, spawn_billing_app, spawn_production_app, TestApp, PASSWORD};

/// Returns the value of `attribute` in the first tag of `html` that
/// contains `marker`.
fn attribute_of_tag(html: &str, marker: &str, attribute: &str) -> Option<String> {
    let at = html.find(marker)?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let value_start = tag.find(&format!("{attribute}=\""))? + attribute.len() + 2;
    let value_end = value_start + tag[value_start..].find('"')?;
    Some(tag[value_start..value_end].to_string())
}

/// Returns the `(name, value)` pairs of a `;`-separated policy.
fn directives(policy: &str) -> Vec<(String, String)> {
    policy
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| match d.split_once(' ') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => (d.to_string(), String::new()),
        })
        .collect()
}

fn directive(policy: &str, name: &str) -> String {
    directives(policy)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{name} missing from the policy: {policy}"))
}

async fn page(app: &TestApp, client: &common::Browser, path: &str) -> (reqwest::header::HeaderMap, String) {
    let response = client.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    let headers = response.headers().clone();
    (headers, response.text().await.unwrap())
}

async fn sign_in_form_carries_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let browser = app.client();

    let (_, html) = page(&app, &browser, "/login").await;
    let field = attribute_of_tag(&html, "name=\"csrf_token\"", "value").expect("a csrf_token field");
    let meta = attribute_of_tag(&html, "name=\"csrf-token\"", "content").expect("a csrf-token meta tag");
    assert_eq!(field, meta);

    let form = |token: &str| {
        vec![("email", "owner@acme.test".to_string()), ("password", PASSWORD.to_string()), ("csrf_token", token.to_string())]
    };
    let forged = browser.post_without_token(app.url("/login")).form(&form("0".repeat(64).as_str())).send().await.unwrap();
    assert_eq!(forged.status(), 403, "a wrong token is rejected");
    let missing = browser.post_without_token(app.url("/login")).form(&form("")).send().await.unwrap();
    assert_eq!(missing.status(), 403, "a missing token is rejected");
    assert!(missing.text().await.unwrap().contains("no valid CSRF token"));

    let signed_in = browser.post_without_token(app.url("/login")).form(&form(&field)).send().await.unwrap();
    assert_eq!(signed_in.status(), 303);
    assert_eq!(location(&signed_in), "/usage");
}

async fn server_function_without_token_is_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let owner = app.signed_in("owner@acme.test").await;

    let missing = owner.post_without_token(app.url("/api/api-keys/create")).form(&[("name", "ci")]).send().await.unwrap();
    assert_eq!(missing.status(), 403);
    let body: app::error::AppError = missing.json().await.unwrap();
    assert!(matches!(body, app::error::AppError::Forbidden(ref m) if m.contains("CSRF")), "{body:?}");

    // The token of the signed-out page no longer counts after sign-in.
    let before_sign_in = app::security::ssr::token_for(&owner.cookie(app::security::ssr::CSRF_COOKIE).unwrap());
    let stale = owner
        .post_without_token(app.url("/api/api-keys/create"))
        .header(app::security::CSRF_HEADER, before_sign_in)
        .form(&[("name", "ci")])
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 403);
    let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys").fetch_one(&app.pool).await.unwrap();
    assert_eq!(keys, 0, "rejected calls create nothing");

    let (_, html) = page(&app, &owner, "/usage?range=1h").await;
    let token = attribute_of_tag(&html, "name=\"csrf-token\"", "content").expect("a csrf-token meta tag");
    let accepted = owner
        .post_without_token(app.url("/api/api-keys/create"))
        .header(app::security::CSRF_HEADER, token)
        .form(&[("name", "ci")])
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200, "the page's token is accepted");
}

async fn sign_out_and_switch_need_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let owner = app.signed_in("owner@acme.test").await;

    let logout = owner.post_without_token(app.url("/logout")).send().await.unwrap();
    assert_eq!(logout.status(), 403);
    let switch = owner.post_without_token(app.url("/orgs/switch")).form(&[("org", "acme")]).send().await.unwrap();
    assert_eq!(switch.status(), 403);
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(&app.pool).await.unwrap();
    assert_eq!(sessions, 1, "a forged sign-out leaves the session");

    let (_, html) = page(&app, &owner, "/usage?range=1h").await;
    let field = attribute_of_tag(&html, "name=\"csrf_token\"", "value").expect("the sidebar forms carry the token");
    let logout = owner.post_without_token(app.url("/logout")).form(&[("csrf_token", field.as_str())]).send().await.unwrap();
    assert_eq!(logout.status(), 303);
    assert_eq!(location(&logout), "/login?error=signed_out");
}

async fn cross_origin_form_post_is_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let owner = app.signed_in("owner@acme.test").await;

    // Even with the right token, a post that a browser marks as coming
    // from another site is rejected.
    let response = owner
        .post(app.url("/logout"))
        .header("sec-fetch-site", "cross-site")
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(&app.pool).await.unwrap();
    assert_eq!(sessions, 1);
}

async fn pages_have_nonce_policy(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let owner = app.signed_in("owner@acme.test").await;

    for path in ["/login", "/usage?range=1h", "/api-keys", "/no-such-page"] {
        let response = owner.get(app.url(path)).send().await.unwrap();
        let headers = response.headers().clone();
        let html = response.text().await.unwrap();
        let policy = headers["content-security-policy"].to_str().unwrap().to_string();
        let scripts = directive(&policy, "script-src");
        assert!(!scripts.contains("unsafe-inline"), "{path}: {policy}");
        assert!(!scripts.split(' ').any(|source| source == "'unsafe-eval'"), "{path}: {policy}");
        assert_eq!(directive(&policy, "frame-ancestors"), "'none'", "{path}");

        let nonce = scripts
            .split(' ')
            .find_map(|source| source.strip_prefix("'nonce-").and_then(|s| s.strip_suffix('\'')))
            .unwrap_or_else(|| panic!("{path}: no nonce in {policy}"));
        assert!(nonce.len() >= 16, "{path}: nonce {nonce}");
        let inline_scripts: Vec<&str> =
            html.split("<script").skip(1).filter(|tag| !tag.split('>').next().unwrap_or("").contains("src=")).collect();
        assert!(!inline_scripts.is_empty(), "{path}: the hydration scripts are inline");
        for script in &inline_scripts {
            let tag = script.split('>').next().unwrap_or("");
            assert!(tag.contains(&format!("nonce=\"{nonce}\"")), "{path}: inline script without the nonce: <script{tag}>");
        }
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "strict-origin-when-cross-origin", "{path}");
    }

    let second = owner.get(app.url("/login")).send().await.unwrap();
    let first = owner.get(app.url("/login")).send().await.unwrap();
    assert_ne!(
        first.headers()["content-security-policy"],
        second.headers()["content-security-policy"],
        "each response has its own nonce"
    );
}

async fn every_response_has_security_headers(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let owner = app.signed_in("owner@acme.test").await;
    let anonymous = reqwest::Client::new();

    let responses = [
        ("health check", anonymous.get(app.url("/healthz")).send().await.unwrap()),
        ("server function", owner.post(app.url("/api/session")).send().await.unwrap()),
        ("CSV export", owner.get(app.url("/usage/export.csv?range=1h")).send().await.unwrap()),
        ("ingestion error", anonymous.post(app.url("/api/v1/jobs")).send().await.unwrap()),
        ("webhook", anonymous.post(app.url("/webhooks/stripe")).send().await.unwrap()),
        ("CSRF rejection", owner.post_without_token(app.url("/logout")).send().await.unwrap()),
        ("sign-in redirect", app.client().get(app.url("/usage")).send().await.unwrap()),
    ];
    for (what, response) in responses {
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(headers["referrer-policy"], "strict-origin-when-cross-origin", "{what}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert_eq!(directive(policy, "frame-ancestors"), "'none'", "{what}");
        assert!(!directive(policy, "script-src").contains("unsafe-inline"), "{what}: {policy}");
    }

    let ingest = anonymous.post(app.url("/api/v1/jobs")).send().await.unwrap();
    assert!(ingest.headers().get("set-cookie").is_none(), "the ingestion API sets no cookie");
}

async fn billing_page_allows_stripe_js_origin(backend: Backend) {
    let billing = spawn_billing_app(backend).await;
    billing.app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let owner = billing.app.signed_in("owner@acme.test").await;

    let (headers, _) = page(&billing.app, &owner, "/billing").await;
    let policy = headers["content-security-policy"].to_str().unwrap();
    let stand_in_origin = billing.stand_in.base.trim_end_matches('/');
    assert!(directive(policy, "script-src").split(' ').any(|s| s == stand_in_origin), "{policy}");
    assert!(directive(policy, "connect-src").split(' ').any(|s| s == stand_in_origin), "{policy}");
    assert!(!directive(policy, "script-src").contains("js.stripe.com"), "only the configured origin: {policy}");
}

async fn production_cookies_are_secure(backend: Backend) {
    let app = spawn_production_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;

    let first_visit = reqwest::Client::new().get(app.url("/login")).send().await.unwrap();
    let csrf_cookie = first_visit.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(csrf_cookie.starts_with("casola_csrf="), "{csrf_cookie}");
    assert!(csrf_cookie.contains("Secure"), "{csrf_cookie}");
    assert!(csrf_cookie.contains("HttpOnly"), "{csrf_cookie}");

    let response = app
        .client()
        .post(app.url("/login"))
        .form(&[("email", "owner@acme.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/usage");
    let session_cookie = response.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(session_cookie.starts_with("casola_session="), "{session_cookie}");
    assert!(session_cookie.contains("Secure"), "{session_cookie}");
}

async fn rate_limit_message_is_shown(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let browser = app.client();
    for _ in 0..5 {
        let failed = browser
            .post(app.url("/login"))
            .form(&[("email", "owner@acme.test"), ("password", "wrong")])
            .send()
            .await
            .unwrap();
        assert!(location(&failed).contains("error=invalid"));
    }

    let limited = browser
        .post(app.url("/login"))
        .form(&[("email", "owner@acme.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let target = location(&limited);
    assert!(target.starts_with("/login?error=rate_limited"), "{target}");
    let (_, html) = page(&app, &browser, &target).await;
    assert!(html.contains("Too many failed sign-in attempts for this address. Wait 15 minutes"), "{html}");
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(&app.pool).await.unwrap();
    assert_eq!(sessions, 0, "the right password opens no session while limited");
}

on_both_databases!(
    rate_limit_message_is_shown,
    sign_in_form_carries_token,
    server_function_without_token_is_rejected,
    sign_out_and_switch_need_token,
    cross_origin_form_post_is_rejected,
    pages_have_nonce_policy,
    every_response_has_security_headers,
    billing_page_allows_stripe_js_origin,
    production_cookies_are_secure,
);
