//! The `/api-keys` page: the organization's ingestion keys, for owners.

use leptos::prelude::*;
use leptos_meta::Title;

use super::{list_api_keys, ApiKeyInfo, CreateApiKey, RevokeApiKey};
use crate::error::AppError;
use crate::http_status::set_page_status;
use crate::security::CsrfField;

/// Lists, creates and revokes the organization's API keys. Non-owners get
/// a 403 page that names who can manage keys.
#[component]
pub fn ApiKeysPage() -> impl IntoView {
    let create = ServerAction::<CreateApiKey>::new();
    let revoke = ServerAction::<RevokeApiKey>::new();
    let keys = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| list_api_keys(),
    );

    let created_key = move || create.value().get().and_then(Result::ok);
    let create_error = move || create.value().get().and_then(Result::err);
    let revoke_error = move || revoke.value().get().and_then(Result::err);

    view! {
        <Title text="API keys · Casola"/>
        <section class="page api-keys-page">
            <h1>"API keys"</h1>
            <p>
                "The platform reports jobs to "<code>"POST /api/v1/jobs"</code>
                " with one of these keys in an "<code>"Authorization: Bearer"</code>" header."
            </p>
            <Suspense fallback=|| view! { <p class="loading" role="status">"Loading keys…"</p> }>
                {move || keys.get().map(|result| match result {
                    Ok(list) => view! {
                        <section class="panel" aria-labelledby="new-key-title">
                            <h2 id="new-key-title">"New key"</h2>
                            <ActionForm action=create attr:class="inline-form">
                                <CsrfField/>
                                <label for="key-name">"Name"</label>
                                <input id="key-name" name="name" required maxlength="100" placeholder="production platform"/>
                                <button type="submit" class="button">"Create key"</button>
                            </ActionForm>
                            <noscript>
                                <p>"Creating a key here needs JavaScript, to show the key once. Operators can run "
                                <code>"casola create-api-key"</code>" instead."</p>
                            </noscript>
                            {move || create_error().map(|e| view! { <p class="error-message" role="alert">{e.to_string()}</p> })}
                            {move || created_key().map(|key| view! {
                                <div class="new-key" role="status">
                                    <p><strong>"Copy this key now. It is not shown again."</strong></p>
                                    <code class="secret">{key}</code>
                                </div>
                            })}
                        </section>
                        <KeyList keys=list revoke/>
                        {move || revoke_error().map(|e| view! { <p class="error-message" role="alert">{e.to_string()}</p> })}
                    }
                    .into_any(),
                    Err(error) => {
                        set_page_status(error.status());
                        view! { <KeysUnavailable error/> }.into_any()
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn KeyList(keys: Vec<ApiKeyInfo>, revoke: ServerAction<RevokeApiKey>) -> impl IntoView {
    if keys.is_empty() {
        return view! { <p class="panel">"No keys yet."</p> }.into_any();
    }
    let rows = keys
        .into_iter()
        .map(|key| {
            let status = if key.revoked_at_ms.is_some() { "Revoked" } else { "Active" };
            let created = format_date(key.created_at_ms);
            let revoked = key.revoked_at_ms.is_some();
            let name = key.name.clone();
            let label = format!("Revoke key {}", key.name);
            view! {
                <tr>
                    <th scope="row">{key.name}</th>
                    <td><code>{key.prefix}"…"</code></td>
                    <td>{created}</td>
                    <td>{status}</td>
                    <td>
                        {(!revoked).then(|| view! {
                            <ActionForm action=revoke>
                                <CsrfField/>
                                <input type="hidden" name="name" value=name/>
                                <button type="submit" class="button danger" aria-label=label>"Revoke"</button>
                            </ActionForm>
                        })}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-scroll panel">
            <table class="model-table">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Key"</th>
                        <th scope="col">"Created (UTC)"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn KeysUnavailable(error: AppError) -> impl IntoView {
    view! {
        <section class="panel error-state" role="alert">
            <p class="error-message">{error.to_string()}</p>
        </section>
    }
}

/// Formats a time as its UTC date and minute, such as "2026-12-04 10:05".
fn format_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}
