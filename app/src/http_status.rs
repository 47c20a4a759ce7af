//! Setting the status of a page rendered on the server.

/// Sets the HTTP status of the page being rendered on the server. In the
/// browser there is no response to change, so it does nothing.
pub fn set_page_status(status: http::StatusCode) {
    #[cfg(feature = "ssr")]
    if let Some(options) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        options.set_status(status);
    }
    #[cfg(not(feature = "ssr"))]
    let _ = status;
}
