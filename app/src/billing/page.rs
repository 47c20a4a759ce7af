//! The `/billing` page: subscription, cards, invoices and the audit log.
//! Owners get the controls; everyone else sees the same data and who can
//! manage billing. Adding a card runs in `public/billing.js`, which loads
//! Stripe.js from the URL the server names, so card numbers go from the
//! browser to Stripe and never to this server.

use leptos::prelude::*;
use leptos_meta::Title;

use super::rules::{self, Removal};
use super::{
    get_billing_overview, BillingOverview, CancelSubscription, Card, CardExpiry, RemoveCard, SetDefaultCard,
    Subscribe, SubscriptionView,
};

/// Formats an amount in a currency's minor unit, such as "$49.00" or
/// "49.00 EUR".
pub fn money(amount: i64, currency: &str) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let units = format!("{}.{:02}", amount.abs() / 100, amount.abs() % 100);
    match currency {
        "usd" => format!("{sign}${units}"),
        other => format!("{sign}{units} {}", other.to_uppercase()),
    }
}

/// Formats milliseconds since the epoch as a UTC date, such as "Dec 4, 2026".
pub fn date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%b %-d, %Y").to_string())
        .unwrap_or_else(|| "—".to_string())
}

/// Formats milliseconds since the epoch as UTC date and time.
fn date_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%b %-d, %Y %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".to_string())
}

/// A change waiting for the user's confirmation in the dialog.
#[derive(Debug, Clone, PartialEq)]
enum Confirm {
    RemoveCard { card: Card, removal: Removal },
    Cancel,
}

/// Renders the billing page of the current organization.
#[component]
pub fn BillingPage() -> impl IntoView {
    let overview = Resource::new(|| (), |_| get_billing_overview());
    let set_default = ServerAction::<SetDefaultCard>::new();
    let remove = ServerAction::<RemoveCard>::new();
    let subscribe = ServerAction::<Subscribe>::new();
    let cancel = ServerAction::<CancelSubscription>::new();

    // Any finished change reloads the page's data from the mirror.
    Effect::new(move |_| {
        let versions = (set_default.version().get(), remove.version().get(), subscribe.version().get(), cancel.version().get());
        if versions != (0, 0, 0, 0) {
            overview.refetch();
        }
    });
    let action_error = move || {
        [set_default.value().get(), remove.value().get(), subscribe.value().get(), cancel.value().get()]
            .into_iter()
            .flatten()
            .find_map(|result| result.err())
    };
    let pending = Memo::new(move |_| {
        set_default.pending().get() || remove.pending().get() || subscribe.pending().get() || cancel.pending().get()
    });
    let confirm = RwSignal::new(None::<Confirm>);
    // Effects run only in the browser, so this marks the page as hydrated
    // for browser tests, which must not click before the handlers exist.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    // A finished change re-renders the cards, which drops keyboard focus.
    // Put it back on the control the user was on, or on the heading of
    // its section when that control is gone (a removed card, a star that
    // became the default).
    let last_focused = crate::focus::track_focus();
    Effect::new(move |_| {
        let _ = overview.get();
        crate::focus::restore_lost_focus(last_focused, section_heading_for);
    });

    view! {
        <Title text="Billing · Casola"/>
        <section class="page billing-page" data-hydrated=move || hydrated.get().to_string()>
            <h1 id="billing-title" tabindex="-1">"Billing"</h1>
            <Suspense fallback=|| view! { <p class="loading" role="status">"Loading billing…"</p> }>
                {move || overview.get().map(|result| match result {
                    Ok(data) => view! {
                        {move || action_error().map(|error| view! {
                            <p class="error-message" role="alert">{error.to_string()}</p>
                        })}
                        <BillingBody data=data.clone() confirm pending set_default subscribe/>
                    }.into_any(),
                    Err(error) => view! {
                        <div class="error-state" role="alert">
                            <p>{error.to_string()}</p>
                            <button class="button" on:click=move |_| overview.refetch()>"Try again"</button>
                        </div>
                    }.into_any(),
                })}
            </Suspense>
            <ConfirmDialog confirm remove cancel/>
        </section>
    }
}

/// The heading to focus when the control with `id` is gone after a change.
fn section_heading_for(id: &str) -> Option<&'static str> {
    if id == "cancel-subscription" || id == "subscribe" {
        Some("subscription-title")
    } else if id.starts_with("star-") || id.starts_with("remove-") || id.starts_with("confirm-") {
        Some("cards-title")
    } else {
        Some("billing-title")
    }
}

#[component]
fn BillingBody(
    data: BillingOverview,
    confirm: RwSignal<Option<Confirm>>,
    pending: Memo<bool>,
    set_default: ServerAction<SetDefaultCard>,
    subscribe: ServerAction<Subscribe>,
) -> impl IntoView {
    let manage = data.can_manage && data.billing_available;
    let subscription_live = data
        .subscription
        .as_ref()
        .is_some_and(|s| rules::CHARGING_STATUSES.contains(&s.status.as_str()));
    let show_cancel = manage && (subscription_live || data.cancel_unfinished);
    let status_for_removal = data.subscription.as_ref().map(|s| s.status.clone());
    let cards_for_removal = data.cards.clone();
    let can_subscribe = manage && data.can_subscribe();

    view! {
        {data.stale.then(|| view! {
            <p class="notice stale" role="status">
                {format!(
                    "Stripe cannot be reached right now. This is the last known state{}.",
                    data.synced_at.map(|t| format!(", from {}", date_time(t))).unwrap_or_default()
                )}
            </p>
        })}
        {(!data.billing_available).then(|| view! {
            <p class="notice" role="status">"Billing is not set up on this server."</p>
        })}
        {data.cancel_unfinished.then(|| view! {
            <p class="notice stale" role="alert">
                "Cancel Subscription did not finish. Run it again to complete the cancellation."
            </p>
        })}
        {(!data.can_manage).then(|| view! {
            <p class="notice who-manages">
                {format!("Only owners can manage billing for {}: {}.", data.org_name, data.owners.join(", "))}
            </p>
        })}

        <section class="panel" aria-labelledby="subscription-title">
            <h2 id="subscription-title" tabindex="-1">"Subscription"</h2>
            <SubscriptionPanel subscription=data.subscription.clone() plan=data.plan.clone()/>
            {can_subscribe.then(|| view! {
                <button class="button" id="subscribe" disabled=move || pending.get() on:click=move |_| { subscribe.dispatch(super::Subscribe {}); }>
                    "Subscribe"
                </button>
            })}
            {(manage && !subscription_live && data.cards.is_empty()).then(|| view! {
                <p class="card-note">"Add a card to subscribe to the paid plan."</p>
            })}
        </section>

        <section class="panel" aria-labelledby="cards-title">
            <div class="panel-header">
                <h2 id="cards-title" tabindex="-1">"Cards"</h2>
                {manage.then(|| view! {
                    <button type="button" class="button" id="add-card" data-first-card=data.cards.is_empty().to_string()>
                        "Add Card"
                    </button>
                })}
            </div>
            {data.cards.is_empty().then(|| view! { <p class="card-note">"No cards on file."</p> })}
            <ul class="card-list">
                {data.cards.iter().cloned().map(|card| {
                    let cards = cards_for_removal.clone();
                    let status = status_for_removal.clone();
                    view! {
                        <CardRow card manage pending
                            on_star=move |id: String| { set_default.dispatch(SetDefaultCard { card_id: id }); }
                            on_trash=move |card: Card| {
                                let removal = rules::plan_removal(&cards, &card.id, status.as_deref());
                                confirm.set(Some(Confirm::RemoveCard { card, removal }));
                            }
                        />
                    }
                }).collect_view()}
            </ul>
            {manage.then(|| view! { <AddCardDialog/> })}
        </section>

        <section class="panel" aria-labelledby="invoices-title">
            <h2 id="invoices-title">"Recent invoices"</h2>
            <InvoiceTable invoices=data.invoices.clone()/>
        </section>

        {data.can_manage.then(|| view! {
            <section class="panel" aria-labelledby="audit-title">
                <h2 id="audit-title">"Billing audit log"</h2>
                <AuditTable entries=data.audit_log.clone()/>
            </section>
        })}

        {show_cancel.then(|| view! {
            <section class="panel danger-zone" aria-labelledby="cancel-title">
                <h2 id="cancel-title">"Cancel Subscription"</h2>
                <p class="card-note">"Ends the subscription now, removes every card and moves the organization to the Free plan."</p>
                <button type="button" class="button danger" id="cancel-subscription" disabled=move || pending.get()
                    on:click=move |_| confirm.set(Some(Confirm::Cancel))>
                    "Cancel Subscription"
                </button>
            </section>
        })}
    }
}

#[component]
fn SubscriptionPanel(subscription: Option<SubscriptionView>, plan: String) -> impl IntoView {
    match subscription {
        Some(s) if plan == "paid" || s.status != "canceled" => view! {
            <dl class="facts">
                <dt>"Plan"</dt><dd data-field="plan">{s.plan_name.clone()}</dd>
                <dt>"Status"</dt>
                <dd data-field="status"><span class=format!("status status-{}", s.status)>{rules::status_label(&s.status)}</span></dd>
                <dt>"Price"</dt><dd data-field="price">{format!("{} / {}", money(s.amount, &s.currency), s.interval)}</dd>
                <dt>"Current period ends"</dt>
                <dd data-field="period-end">{s.current_period_end.map(date).unwrap_or_else(|| "—".to_string())}</dd>
            </dl>
        }.into_any(),
        _ => view! {
            <dl class="facts">
                <dt>"Plan"</dt><dd data-field="plan">"Free"</dd>
            </dl>
        }.into_any(),
    }
}

#[component]
fn CardRow(
    card: Card,
    manage: bool,
    pending: Memo<bool>,
    on_star: impl Fn(String) + 'static,
    on_trash: impl Fn(Card) + 'static,
) -> impl IntoView {
    let label = format!("{} ending in {}", card.brand_label(), card.last4);
    let expiry = match card.expiry {
        CardExpiry::Valid => None,
        CardExpiry::ExpiringSoon => Some(("expiring", "Expires soon")),
        CardExpiry::Expired => Some(("expired", "Expired")),
    };
    let star = if card.is_default {
        // The "Default" badge beside it says the same in words.
        view! { <span class="star filled" title="Default card" aria-hidden="true">"★"</span> }.into_any()
    } else if manage {
        let id = card.id.clone();
        view! {
            <button type="button" class="icon-button star" id=format!("star-{}", card.id) title="Make default" aria-label=format!("Make {label} the default")
                disabled=move || pending.get() on:click=move |_| on_star(id.clone())>"☆"</button>
        }.into_any()
    } else {
        view! { <span class="star" aria-hidden="true">"☆"</span> }.into_any()
    };
    let trash = manage.then(|| {
        let card = card.clone();
        view! {
            <button type="button" class="icon-button trash" id=format!("remove-{}", card.id) title="Remove card" aria-label=format!("Remove {label}")
                disabled=move || pending.get() on:click=move |_| on_trash(card.clone())>
                <svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2">
                    <path d="M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3"/>
                </svg>
            </button>
        }
    });

    view! {
        <li class="card-row" data-card-id=card.id.clone() data-last4=card.last4.clone()>
            {star}
            <span class="card-brand">{card.brand_label()}</span>
            <span class="card-number">{format!("•••• {}", card.last4)}</span>
            <span class="card-expiry">{format!("Expires {:02}/{}", card.exp_month, card.exp_year)}</span>
            {expiry.map(|(class, text)| view! { <span class=format!("badge {class}")>{text}</span> })}
            {card.is_default.then(|| view! { <span class="badge default">"Default"</span> })}
            {trash}
        </li>
    }
}

/// Renders the Add Card dialog. `public/billing.js` opens it from the Add
/// Card button, mounts Stripe.js's card element in `#card-element` and
/// submits it.
#[component]
fn AddCardDialog() -> impl IntoView {
    view! {
        <dialog id="add-card-dialog" class="dialog" aria-labelledby="add-card-title">
            <form method="dialog" id="add-card-form">
                <h2 id="add-card-title">"Add Card"</h2>
                <p class="card-note">"Card details go straight to Stripe; Casola never sees the card number."</p>
                <div id="card-element" class="card-element"></div>
                <p id="card-errors" class="error-message" role="alert"></p>
                <div class="dialog-buttons">
                    <button type="button" class="button secondary" id="add-card-cancel">"Cancel"</button>
                    <button type="submit" class="button" id="add-card-save">"Save card"</button>
                </div>
            </form>
        </dialog>
        <script src="/billing.js" defer></script>
    }
}

/// Renders the confirmation for a removal or a cancellation as a modal
/// dialog. Opening it focuses its safe button (Keep or Close), Tab and
/// Shift+Tab stay inside it, Escape closes it, and closing it returns
/// focus to the button that opened it.
#[component]
fn ConfirmDialog(
    confirm: RwSignal<Option<Confirm>>,
    remove: ServerAction<RemoveCard>,
    cancel: ServerAction<CancelSubscription>,
) -> impl IntoView {
    let opener = StoredValue::new(None::<String>);
    Effect::new(move |was_open: Option<bool>| {
        let open = confirm.with(Option::is_some);
        let was_open = was_open.unwrap_or(false);
        if open && !was_open {
            // Effects run after the dialog is drawn but before anything
            // moved focus, so the focused element is still the opener.
            opener.set_value(crate::focus::active_element_id());
            request_animation_frame(|| {
                crate::focus::focus_by_id(CONFIRM_DISMISS);
            });
        } else if !open && was_open {
            // A confirmed change disables the opener while it runs, so
            // focus then goes to the heading of the opener's section.
            let target = opener.get_value().unwrap_or_default();
            request_animation_frame(move || {
                if !crate::focus::focus_by_id(&target) {
                    let heading = section_heading_for(&target).unwrap_or("billing-title");
                    crate::focus::focus_by_id(heading);
                }
            });
        }
        open
    });

    let keys = window_event_listener(leptos::ev::keydown, move |event| {
        if confirm.with_untracked(Option::is_none) {
            return;
        }
        match event.key().as_str() {
            "Escape" => {
                event.prevent_default();
                confirm.set(None);
            }
            "Tab" => {
                // The dialog's only focusable elements are its one or two
                // buttons, so the trap cycles between them.
                let has_action = crate::focus::element_exists(CONFIRM_ACTION);
                let last = if has_action { CONFIRM_ACTION } else { CONFIRM_DISMISS };
                let first = CONFIRM_DISMISS;
                let current = crate::focus::active_element_id();
                let target = match current.as_deref() {
                    Some(id) if id == last && !event.shift_key() => first,
                    Some(id) if id == first && event.shift_key() => last,
                    Some(id) if id == first || id == last => return,
                    _ => first,
                };
                event.prevent_default();
                crate::focus::focus_by_id(target);
            }
            _ => {}
        }
    });
    on_cleanup(move || keys.remove());

    move || {
        confirm.get().map(|pending| {
            let close = move |_| confirm.set(None);
            let (title, message, action_label, allowed) = match &pending {
                Confirm::RemoveCard { card, removal: Removal::Allowed { new_default } } => {
                    let label = format!("the {} card ending in {}", card.brand_label(), card.last4);
                    let message = match new_default {
                        Some(next) => format!(
                            "Remove {label}? It is the default card, so the {} card ending in {} becomes the default.",
                            next.brand_label(),
                            next.last4
                        ),
                        None => format!("Remove {label}?"),
                    };
                    ("Remove card", message, "Remove card", true)
                }
                Confirm::RemoveCard { removal: Removal::Refused(reason), .. } => {
                    ("This card cannot be removed", reason.clone(), "", false)
                }
                Confirm::Cancel => (
                    "Cancel Subscription",
                    "The downgrade is immediate: the subscription ends now, every card is removed, and the \
                     organization moves to the Free plan. This cannot be undone."
                        .to_string(),
                    "Cancel Subscription now",
                    true,
                ),
            };
            let confirm_action = move |_| {
                match confirm.get_untracked() {
                    Some(Confirm::RemoveCard { card, .. }) => {
                        remove.dispatch(RemoveCard { card_id: card.id });
                    }
                    Some(Confirm::Cancel) => {
                        cancel.dispatch(CancelSubscription {});
                    }
                    None => {}
                }
                confirm.set(None);
            };
            view! {
                <div class="dialog-backdrop">
                    <div class="dialog open" role="alertdialog" aria-modal="true" aria-labelledby="confirm-title" aria-describedby="confirm-message">
                        <h2 id="confirm-title">{title}</h2>
                        <p id="confirm-message">{message}</p>
                        <div class="dialog-buttons">
                            <button type="button" class="button secondary" id=CONFIRM_DISMISS on:click=close>
                                {if allowed { "Keep" } else { "Close" }}
                            </button>
                            {allowed.then(|| view! {
                                <button type="button" class="button danger" id=CONFIRM_ACTION on:click=confirm_action>{action_label}</button>
                            })}
                        </div>
                    </div>
                </div>
            }
        })
    }
}

/// Element id of the dialog's safe button, Keep or Close.
const CONFIRM_DISMISS: &str = "confirm-dismiss";
/// Element id of the dialog's button that carries out the change.
const CONFIRM_ACTION: &str = "confirm-action";

#[component]
fn InvoiceTable(invoices: Vec<super::InvoiceView>) -> impl IntoView {
    if invoices.is_empty() {
        return view! { <p class="card-note">"No invoices yet."</p> }.into_any();
    }
    view! {
        <div class="table-scroll" role="region" aria-labelledby="invoices-title" tabindex="0">
            <table class="model-table invoice-table">
                <thead><tr><th>"Date"</th><th>"Number"</th><th class="numeric">"Amount"</th><th>"Status"</th><th>"Invoice"</th></tr></thead>
                <tbody>
                    {invoices.into_iter().map(|invoice| view! {
                        <tr>
                            <td>{date(invoice.created_at)}</td>
                            <td>{invoice.number.clone().unwrap_or_else(|| invoice.id.clone())}</td>
                            <td class="numeric">{money(invoice.amount_due, &invoice.currency)}</td>
                            <td>{invoice.status.clone()}</td>
                            <td>{match invoice.hosted_invoice_url {
                                Some(url) => view! { <a href=url target="_blank" rel="noopener">"View on Stripe"</a> }.into_any(),
                                None => view! { <span class="card-note">"No hosted page"</span> }.into_any(),
                            }}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn AuditTable(entries: Vec<super::AuditEntry>) -> impl IntoView {
    if entries.is_empty() {
        return view! { <p class="card-note">"No billing changes yet."</p> }.into_any();
    }
    view! {
        <div class="table-scroll" role="region" aria-labelledby="audit-title" tabindex="0">
            <table class="model-table audit-table">
                <thead><tr><th>"When"</th><th>"Who"</th><th>"Change"</th><th>"Card or subscription"</th></tr></thead>
                <tbody>
                    {entries.into_iter().map(|entry| view! {
                        <tr>
                            <td>{date_time(entry.created_at)}</td>
                            <td>{entry.actor}</td>
                            <td>{entry.action}</td>
                            <td>{entry.target.unwrap_or_default()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_formats_minor_units() {
        assert_eq!(money(4_900, "usd"), "$49.00");
        assert_eq!(money(5, "usd"), "$0.05");
        assert_eq!(money(123_456, "eur"), "1234.56 EUR");
        assert_eq!(money(-250, "usd"), "-$2.50");
    }

    #[test]
    fn date_is_utc() {
        assert_eq!(date(1_796_418_036_000), "Dec 4, 2026");
    }
}
