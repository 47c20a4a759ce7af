//! The browser entry points: `hydrate` for the server-rendered page
//! (feature `hydrate`), and a start function that renders the whole app in
//! the browser for the static single-page app (feature `csr`).

#[cfg(all(feature = "hydrate", feature = "csr"))]
compile_error!("the features `hydrate` and `csr` exclude each other: enable one");

/// Hydrates the page the server rendered. cargo-leptos's loader calls it.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}

/// Renders the app into the empty `<body>` of the static app's index.html,
/// sending server function calls to the origin that its
/// `<meta name="casola-server-url">` names.
#[cfg(feature = "csr")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    if let Some(url) = app::client::server_url_from_page() {
        // Runs once per page load, so leaking the one string is bounded.
        leptos::server_fn::client::set_server_url(Box::leak(url.into_boxed_str()));
    }
    leptos::mount::mount_to_body(app::App);
}
