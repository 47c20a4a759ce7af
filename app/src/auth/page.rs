//! The sign-in page: a plain HTML form posted to `/login`, so it works with
//! JavaScript off.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::security::CsrfField;

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

    view! {
        <Title text="Sign in · Casola"/>
        <main class="standalone login">
            <h1>"Sign in to Casola"</h1>
            {move || error().map(|message| view! { <p class="error-message" role="alert">{message}</p> })}
            <form method="post" action="/login" class="login-form">
                <CsrfField/>
                <input type="hidden" name="next" value=next/>
                <label>
                    <span>"Email"</span>
                    <input type="email" name="email" autocomplete="username" required value=email/>
                </label>
                <label>
                    <span>"Password"</span>
                    <input type="password" name="password" autocomplete="current-password" required/>
                </label>
                <button type="submit" class="button">"Sign in"</button>
            </form>
        </main>
    }
}
