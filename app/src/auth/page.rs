//! The sign-in page: a plain HTML form posted to `/login`, so it works with
//! JavaScript off. The static app, which has no server behind its pages,
//! sends the same form to the `sign_in` server function instead.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;

use super::{local_path_or, SignIn};
use crate::security::CsrfField;
use crate::CLIENT_SIDE_RENDERED;

/// Why the previous sign-in attempt was sent back, as the `error` query
/// parameter names it.
fn error_message(code: &str) -> Option<&'static str> {
    match code {
        "invalid" => Some("The email address or password is incorrect."),
        "rate_limited" => {
            Some("Too many failed sign-in attempts for this address. Wait 15 minutes, then try again.")
        }
        "missing" => Some("Enter both your email address and your password."),
        "unavailable" => Some("Signing in is not possible right now. Try again in a few seconds."),
        "signed_out" => Some("You have been signed out."),
        _ => None,
    }
}

/// The sign-in page at `/login`.
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let error = move || query.with(|q| q.get_str("error").and_then(error_message));
    let email = move || query.with(|q| q.get("email").unwrap_or_default());
    let next = move || query.with(|q| q.get("next").unwrap_or_default());

    let email_input = NodeRef::<leptos::html::Input>::new();
    let password_input = NodeRef::<leptos::html::Input>::new();
    let sign_in = ServerAction::<SignIn>::new();
    let sign_in_error = move || sign_in.value().get().and_then(Result::err).map(|e| e.to_string());
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = sign_in.value().get() {
            let target = query.with_untracked(|q| local_path_or(q.get_str("next").unwrap_or_default(), "/usage").to_string());
            navigate(&target, NavigateOptions::default());
        }
    });
    // The server-rendered app lets the browser post the form. The static
    // app has no `/login` handler behind its pages, so it calls `sign_in`.
    let submit = move |ev: leptos::ev::SubmitEvent| {
        if !CLIENT_SIDE_RENDERED {
            return;
        }
        ev.prevent_default();
        let value = |input: NodeRef<leptos::html::Input>| input.get_untracked().map(|i| i.value()).unwrap_or_default();
        sign_in.dispatch(SignIn { email: value(email_input), password: value(password_input) });
    };

    view! {
        <Title text="Sign in · Casola"/>
        <main class="standalone login">
            <h1>"Sign in to Casola"</h1>
            {move || {
                let message = sign_in_error().or_else(|| error().map(str::to_string));
                message.map(|message| view! { <p class="error-message" role="alert">{message}</p> })
            }}
            <form method="post" action="/login" class="login-form" on:submit=submit>
                <CsrfField/>
                <input type="hidden" name="next" value=next/>
                <label>
                    <span>"Email"</span>
                    <input type="email" name="email" autocomplete="username" required value=email node_ref=email_input/>
                </label>
                <label>
                    <span>"Password"</span>
                    <input type="password" name="password" autocomplete="current-password" required node_ref=password_input/>
                </label>
                <button type="submit" class="button" disabled=move || sign_in.pending().get()>"Sign in"</button>
            </form>
        </main>
    }
}
