//! Sign-in, sign-out and the organization switch as plain form posts, and
//! the middleware that guards pages and state-changing requests.

use app::auth::local_path_or;
use app::auth::ssr::{self as auth, session_cookie, SESSION_COOKIE};
use app::error::AppError;
use app::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use axum_extra::extract::cookie::{Cookie, CookieJar};
use serde::Deserialize;

use crate::spa::{is_server_function_path, SpaOrigin};

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /login`: checks the password, replaces any session this browser
/// had with a new one, and redirects to `next` (a local path) or `/usage`.
/// Failures redirect back to the form with the email kept.
pub async fn login(State(state): State<AppState>, jar: CookieJar, Form(form): Form<LoginForm>) -> Response {
    let back_to_form = |code: &str| {
        let query = format!(
            "error={code}&email={}&next={}",
            app::usage::params::encode_component(form.email.trim()),
            app::usage::params::encode_component(&form.next),
        );
        Redirect::to(&format!("/login?{query}")).into_response()
    };
    if form.email.trim().is_empty() || form.password.is_empty() {
        return back_to_form("missing");
    }

    let previous = jar.get(SESSION_COOKIE).map(|cookie| cookie.value().to_string());
    let token = match auth::sign_in_replacing(&state.pool, &form.email, &form.password, previous.as_deref()).await {
        Ok(token) => token,
        Err(AppError::TooManyRequests(_)) => return back_to_form("rate_limited"),
        Err(AppError::BadRequest(_)) => return back_to_form("invalid"),
        Err(_) => return back_to_form("unavailable"),
    };
    let jar = jar.add(session_cookie(token, state.secure_cookies));
    (jar, Redirect::to(local_path_or(&form.next, "/usage"))).into_response()
}

/// `POST /logout`: deletes the session on the server and the cookie.
pub async fn logout(State(state): State<AppState>, jar: CookieJar) -> Response {
    if let Some(cookie) = jar.get(SESSION_COOKIE) {
        if let Err(error) = auth::sign_out(&state.pool, cookie.value()).await {
            tracing::warn!(%error, "could not delete the session at sign-out");
        }
    }
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    (jar, Redirect::to("/login?error=signed_out")).into_response()
}

#[derive(Debug, Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    org: String,
}

/// `POST /orgs/switch`: makes another of the user's organizations current.
pub async fn switch_org(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(form): Form<SwitchForm>,
) -> Response {
    let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) else {
        return Redirect::to("/login").into_response();
    };
    match auth::switch_org(&state.pool, &token, &form.org).await {
        Ok(()) => {
            let back = headers
                .get(header::REFERER)
                .and_then(|v| v.to_str().ok())
                .and_then(referer_path)
                .unwrap_or_else(|| "/usage".to_string());
            Redirect::to(local_path_or(&back, "/usage")).into_response()
        }
        Err(AppError::Unauthenticated) => Redirect::to("/login").into_response(),
        Err(error) => error_page(&error),
    }
}

/// A small HTML page for an error outside the app's pages.
pub fn error_page(error: &AppError) -> Response {
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Error · Casola</title>\
         <link rel=\"stylesheet\" href=\"/pkg/casola.css\"></head><body><main class=\"standalone\">\
         <h1>{}</h1><p class=\"error-message\">{}</p><a class=\"button\" href=\"/usage\">Go to Usage</a>\
         </main></body></html>",
        error.status().canonical_reason().unwrap_or("Error"),
        html_escape(&error.to_string()),
    );
    (error.status(), [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn referer_path(referer: &str) -> Option<String> {
    let after_scheme = referer.split_once("://")?.1;
    let path = &after_scheme[after_scheme.find('/')?..];
    Some(path.to_string())
}

/// Paths anyone may load without a session.
fn is_public(path: &str) -> bool {
    const PUBLIC_PREFIXES: [&str; 6] = ["/pkg/", "/api/", "/webhooks/", "/healthz", "/readyz", "/login"];
    PUBLIC_PREFIXES.iter().any(|prefix| path.starts_with(prefix))
        || path == "/tz.js"
        || path == "/csrf.js"
        || path == "/favicon.ico"
}

/// Middleware: redirects a signed-out browser that requests a page to
/// `/login?next=…`, so the requested page opens after signing in.
pub async fn require_session_for_pages(State(state): State<AppState>, jar: CookieJar, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if request.method() != Method::GET || is_public(path) {
        return next.run(request).await;
    }
    let signed_in = match jar.get(SESSION_COOKIE) {
        Some(cookie) => match auth::caller_from_token(&state.pool, cookie.value()).await {
            Ok(_) => true,
            // Signed in but in no organization: the page explains it.
            Err(AppError::Forbidden(_)) => true,
            Err(AppError::Unauthenticated) => false,
            Err(error) => return error_page(&error),
        },
        None => false,
    };
    if signed_in {
        return next.run(request).await;
    }
    let wanted = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/usage".to_string());
    let target = format!("/login?next={}", app::usage::params::encode_component(&wanted));
    Redirect::to(&target).into_response()
}

/// Middleware: rejects a state-changing request that a browser sent from
/// another site. Browsers mark every request with `Sec-Fetch-Site` or, on
/// a POST, `Origin`; a request with neither is not from a browser page and
/// is rejected too. The ingestion API and Stripe's webhooks authenticate
/// by key or signature instead and are exempt. A server function call
/// whose `Origin` is exactly the static app's (`CASOLA_SPA_ORIGIN`) is let
/// through; form posts from there are still rejected.
pub async fn reject_cross_site(State(spa): State<Option<SpaOrigin>>, request: Request, next: Next) -> Response {
    let safe_method = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let path = request.uri().path();
    let exempt = path.starts_with("/api/v1/") || path.starts_with("/webhooks/");
    let from_spa = spa
        .as_ref()
        .is_some_and(|spa| spa.matches(request.headers()) && is_server_function_path(path));
    if safe_method || exempt || from_spa || is_same_site(request.headers()) {
        return next.run(request).await;
    }
    tracing::debug!(path, "rejected: cross-site request");
    let body = "Cross-site request rejected: this request did not come from a Casola page. \
                Reload the page and try again.";
    (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], Body::from(body))
        .into_response()
}

fn is_same_site(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return site == "same-origin" || site == "none";
    }
    match (get("origin"), get("host")) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, origin_host)| origin_host == host),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_path_rejects_other_sites() {
        assert_eq!(local_path_or("/usage?range=1h", "/usage"), "/usage?range=1h");
        assert_eq!(local_path_or("//evil.example/x", "/usage"), "/usage");
        assert_eq!(local_path_or("https://evil.example/", "/usage"), "/usage");
        assert_eq!(local_path_or("/\\evil.example", "/usage"), "/usage");
        assert_eq!(local_path_or("", "/usage"), "/usage");
    }

    #[test]
    fn same_site_from_fetch_metadata_or_origin() {
        let mut headers = HeaderMap::new();
        assert!(!is_same_site(&headers));
        headers.insert("host", "127.0.0.1:3000".parse().unwrap());
        headers.insert("origin", "http://127.0.0.1:3000".parse().unwrap());
        assert!(is_same_site(&headers));
        headers.insert("origin", "http://evil.example".parse().unwrap());
        assert!(!is_same_site(&headers));
        headers.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(!is_same_site(&headers));
        headers.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(is_same_site(&headers));
    }
}
