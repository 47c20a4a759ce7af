//! The signed-in frame: sidebar with navigation, organization switcher and
//! sign-out, around the page in the outlet.

use leptos::prelude::*;
use leptos_router::components::{Outlet, A};
use leptos_router::hooks::{use_location, use_navigate};
use leptos_router::NavigateOptions;

use crate::auth::{get_session_info, SessionInfo, SignOut, SwitchOrganization};
use crate::error::AppError;
use crate::security::CsrfField;
use crate::CLIENT_SIDE_RENDERED;

/// The frame every signed-in page shares.
#[component]
pub fn Layout() -> impl IntoView {
    let session = Resource::new(|| (), |_| get_session_info());

    // The server redirects a signed-out page load to the sign-in page. The
    // static app loads no page from the server, so it redirects here.
    if CLIENT_SIDE_RENDERED {
        let navigate = use_navigate();
        let location = use_location();
        Effect::new(move |_| {
            if let Some(Err(AppError::Unauthenticated)) = session.get() {
                // `search` comes without its leading `?`.
                let search = location.search.get_untracked();
                let query = if search.is_empty() { String::new() } else { format!("?{search}") };
                let here = format!("{}{query}", location.pathname.get_untracked());
                let target = format!("/login?next={}", crate::usage::params::encode_component(&here));
                navigate(&target, NavigateOptions { replace: true, ..Default::default() });
            }
        });
    }

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
    let (switch_org, sign_out) = server_function_forms();
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
                <form class="org-switcher" method="post" action="/orgs/switch" on:submit=switch_org>
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
                <form method="post" action="/logout" class="sign-out" on:submit=sign_out>
                    <CsrfField/>
                    <button type="submit" class="button secondary">"Sign out"</button>
                </form>
            </div>
        </nav>
    }
}

/// Submit handlers for the organization switch and sign-out forms. The
/// server-rendered app lets the browser post them to the server. The
/// static app calls the server functions instead, then reloads the page
/// after a switch, so that every part shows the new organization, or opens
/// the sign-in page after signing out.
fn server_function_forms() -> (
    impl Fn(leptos::ev::SubmitEvent) + Copy + 'static,
    impl Fn(leptos::ev::SubmitEvent) + Copy + 'static,
) {
    let switch = ServerAction::<SwitchOrganization>::new();
    let sign_out = ServerAction::<SignOut>::new();
    let navigate = use_navigate();
    Effect::new(move |_| match switch.value().get() {
        Some(Ok(())) => {
            let _ = window().location().reload();
        }
        Some(Err(error)) => {
            leptos::logging::error!("switching the organization failed: {error}");
        }
        None => {}
    });
    Effect::new(move |_| {
        if sign_out.value().get().is_some() {
            navigate("/login?error=signed_out", NavigateOptions::default());
        }
    });

    let switch_submit = move |ev: leptos::ev::SubmitEvent| {
        if !CLIENT_SIDE_RENDERED {
            return;
        }
        ev.prevent_default();
        let org = document()
            .get_element_by_id("org-switcher")
            .and_then(|element| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlSelectElement>(element).ok())
            .map(|select| select.value())
            .unwrap_or_default();
        switch.dispatch(SwitchOrganization { org });
    };
    let sign_out_submit = move |ev: leptos::ev::SubmitEvent| {
        if !CLIENT_SIDE_RENDERED {
            return;
        }
        ev.prevent_default();
        sign_out.dispatch(SignOut {});
    };
    (switch_submit, sign_out_submit)
}
