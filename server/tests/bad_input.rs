//! Property tests that send generated bad input to the real router over
//! HTTP: server function arguments, the ingestion body and Stripe webhooks.
//! Every response must be a 2xx or a 4xx, never a 5xx, and a 400 must name
//! the value or argument it rejects.
//!
//! The server runs on SQLite only: these properties are about parsing,
//! which happens before any query, and `authorization.rs` covers both
//! databases. Case counts keep each property to a few seconds.

mod common;

use app::auth::Role;
use app::error::AppError;
use casola_server::database::Backend;
use common::{spawn_app, spawn_billing_app, Browser, TestApp};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const CASES: u32 = 48;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("build a runtime")
}

/// Builds a runner of `CASES` cases, or of `PROPTEST_CASES` when set (for
/// a longer search).
fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(CASES);
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

/// Generates a parameter value: usually garbage, sometimes a valid token,
/// so that valid and invalid values meet.
fn parameter_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => ".{0,30}",
        1 => prop::sample::select(vec!["7d", "custom", "UTC", "2026-01-01", "2026-12-01T10:00", "Europe/Berlin", ""])
            .prop_map(str::to_string),
    ]
}

/// Posts a form to a server function and returns the status and body.
async fn call(app: &TestApp, client: &Browser, endpoint: &str, form: &[(&str, String)]) -> (u16, String) {
    let response = client.post(app.url(&format!("/api/{endpoint}"))).form(form).send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.text().await.expect("read the body"))
}

/// Checks the contract for one response: 2xx or 4xx, and a 400 names one
/// of `named` (the values sent or the argument names).
fn check_response(what: &str, status: u16, body: &str, named: &[String]) -> Result<(), TestCaseError> {
    prop_assert!((200..300).contains(&status) || (400..500).contains(&status), "{what}: status {status}: {body}");
    if status == 400 {
        let error: AppError = serde_json::from_str(body)
            .map_err(|e| TestCaseError::fail(format!("{what}: the 400 body is not an AppError ({e}): {body}")))?;
        let message = error.to_string();
        prop_assert!(
            named.iter().any(|name| !name.is_empty() && message.contains(name.as_str())),
            "{what}: \"{message}\" names none of {named:?}"
        );
    }
    Ok(())
}

#[test]
fn usage_summary_arguments() {
    let rt = runtime();
    let (app, owner) = rt.block_on(async {
        let app = spawn_app(Backend::Sqlite).await;
        app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
        let owner = app.signed_in("owner@acme.test").await;
        (app, owner)
    });
    let names = ["range", "tz", "end", "from", "to"];
    let arguments = prop::collection::vec(prop::option::of(parameter_value()), 5);

    runner()
        .run(&arguments, |values| {
            let form: Vec<(&str, String)> =
                names.iter().zip(&values).filter_map(|(name, value)| value.clone().map(|v| (*name, v))).collect();
            let (status, body) = rt.block_on(call(&app, &owner, "usage/summary", &form));
            let mut named: Vec<String> = form.iter().map(|(_, value)| value.trim().to_string()).collect();
            named.extend(form.iter().map(|(_, value)| value.clone()));
            named.extend(names.iter().map(|name| format!("`{name}`")));
            check_response(&format!("usage summary {form:?}"), status, &body, &named)
        })
        .unwrap();
}

#[test]
fn api_key_arguments() {
    let rt = runtime();
    let (app, owner) = rt.block_on(async {
        let app = spawn_app(Backend::Sqlite).await;
        app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
        let owner = app.signed_in("owner@acme.test").await;
        (app, owner)
    });
    let cases = (prop::sample::select(vec!["api-keys/create", "api-keys/revoke"]), prop::option::of(".{0,120}"));

    runner()
        .run(&cases, |(endpoint, name)| {
            let form: Vec<(&str, String)> = name.iter().map(|n| ("name", n.clone())).collect();
            let (status, body) = rt.block_on(call(&app, &owner, endpoint, &form));
            let mut named = vec!["`name`".to_string(), "name".to_string()];
            named.extend(name.iter().map(|n| n.trim().to_string()));
            check_response(&format!("{endpoint} {name:?}"), status, &body, &named)?;
            if endpoint == "api-keys/revoke" && status == 404 {
                let error: AppError = serde_json::from_str(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let name = name.unwrap_or_default();
                prop_assert!(error.to_string().contains(name.trim()), "the 404 names the key: {error}");
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn garbage_bodies_to_every_server_function() {
    let rt = runtime();
    let (app, owner) = rt.block_on(async {
        let app = spawn_app(Backend::Sqlite).await;
        app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
        let owner = app.signed_in("owner@acme.test").await;
        (app, owner)
    });
    let endpoints = vec![
        "session",
        "usage/summary",
        "api-keys/list",
        "api-keys/create",
        "api-keys/revoke",
        "billing/overview",
        "billing/card-setup",
        "billing/complete-card-setup",
        "billing/set-default-card",
        "billing/remove-card",
        "billing/subscribe",
        "billing/cancel-subscription",
    ];
    let cases = (
        prop::sample::select(endpoints),
        prop::collection::vec(any::<u8>(), 0..200),
        prop::sample::select(vec!["application/x-www-form-urlencoded", "application/json", "text/plain"]),
    );

    runner()
        .run(&cases, |(endpoint, body, content_type)| {
            let (status, text) = rt.block_on(async {
                let response = owner
                    .post(app.url(&format!("/api/{endpoint}")))
                    .header("content-type", content_type)
                    .body(body.clone())
                    .send()
                    .await
                    .expect("send");
                (response.status().as_u16(), response.text().await.unwrap_or_default())
            });
            // Billing has no Stripe here, so its functions may respond 503;
            // any other 5xx is a fault.
            let billing_unavailable = endpoint.starts_with("billing/") && status == 503;
            prop_assert!(
                billing_unavailable || (200..300).contains(&status) || (400..500).contains(&status),
                "{endpoint} with {content_type} body {body:?}: status {status}: {text}"
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn billing_ids_and_webhooks() {
    let rt = runtime();
    let (billing, owner) = rt.block_on(async {
        let billing = spawn_billing_app(Backend::Sqlite).await;
        billing.app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
        let owner = billing.app.signed_in("owner@acme.test").await;
        billing.add_card(&owner, "4242424242424242").await;
        (billing, owner)
    });
    let calls_before = rt.block_on(billing.stand_in.request_count(&billing.secret_key));

    let ids = (
        prop::sample::select(vec![
            ("billing/complete-card-setup", "setup_intent_id"),
            ("billing/set-default-card", "card_id"),
            ("billing/remove-card", "card_id"),
        ]),
        prop_oneof![".{0,60}", "pm_[A-Za-z0-9]{0,24}", "seti_[A-Za-z0-9]{0,24}"],
    );
    runner()
        .run(&ids, |((endpoint, argument), id)| {
            let (status, body) = rt.block_on(call(&billing.app, &owner, endpoint, &[(argument, id.clone())]));
            check_response(&format!("{endpoint} {id:?}"), status, &body, &[id.clone(), format!("`{argument}`")])?;
            prop_assert!(status != 200, "{endpoint} accepted an id it never issued: {id:?}");
            Ok(())
        })
        .unwrap();
    let calls_after = rt.block_on(billing.stand_in.request_count(&billing.secret_key));
    assert_eq!(calls_after, calls_before, "an unknown id never reaches Stripe");

    let webhooks = (prop::option::of("[ -~]{0,120}"), prop::collection::vec(any::<u8>(), 0..200));
    runner()
        .run(&webhooks, |(signature, body)| {
            let (status, text) = rt.block_on(async {
                let mut request = reqwest::Client::new().post(billing.app.url("/webhooks/stripe")).body(body.clone());
                if let Some(signature) = &signature {
                    request = request.header("stripe-signature", signature);
                }
                let response = request.send().await.expect("send");
                (response.status().as_u16(), response.text().await.unwrap_or_default())
            });
            prop_assert_eq!(status, 400, "signature {:?}: {}", signature, text);
            prop_assert!(text.starts_with("Invalid webhook:"), "{text}");
            Ok(())
        })
        .unwrap();
}

#[test]
fn ingestion_bodies() {
    let rt = runtime();
    let (app, key) = rt.block_on(async {
        let app = spawn_app(Backend::Sqlite).await;
        let org_id = app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
        let key = app::api_keys::ssr::create_key(&app.pool, org_id, "platform").await.unwrap();
        (app, key)
    });
    let fields = vec!["id", "model", "status", "submitted_at", "started_at", "finished_at", "gpu_count", "gpu_ms"];
    let field_value = prop_oneof![
        ".{0,30}".prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
        Just(serde_json::json!([1, 2])),
    ];
    let bodies = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|bytes| (bytes, None)),
        (prop::sample::select(fields), field_value).prop_map(|(field, value)| {
            let mut record = serde_json::json!({
                "id": "job-1",
                "model": "llama",
                "status": "completed",
                "submitted_at": "2026-01-01T10:00:00Z",
                "finished_at": "2026-01-01T11:00:00Z",
                "gpu_count": 2
            });
            record[field] = value;
            (serde_json::json!({ "jobs": [record] }).to_string().into_bytes(), Some(field))
        }),
    ];

    runner()
        .run(&bodies, |(body, changed_field)| {
            let (status, text) = rt.block_on(async {
                let response = reqwest::Client::new()
                    .post(app.url("/api/v1/jobs"))
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("send");
                (response.status().as_u16(), response.text().await.unwrap_or_default())
            });
            prop_assert!(status == 200 || (400..500).contains(&status), "status {status}: {text}");
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| TestCaseError::fail(format!("the body is not JSON ({e}): {text}")))?;
            if status == 422 {
                let field = changed_field.expect("only a changed record can be invalid");
                let errors = json["errors"].as_array().cloned().unwrap_or_default();
                let related = ["started_at", "finished_at", "submitted_at", field];
                prop_assert!(
                    errors.iter().any(|e| related.contains(&e["field"].as_str().unwrap_or(""))),
                    "changing {field} gave {text}"
                );
            } else if status != 200 {
                prop_assert!(json["error"].as_str().is_some_and(|m| !m.is_empty()), "{text}");
            }
            Ok(())
        })
        .unwrap();
}
