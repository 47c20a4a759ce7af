//! The browser side of server function calls: where they go and which
//! cookies they carry.
//!
//! The server-rendered app calls its server functions on its own origin.
//! The static single-page app (feature `csr`) may be served from another
//! origin, such as a CDN host, and then names the server's origin in
//! `<meta name="casola-server-url">` of its `index.html`. It fetches its
//! CSRF token from the server, because no server rendered its page.

use std::cell::RefCell;
use std::future::Future;

use futures::future::{FutureExt, LocalBoxFuture, Shared};

use leptos::server_fn::client::browser::BrowserClient;
use leptos::server_fn::client::{get_server_url, Client};
use leptos::server_fn::request::browser::{BrowserRequest, Request};
use leptos::server_fn::response::browser::BrowserResponse;
use leptos::server_fn::response::ClientRes;
use leptos::server_fn::{Bytes, ServerFn};
use send_wrapper::SendWrapper;

use crate::auth::{SignIn, SignOut};
use crate::error::AppError;
use crate::security::{fetch_csrf_token, CSRF_HEADER};
use crate::CLIENT_SIDE_RENDERED;

/// Name of the `<meta>` element whose `content` is the server's origin.
pub const SERVER_URL_META: &str = "casola-server-url";

/// Returns `path` on the server that runs the server functions: unchanged
/// when the page came from that server, else prefixed with its origin.
pub fn server_url(path: &str) -> String {
    format!("{}{path}", get_server_url())
}

/// Reads the server's origin from `<meta name="casola-server-url">`, for
/// `server_fn::client::set_server_url`. Returns `None` when the element is
/// missing or empty, which means the page's own origin (as behind the
/// proxy of `trunk serve`). Call only in the browser.
pub fn server_url_from_page() -> Option<String> {
    let selector = format!("meta[name=\"{SERVER_URL_META}\"]");
    let element = leptos::prelude::document().query_selector(&selector).ok()??;
    let url = element.get_attribute("content")?;
    let url = url.trim().trim_end_matches('/');
    (!url.is_empty()).then(|| url.to_string())
}

/// The `fetch` client of every server function, as `CredentialedClient`.
/// It sends the browser's cookies with cross-origin calls too
/// (`credentials: "include"`), which the static app needs for the session
/// cookie. On the page's own origin this changes nothing, because `fetch`
/// sends cookies there anyway.
///
/// With `SEND_CSRF_TOKEN`, in the static app, it also sends the CSRF token
/// in `x-csrf-token` with every POST. The server-rendered app needs no such
/// step, because its `public/csrf.js` adds the token from the page's
/// `<meta>` tag.
pub struct CookieClient<const SEND_CSRF_TOKEN: bool>;

/// The client of every server function but `fetch_csrf_token`.
pub type CredentialedClient = CookieClient<true>;

/// The client of `fetch_csrf_token`: like `CredentialedClient` without the
/// token, which it is there to fetch.
pub type TokenClient = CookieClient<false>;

impl<const SEND_CSRF_TOKEN: bool> Client<AppError> for CookieClient<SEND_CSRF_TOKEN> {
    type Request = BrowserRequest;
    type Response = BrowserResponse;

    fn send(mut request: BrowserRequest) -> impl Future<Output = Result<BrowserResponse, AppError>> + Send {
        async move {
            let is_post = request.method() == http::Method::POST;
            let token = if SEND_CSRF_TOKEN && CLIENT_SIDE_RENDERED && is_post {
                Some(csrf_token().await?)
            } else {
                None
            };
            let url = request.url();
            include_credentials(&mut request, token.as_deref())?;
            let response = <BrowserClient as Client<AppError>>::send(request).await?;

            // Signing in or out changes the cookie the token is derived
            // from. A 403 may mean that another tab did so.
            let key_changed = [<SignIn as ServerFn>::PATH, <SignOut as ServerFn>::PATH]
                .iter()
                .any(|path| url.ends_with(path));
            let rejected = <BrowserResponse as ClientRes<AppError>>::status(&response) == 403;
            if token.is_some() && (key_changed || rejected) {
                forget_csrf_token();
            }
            Ok(response)
        }
    }

    fn open_websocket(
        path: &str,
    ) -> impl Future<
        Output = Result<
            (
                impl futures::Stream<Item = Result<Bytes, Bytes>> + Send + 'static,
                impl futures::Sink<Bytes> + Send + 'static,
            ),
            AppError,
        >,
    > + Send {
        <BrowserClient as Client<AppError>>::open_websocket(path)
    }

    fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        <BrowserClient as Client<AppError>>::spawn(future)
    }
}

/// One fetch of the CSRF token, shared by every call that needs the token
/// while it runs and kept as the token once it ends.
type TokenFetch = Shared<LocalBoxFuture<'static, Result<String, AppError>>>;

thread_local! {
    /// The CSRF token of the browser's current cookies, fetched or being
    /// fetched.
    static CSRF_TOKEN: RefCell<Option<TokenFetch>> = const { RefCell::new(None) };
}

/// Returns the CSRF token, fetching it from the server first when there is
/// none.
///
/// Calls that start together share one fetch. For a browser with neither
/// cookie, each `GET /api/csrf-token` sets a new `casola_csrf` cookie, so
/// two fetches at once would leave one call with the token of a cookie the
/// browser has already replaced, and the server would reject it.
async fn csrf_token() -> Result<String, AppError> {
    let fetch = CSRF_TOKEN.with_borrow_mut(|slot| {
        slot.get_or_insert_with(|| fetch_csrf_token().boxed_local().shared()).clone()
    });
    // The browser runs the app on one thread, so the wrapper may mark the
    // shared fetch `Send`, which every call's future must be.
    let result = SendWrapper::new(fetch).await;
    if result.is_err() {
        // Let the next call try again.
        forget_csrf_token();
    }
    result
}

fn forget_csrf_token() {
    CSRF_TOKEN.set(None);
}

/// Replaces the built request with a copy whose credentials mode is
/// `include` and that carries `csrf_token`, if given, in `x-csrf-token`.
/// The copy keeps the method, headers, body and abort signal.
fn include_credentials(request: &mut BrowserRequest, csrf_token: Option<&str>) -> Result<(), AppError> {
    let failed = |step: &str, error: wasm_bindgen::JsValue| {
        AppError::Transport(format!("could not {step} the request: {error:?}"))
    };
    // `Request` has no clone, so a blank request takes its place
    // while the original moves into the copy.
    let blank = web_sys::Request::new_with_str("about:blank").map_err(|e| failed("prepare", e))?;
    let original: web_sys::Request = std::mem::replace(&mut **request, Request::from(blank)).into();

    let init = web_sys::RequestInit::new();
    init.set_credentials(web_sys::RequestCredentials::Include);
    let credentialed =
        web_sys::Request::new_with_request_and_init(&original, &init).map_err(|e| failed("copy", e))?;
    if let Some(token) = csrf_token {
        credentialed.headers().set(CSRF_HEADER, token).map_err(|e| failed("add the CSRF token to", e))?;
    }
    **request = Request::from(credentialed);
    Ok(())
}
