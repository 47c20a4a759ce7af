//! The signed-in frame: sidebar with navigation, organization switcher and
//! sign-out, around the page in the outlet.

use leptos::prelude::*;
use leptos_router::components::{Outlet, A};

use crate::auth::{get_session_info, SessionInfo};
use crate::security::CsrfField;

/// The frame every signed-in page shares.
#[component]
pub fn Layout() -> impl IntoView {
    let session = Resource::new(|| (), |_| get_session_info());

    view! {
        <div class="frame">
            <Suspense fallback=|| view! { <nav class="sidebar" aria-label="Main"></nav> }>
                {move || {
                    session.get().map(|result| match result {
                        Ok(info) => view! { <Sidebar info/> }.into_any(),
                        Err(_) => view! {
                            <nav class="sidebar" aria-label="Main">
                                <a href="/login">"Sign in"</a>
                            </nav>
                        }
                        .into_any(),
                    })
                }}
            </Suspense>
            <main class="content" id="main">
                <Outlet/>
            </main>
        </div>
    }
}

#[component]
fn Sidebar(info: SessionInfo) -> impl IntoView {
    let submit_on_change = |ev: leptos::ev::Event| {
        use wasm_bindgen::JsCast;
        if let Some(form) = event_target::<web_sys::HtmlSelectElement>(&ev).form() {
            let _ = form.unchecked_into::<web_sys::HtmlFormElement>().request_submit();
        }
    };
    let current = info.current.slug.clone();
    let has_choice = info.orgs.len() > 1;
    let is_owner = info.current.role == crate::auth::Role::Owner;
    // On narrow screens the panel below the brand folds behind a Menu
    // button. Without JavaScript the button cannot work, so a <noscript>
    // style keeps the panel open and hides the button.
    let menu_open = RwSignal::new(false);
    let options = info
        .orgs
        .iter()
        .map(|org| {
            view! {
                <option value=org.slug.clone() selected=org.slug == current>{org.name.clone()}</option>
            }
        })
        .collect_view();

    view! {
        <nav class="sidebar" aria-label="Main" class:menu-open=move || menu_open.get()>
            <div class="sidebar-top">
                <p class="brand">"Casola"</p>
                <button
                    type="button"
                    class="button secondary menu-toggle"
                    aria-expanded=move || menu_open.get().to_string()
                    aria-controls="nav-panel"
                    on:click=move |_| menu_open.update(|open| *open = !*open)
                >
                    "Menu"
                </button>
            </div>
            <noscript>
                <style>".sidebar .nav-panel { display: flex !important; } .sidebar .menu-toggle { display: none !important; }"</style>
            </noscript>
            <div class="nav-panel" id="nav-panel">
                <form class="org-switcher" method="post" action="/orgs/switch">
                    <CsrfField/>
                    <label for="org-switcher">"Organization"</label>
                    <select id="org-switcher" name="org" on:change=submit_on_change disabled=!has_choice>
                        {options}
                    </select>
                    <noscript>
                        <button type="submit" class="button secondary">"Switch"</button>
                    </noscript>
                </form>
                <p class="role">{format!("Signed in as {} ({})", info.email, info.current.role.as_str())}</p>
                <ul class="nav-links">
                    <li><A href="/usage">"Usage"</A></li>
                    <li><A href="/billing">"Billing"</A></li>
                    {is_owner.then(|| view! { <li><A href="/api-keys">"API keys"</A></li> })}
                </ul>
                <form method="post" action="/logout" class="sign-out">
                    <CsrfField/>
                    <button type="submit" class="button secondary">"Sign out"</button>
                </form>
            </div>
        </nav>
    }
}
