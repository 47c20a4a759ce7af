//! The authorization matrix: every server function and API route against
//! every kind of caller, on SQLite and PostgreSQL, with a real localstripe.
//!
//! Stripe's webhook endpoint is left out: it takes no session or API key,
//! only a `Stripe-Signature`, which `billing.rs` and the webhook unit tests
//! check.

mod common;

use app::api_keys::ssr as api_keys;
use app::auth::Role;
use casola_server::database::Backend;
use common::{location, spawn_billing_app, BillingApp, Browser};
use serde_json::{json, Value};

/// The callers, in the order of each row's expected results.
const CALLERS: [&str; 7] =
    ["signed out", "member", "admin", "other org's owner", "revoked API key", "active API key", "owner"];

/// What one row sends.
enum Call {
    /// A server function under `/api/`, with form arguments.
    ServerFunction(&'static str, Vec<(&'static str, String)>),
    /// A GET of a path.
    Get(&'static str),
    /// A form post to a path.
    Form(&'static str, Vec<(&'static str, String)>),
    /// A job batch to the ingestion API.
    Ingest,
}

/// One row: a route and the expected outcome for each of `CALLERS`. An
/// outcome is a status, optionally followed by the prefix of the redirect's
/// `Location`.
struct Row {
    name: &'static str,
    call: Call,
    expected: [&'static str; 7],
}

fn job_batch() -> Value {
    json!({ "jobs": [{
        "id": "matrix-1",
        "model": "llama",
        "status": "queued",
        "submitted_at": "2026-01-01T00:00:00Z",
        "gpu_count": 1
    }] })
}

async fn send(billing: &BillingApp, client: &Browser, call: &Call) -> reqwest::Response {
    let app = &billing.app;
    let request = match call {
        Call::ServerFunction(endpoint, form) => client.post(app.url(&format!("/api/{endpoint}"))).form(form),
        Call::Get(path) => client.get(app.url(path)),
        Call::Form(path, form) => client.post(app.url(path)).form(form),
        Call::Ingest => client.post(app.url("/api/v1/jobs")).json(&job_batch()),
    };
    request.send().await.expect("send the request")
}

async fn authorization_matrix(backend: Backend) {
    let billing = spawn_billing_app(backend).await;
    let app = &billing.app;
    let acme_id = app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    app.user_in("acme", "admin@acme.test", Role::Admin).await;
    app.user_in("acme", "member@acme.test", Role::Member).await;
    app.org_with_user("rival", "owner@rival.test", Role::Owner).await;

    let owner = app.signed_in("owner@acme.test").await;
    let card_a = billing.add_card(&owner, "4242424242424242").await;
    let card_b = billing.add_card(&owner, "5555555555554444").await;
    // A confirmed SetupIntent that only the owner's completion may attach.
    let pending_intent = billing.confirmed_setup_intent(&owner, "4000056655665556").await;

    let active_key = api_keys::create_key(&app.pool, acme_id, "platform").await.unwrap();
    let revoked_key = api_keys::create_key(&app.pool, acme_id, "retired").await.unwrap();
    api_keys::revoke_key(&app.pool, acme_id, "retired").await.unwrap();
    api_keys::create_key(&app.pool, acme_id, "spare").await.unwrap();

    let callers: [Browser; 7] = [
        app.client(),
        app.signed_in("member@acme.test").await,
        app.signed_in("admin@acme.test").await,
        app.signed_in("owner@rival.test").await,
        app.client().with_bearer(&revoked_key),
        app.client().with_bearer(&active_key),
        owner,
    ];

    let usage_args = || vec![("range", "7d".to_string()), ("tz", "UTC".to_string())];
    // Owners act last in each row, so a row's change does not affect the
    // callers before it. Rows that change billing come in an order that
    // keeps the next one possible.
    let rows = [
        Row {
            name: "session info",
            call: Call::ServerFunction("session", vec![]),
            expected: ["401", "200", "200", "200", "401", "401", "200"],
        },
        Row {
            name: "usage summary",
            call: Call::ServerFunction("usage/summary", usage_args()),
            expected: ["401", "200", "200", "200", "401", "401", "200"],
        },
        Row {
            name: "usage CSV export",
            call: Call::Get("/usage/export.csv?range=7d&tz=UTC"),
            expected: ["303 /login", "200", "200", "200", "303 /login", "303 /login", "200"],
        },
        Row {
            name: "billing overview",
            call: Call::ServerFunction("billing/overview", vec![]),
            expected: ["401", "200", "200", "200", "401", "401", "200"],
        },
        Row {
            name: "API key list",
            call: Call::ServerFunction("api-keys/list", vec![]),
            expected: ["401", "403", "403", "200", "401", "401", "200"],
        },
        Row {
            name: "API key create",
            call: Call::ServerFunction("api-keys/create", vec![("name", "matrix".to_string())]),
            expected: ["401", "403", "403", "200", "401", "401", "200"],
        },
        Row {
            name: "API key revoke",
            call: Call::ServerFunction("api-keys/revoke", vec![("name", "spare".to_string())]),
            expected: ["401", "403", "403", "404", "401", "401", "200"],
        },
        Row {
            name: "card setup",
            call: Call::ServerFunction("billing/card-setup", vec![]),
            expected: ["401", "403", "403", "200", "401", "401", "200"],
        },
        Row {
            name: "complete card setup",
            call: Call::ServerFunction("billing/complete-card-setup", vec![("setup_intent_id", pending_intent.clone())]),
            expected: ["401", "403", "403", "403", "401", "401", "200"],
        },
        Row {
            name: "set default card",
            call: Call::ServerFunction("billing/set-default-card", vec![("card_id", card_b.clone())]),
            expected: ["401", "403", "403", "403", "401", "401", "200"],
        },
        Row {
            name: "remove card",
            call: Call::ServerFunction("billing/remove-card", vec![("card_id", card_a.clone())]),
            expected: ["401", "403", "403", "403", "401", "401", "200"],
        },
        Row {
            // The other owner's organization has no card, so its own
            // subscription is rejected for that reason.
            name: "subscribe",
            call: Call::ServerFunction("billing/subscribe", vec![]),
            expected: ["401", "403", "403", "409", "401", "401", "200"],
        },
        Row {
            // The other owner's organization has nothing to cancel, so the
            // call returns 409 saying it is already canceled.
            name: "cancel subscription",
            call: Call::ServerFunction("billing/cancel-subscription", vec![]),
            expected: ["401", "403", "403", "409", "401", "401", "200"],
        },
        Row {
            name: "job ingestion",
            call: Call::Ingest,
            expected: ["401", "401", "401", "401", "401", "200", "401"],
        },
        Row {
            name: "organization switch",
            call: Call::Form("/orgs/switch", vec![("org", "acme".to_string())]),
            expected: ["303 /login", "303 /usage", "303 /usage", "403", "303 /login", "303 /login", "303 /usage"],
        },
    ];

    let mut cells = 0;
    for row in &rows {
        for ((caller, client), expected) in CALLERS.iter().zip(&callers).zip(row.expected) {
            let cell = format!("{} × {caller}", row.name);
            let (status, location_prefix) = match expected.split_once(' ') {
                Some((status, prefix)) => (status, Some(prefix)),
                None => (expected, None),
            };
            let stripe_before = billing.stand_in.request_count(&billing.secret_key).await;

            let response = send(&billing, client, &row.call).await;
            let actual = response.status().as_u16().to_string();
            let target = location(&response);
            let body = response.text().await.unwrap_or_default();
            assert_eq!(actual, status, "{cell}: status; body {body}");
            if let Some(prefix) = location_prefix {
                assert!(target.starts_with(prefix), "{cell}: redirect to {target}, expected {prefix}…");
            }

            // Cancel Subscription reads Stripe's state before it finds
            // nothing to cancel, so only its 409 may reach Stripe.
            let found_nothing_to_cancel = row.name == "cancel subscription" && actual == "409";
            if !actual.starts_with('2') && !found_nothing_to_cancel {
                let stripe_after = billing.stand_in.request_count(&billing.secret_key).await;
                assert_eq!(stripe_after, stripe_before, "{cell}: a rejected call reached Stripe");
            }
            if *caller == "other org's owner" {
                assert!(!body.contains("Org acme"), "{cell}: the response shows acme's data: {body}");
                assert!(!body.contains("platform"), "{cell}: the response lists acme's keys: {body}");
            }
            cells += 1;
        }
    }
    assert_eq!(cells, rows.len() * CALLERS.len());
}

on_both_databases!(authorization_matrix);
