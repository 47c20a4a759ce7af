//! Protection against cross-site request forgery and the page headers that
//! limit what a page may load.
//!
//! Every state-changing request from a browser carries a CSRF token: server
//! functions in the `x-csrf-token` header, plain forms in the hidden
//! `csrf_token` field. The token is HMAC-SHA256 of a fixed label keyed by
//! the session cookie, or before sign-in by the random `casola_csrf`
//! cookie, so it changes with every session and another site cannot
//! compute it. The server renders it into a `<meta name="csrf-token">` tag.
//! `public/csrf.js` adds it to the browser's same-origin `fetch` POSTs, so
//! it covers the hydrated app's server function calls and
//! `public/billing.js`. The static single-page app has no rendered page to
//! carry the tag, so it reads the token from `fetch_csrf_token` instead.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::error::AppError;

/// Name of the hidden form field that carries the token.
pub const CSRF_FIELD: &str = "csrf_token";
/// Name of the request header that carries the token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Name of the `<meta>` tag that carries the token to scripts.
pub const CSRF_META: &str = "csrf-token";

/// The CSRF token of the current request, as the server computed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrfToken(pub String);

/// Returns the CSRF token of this page: on the server from the request, in
/// the browser from the `<meta name="csrf-token">` tag the server rendered.
pub fn csrf_token() -> String {
    #[cfg(feature = "ssr")]
    {
        ssr::request_token().unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        document()
            .query_selector(&format!("meta[name=\"{CSRF_META}\"]"))
            .ok()
            .flatten()
            .and_then(|meta| meta.get_attribute("content"))
            .unwrap_or_default()
    }
}

/// Sets the Content-Security-Policy header of the page being rendered on
/// the server. Does nothing in the browser.
pub fn set_page_policy() {
    #[cfg(feature = "ssr")]
    ssr::set_page_policy();
}

/// The hidden field that carries the CSRF token in a plain form post. Put
/// it inside every `<form method="post">` and `<ActionForm>`.
#[component]
pub fn CsrfField() -> impl IntoView {
    view! { <input type="hidden" name=CSRF_FIELD value=csrf_token()/> }
}

/// The `<meta>` tag with the CSRF token, and the script that sends it with
/// every same-origin `fetch` POST. Goes in the document's `<head>`.
#[component]
pub fn CsrfMeta() -> impl IntoView {
    view! {
        <meta name=CSRF_META content=csrf_token()/>
        <script src="/csrf.js"></script>
    }
}

/// Returns the CSRF token for the caller's own cookies. The CSRF middleware
/// derives it and, for a caller with neither cookie, sets `casola_csrf` on
/// this response. A GET, so it needs no token itself. Browsers let only this
/// server's pages and the static app (`CASOLA_SPA_ORIGIN`) read the
/// response, because only the static app gets CORS headers.
#[server(endpoint = "csrf-token", input = GetUrl, client = crate::client::TokenClient)]
pub async fn fetch_csrf_token() -> Result<String, AppError> {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.insert_header(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    }
    ssr::request_token().ok_or_else(|| crate::db::internal("reading the CSRF token", "the CSRF middleware stored none"))
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! Token derivation and the Content-Security-Policy of pages.

    use hmac::{Hmac, Mac};
    use leptos::prelude::*;
    use sha2::Sha256;

    use super::CsrfToken;
    use crate::state::AppState;

    /// Name of the cookie that keys the CSRF token of a browser without a
    /// session.
    pub const CSRF_COOKIE: &str = "casola_csrf";

    /// Returns the CSRF token for a session or `casola_csrf` cookie value:
    /// hex HMAC-SHA256 of a fixed label under that value.
    pub fn token_for(cookie_value: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(cookie_value.as_bytes()).expect("HMAC accepts keys of any length");
        mac.update(b"casola csrf token v1");
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Returns whether `provided` equals `expected`, comparing in constant
    /// time for equal lengths.
    pub fn tokens_match(provided: &str, expected: &str) -> bool {
        let (provided, expected) = (provided.as_bytes(), expected.as_bytes());
        if provided.len() != expected.len() || expected.is_empty() {
            return false;
        }
        provided.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// Returns the token the CSRF middleware stored in this request's
    /// extensions.
    pub fn request_token() -> Option<String> {
        let parts = use_context::<http::request::Parts>()?;
        parts.extensions.get::<CsrfToken>().map(|token| token.0.clone())
    }

    /// Returns the origin (`scheme://host[:port]`) of a URL, or `None` when
    /// it has no scheme or host.
    pub fn origin_of(url: &str) -> Option<String> {
        let (scheme, rest) = url.split_once("://")?;
        let host = rest.split(['/', '?', '#']).next().filter(|host| !host.is_empty())?;
        Some(format!("{scheme}://{host}"))
    }

    /// Builds the Content-Security-Policy of a rendered page. Scripts run
    /// only from this origin, from inline scripts that carry `nonce`
    /// (Leptos marks its hydration scripts with it), and from the origin of
    /// Stripe.js. `'wasm-unsafe-eval'` lets the page compile its own
    /// WebAssembly. Styles allow `'unsafe-inline'` because Stripe's card
    /// element and the no-JavaScript sidebar style use inline styles.
    pub fn page_policy(nonce: &str, stripe_js_url: Option<&str>, stripe_api_base: Option<&str>) -> String {
        let js_origin = stripe_js_url.and_then(origin_of).unwrap_or_default();
        let api_origin = stripe_api_base.and_then(origin_of).unwrap_or_default();
        // Stripe.js opens frames on hooks.stripe.com for 3-D Secure checks.
        let frames = match js_origin.as_str() {
            "" => "'none'".to_string(),
            "https://js.stripe.com" => format!("{js_origin} https://hooks.stripe.com"),
            _ => js_origin.clone(),
        };
        format!(
            "default-src 'self'; \
             script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval' {js_origin}; \
             connect-src 'self' {api_origin} {js_origin}; \
             frame-src {frames}; \
             img-src 'self' data: {js_origin}; \
             style-src 'self' 'unsafe-inline'; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        // Without Stripe the origin lists end in a space.
        .replace(" ;", ";")
    }

    /// Sets this page's Content-Security-Policy header with the nonce that
    /// Leptos gave its inline scripts.
    pub fn set_page_policy() {
        let (Some(nonce), Some(response)) =
            (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
        else {
            return;
        };
        let stripe = use_context::<AppState>().and_then(|state| state.stripe);
        let settings = stripe.as_ref().map(|stripe| stripe.settings.clone());
        let policy = page_policy(
            &nonce,
            settings.as_ref().map(|s| s.js_url.as_str()),
            settings.as_ref().map(|s| s.api_base.as_str()),
        );
        match http::HeaderValue::from_str(&policy) {
            Ok(value) => response.insert_header(http::header::CONTENT_SECURITY_POLICY, value),
            Err(error) => tracing::error!(%error, "the Content-Security-Policy is not a valid header value"),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn token_depends_on_cookie() {
            assert_eq!(token_for("a").len(), 64);
            assert_eq!(token_for("a"), token_for("a"));
            assert_ne!(token_for("a"), token_for("b"));
        }

        #[test]
        fn tokens_match_only_equal() {
            assert!(tokens_match("abc", "abc"));
            assert!(!tokens_match("abd", "abc"));
            assert!(!tokens_match("ab", "abc"));
            assert!(!tokens_match("", ""));
        }

        #[test]
        fn origin_keeps_scheme_host_port() {
            assert_eq!(origin_of("https://js.stripe.com/v3/").as_deref(), Some("https://js.stripe.com"));
            assert_eq!(origin_of("http://127.0.0.1:8420/js.stripe.com/v3/").as_deref(), Some("http://127.0.0.1:8420"));
            assert_eq!(origin_of("/v3/"), None);
        }

        #[test]
        fn page_policy_names_nonce_and_stripe() {
            let policy = page_policy("n0nce", Some("https://js.stripe.com/v3/"), Some("https://api.stripe.com/"));
            assert!(policy.contains("script-src 'self' 'nonce-n0nce' 'wasm-unsafe-eval' https://js.stripe.com;"), "{policy}");
            assert!(policy.contains("connect-src 'self' https://api.stripe.com https://js.stripe.com;"), "{policy}");
            assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
            assert!(!policy.contains("script-src 'self' 'unsafe-inline'"), "{policy}");
        }

        #[test]
        fn page_policy_without_stripe() {
            let policy = page_policy("n0nce", None, None);
            assert!(policy.contains("script-src 'self' 'nonce-n0nce' 'wasm-unsafe-eval';"), "{policy}");
            assert!(policy.contains("frame-src 'none';"), "{policy}");
            assert!(!policy.contains(" ;"), "{policy}");
        }
    }
}
