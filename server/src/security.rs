//! Middleware that checks CSRF tokens and sets the security headers of
//! every response. `app::security` explains how the token is derived and
//! sent.

use app::auth::ssr::{new_token, SESSION_COOKIE};
use app::error::AppError;
use app::security::ssr::{token_for, tokens_match, CSRF_COOKIE};
use app::security::{CsrfToken, CSRF_FIELD, CSRF_HEADER};
use app::state::AppState;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use crate::web_auth::error_page;

/// Largest form body read to find the `csrf_token` field. Every form of
/// the app is far smaller.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Content-Security-Policy of responses that are not rendered pages (JSON,
/// CSV, static files, the small error pages). Rendered pages set their own,
/// with a nonce, in `app::security::ssr::set_page_policy`.
const DEFAULT_POLICY: &str = "default-src 'self'; script-src 'self'; object-src 'none'; \
                              base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Middleware: rejects a state-changing request without the CSRF token of
/// its session (or, before sign-in, of its `casola_csrf` cookie) with 403,
/// and stores the token in the request's extensions for the page to render.
/// Sets the `casola_csrf` cookie on a browser that has neither cookie. The
/// ingestion API and Stripe's webhooks authenticate by key or signature,
/// carry no cookies, and are exempt from both.
pub async fn require_csrf_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let safe_method = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let exempt = path.starts_with("/api/v1/") || path.starts_with("/webhooks/");

    let jar = CookieJar::from_headers(request.headers());
    let key = jar.get(SESSION_COOKIE).or_else(|| jar.get(CSRF_COOKIE)).map(|c| c.value().to_string());
    // Machine clients of the exempt routes get no cookie.
    let new_cookie = (key.is_none() && !exempt).then(new_token);
    let expected = key.as_deref().map(token_for);
    let mut request = if safe_method || exempt {
        request
    } else {
        let is_server_function = path.starts_with("/api/");
        let (request, provided) = match provided_token(request).await {
            Ok(found) => found,
            Err(response) => return response,
        };
        let valid = match (&provided, &expected) {
            (Some(provided), Some(expected)) => tokens_match(provided, expected),
            _ => false,
        };
        if !valid {
            tracing::debug!(path = %request.uri().path(), provided = provided.is_some(), "rejected: missing or wrong CSRF token");
            return csrf_rejection(is_server_function);
        }
        request
    };

    let token = expected.unwrap_or_else(|| token_for(new_cookie.as_deref().unwrap_or_default()));
    request.extensions_mut().insert(CsrfToken(token));
    let mut response = next.run(request).await;

    if let Some(value) = new_cookie {
        let cookie = Cookie::build((CSRF_COOKIE, value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(state.secure_cookies)
            .build();
        if let Ok(header_value) = HeaderValue::from_str(&cookie.to_string()) {
            response.headers_mut().append(header::SET_COOKIE, header_value);
        }
    }
    response
}

/// Returns the token a request carries in the `x-csrf-token` header or, in
/// a URL-encoded form body, in the `csrf_token` field. Reads and restores
/// the body in the second case.
async fn provided_token(request: Request) -> Result<(Request, Option<String>), Response> {
    if let Some(value) = request.headers().get(CSRF_HEADER) {
        let token = value.to_str().ok().map(str::to_string);
        return Ok((request, token));
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((request, None));
    }

    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| {
        let message = format!("The form is larger than {MAX_FORM_BYTES} bytes.");
        (StatusCode::PAYLOAD_TOO_LARGE, message).into_response()
    })?;
    let token = form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == CSRF_FIELD)
        .map(|(_, value)| value.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

fn csrf_rejection(is_server_function: bool) -> Response {
    let error = AppError::Forbidden(
        "The request has no valid CSRF token. Reload the page and try again.".to_string(),
    );
    if is_server_function {
        // The body server functions use for errors, so clients show the message.
        let body = serde_json::to_string(&error).unwrap_or_default();
        return (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    error_page(&error)
}

/// Middleware: adds `X-Content-Type-Options`, `Referrer-Policy`,
/// `X-Frame-Options` and, where the handler set none, the default
/// Content-Security-Policy to every response.
pub async fn set_security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DEFAULT_POLICY));
    }
    response
}
