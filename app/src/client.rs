//! The browser side of server function calls: where they go and which
//! cookies they carry.
//!
//! The server-rendered app calls its server functions on its own origin.
//! The static single-page app (feature `csr`) may be served from another
//! origin, such as a CDN host, and then names the server's origin in
//! `<meta name="casola-server-url">` of its `index.html`.

use std::future::Future;

use leptos::server_fn::client::browser::BrowserClient;
use leptos::server_fn::client::{get_server_url, Client};
use leptos::server_fn::request::browser::{BrowserRequest, Request};
use leptos::server_fn::response::browser::BrowserResponse;
use leptos::server_fn::Bytes;

use crate::error::AppError;

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

/// The `fetch` client of every server function. It sends the browser's
/// cookies with cross-origin calls too (`credentials: "include"`), which
/// the static app needs for the session cookie. On the page's own origin
/// this changes nothing, because `fetch` sends cookies there anyway.
pub struct CredentialedClient;

impl Client<AppError> for CredentialedClient {
    type Request = BrowserRequest;
    type Response = BrowserResponse;

    fn send(mut request: BrowserRequest) -> impl Future<Output = Result<BrowserResponse, AppError>> + Send {
        let prepared = include_credentials(&mut request);
        async move {
            prepared?;
            <BrowserClient as Client<AppError>>::send(request).await
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

/// Replaces the built request with a copy whose credentials mode is
/// `include`. The copy keeps the method, headers, body and abort signal.
fn include_credentials(request: &mut BrowserRequest) -> Result<(), AppError> {
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
    **request = Request::from(credentialed);
    Ok(())
}
