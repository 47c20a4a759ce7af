//! Cross-origin access for the static single-page app: with
//! `CASOLA_SPA_ORIGIN` set, pages served from that one origin may call the
//! server functions with the browser's cookies. Nothing else is opened:
//! no other origin, and no other path (pages, form posts, the CSV export,
//! the ingestion API).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The origin (`scheme://host[:port]`) the static app is served from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaOrigin(HeaderValue);

impl SpaOrigin {
    /// Parses an origin such as `https://app.example.com` or
    /// `http://127.0.0.1:8080`. Rejects a path, a trailing slash, `*` and
    /// `null`, which browsers never send as one page's origin.
    pub fn parse(value: &str) -> Result<SpaOrigin, String> {
        let invalid = |reason: &str| {
            format!("CASOLA_SPA_ORIGIN \"{value}\" is invalid: {reason}. Example: https://app.example.com")
        };
        let Some((scheme, host)) = value.split_once("://") else {
            return Err(invalid("it must start with http:// or https://"));
        };
        if scheme != "http" && scheme != "https" {
            return Err(invalid("it must start with http:// or https://"));
        }
        let host_is_valid = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !host_is_valid {
            return Err(invalid("it must be a scheme and a host with an optional port, with no path"));
        }
        let header = HeaderValue::from_str(value).map_err(|_| invalid("it is not a valid header value"))?;
        Ok(SpaOrigin(header))
    }

    /// Returns whether a request's `Origin` header names this origin.
    pub fn matches(&self, headers: &HeaderMap) -> bool {
        headers.get(header::ORIGIN) == Some(&self.0)
    }
}

/// Returns whether `path` is a server function's: `/api/…`, less the
/// ingestion API under `/api/v1/`, which authenticates by key.
pub fn is_server_function_path(path: &str) -> bool {
    path.starts_with("/api/") && !path.starts_with("/api/v1/")
}

/// Middleware: adds CORS headers for the static app. A request to a server
/// function from the SPA origin gets `Access-Control-Allow-Origin` naming
/// that origin with `Access-Control-Allow-Credentials: true`, and its
/// preflight `OPTIONS` request gets a 204 response from here. Every other
/// request passes through without CORS headers, so browsers keep other
/// origins from reading responses or sending credentialed calls.
///
/// Written by hand rather than with tower-http's `CorsLayer`, because that
/// layer responds to every preflight and sends its method and header lists
/// to any origin. Here another origin gets no CORS headers at all.
pub async fn spa_cors(State(spa): State<Option<SpaOrigin>>, request: Request, next: Next) -> Response {
    let Some(spa) = spa else {
        return next.run(request).await;
    };
    if !spa.matches(request.headers()) || !is_server_function_path(request.uri().path()) {
        return next.run(request).await;
    }

    let is_preflight = request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if is_preflight {
        preflight_response()
    } else {
        next.run(request).await
    };

    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, spa.0.clone());
    headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}

/// Allows the methods and headers the server function client sends,
/// including the CSRF token's `x-csrf-token`.
/// Browsers cache this response for `Access-Control-Max-Age` seconds.
fn preflight_response() -> Response {
    let mut response = (StatusCode::NO_CONTENT, Body::empty()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type, accept, x-csrf-token"));
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_accepts_scheme_host_and_port() {
        assert!(SpaOrigin::parse("https://app.example.com").is_ok());
        assert!(SpaOrigin::parse("http://127.0.0.1:8080").is_ok());
        assert!(SpaOrigin::parse("http://[::1]:8080").is_ok());
    }

    #[test]
    fn origin_rejects_wildcards_and_paths() {
        for value in ["*", "null", "", "app.example.com", "ftp://app.example.com", "https://app.example.com/", "https://app.example.com/spa", "https://"] {
            let error = SpaOrigin::parse(value).expect_err(value);
            assert!(error.contains("CASOLA_SPA_ORIGIN"), "{error}");
        }
    }

    #[test]
    fn server_function_paths_exclude_ingestion() {
        assert!(is_server_function_path("/api/usage/summary"));
        assert!(is_server_function_path("/api/auth/sign-in"));
        assert!(!is_server_function_path("/api/v1/jobs"));
        assert!(!is_server_function_path("/login"));
        assert!(!is_server_function_path("/usage/export.csv"));
    }
}
