//! Casola Billing & Usage: the pages, components and server functions
//! shared by the server (feature `ssr`) and the browser (feature `hydrate`
//! for the server-rendered app, `csr` for the static single-page app).

#![recursion_limit = "256"]

pub mod api_keys;
pub mod auth;
pub mod billing;
pub mod client;
#[cfg(feature = "ssr")]
pub mod db;
pub mod error;
mod focus;
mod http_status;
mod layout;
pub mod security;
#[cfg(feature = "ssr")]
pub mod state;
pub mod usage;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{ParentRoute, Redirect, Route, Router, Routes};
use leptos_router::{path, SsrMode};

use crate::api_keys::ApiKeysPage;
use crate::auth::LoginPage;
use crate::billing::BillingPage;
use crate::layout::Layout;
use crate::usage::UsagePage;

/// Whether this build renders every page in the browser, as the static
/// single-page app does. Such a build has no server in front of its pages
/// to redirect signed-out visitors or to take form posts, so the pages do
/// both through server functions.
pub(crate) const CLIENT_SIDE_RENDERED: bool = cfg!(feature = "csr");

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    security::set_page_policy();

    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="data:,"/>
                <script src="/tz.js"></script>
                <security::CsrfMeta/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The app's routes. Every page but `/login` needs a session: the server
/// redirects signed-out page loads before they reach here, and in the
/// static app the layout sends them to `/login`.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // The static app's index.html links its own copy of the stylesheet.
    let stylesheet = (!CLIENT_SIDE_RENDERED).then(|| view! { <Stylesheet id="leptos" href="/pkg/casola.css"/> });

    view! {
        {stylesheet}
        <Title text="Casola"/>
        <Router>
            <Routes fallback=|| view! { <NotFound/> }>
                <Route path=path!("/login") view=LoginPage/>
                <ParentRoute path=path!("") view=Layout>
                    <Route path=path!("/") view=|| view! { <Redirect path="/usage"/> }/>
                    <Route path=path!("/usage") view=UsagePage ssr=SsrMode::Async/>
                    <Route path=path!("/api-keys") view=ApiKeysPage ssr=SsrMode::Async/>
                    <Route path=path!("/billing") view=BillingPage ssr=SsrMode::Async/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    http_status::set_page_status(http::StatusCode::NOT_FOUND);
    view! {
        <main class="standalone">
            <h1>"Page not found"</h1>
            <p>"There is no page at this address."</p>
            <a class="button" href="/usage">"Go to Usage"</a>
        </main>
    }
}
