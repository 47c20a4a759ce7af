//! Billing while Stripe is down or slow, on SQLite and PostgreSQL. The page
//! renders from the mirror with a notice. A change fails with 503 within
//! the Stripe request timeout and changes nothing locally, and the same
//! change succeeds once the stand-in is back.

mod common;

use std::time::{Duration, Instant};

use app::auth::Role;
use casola_server::database::Backend;
use common::billing::{add_card, call, overview};
use common::{spawn_billing_app_behind_proxy, BillingApp};

const CARD_VISA: &str = "4242424242424242";
const CARD_MASTERCARD: &str = "5555555555554444";

/// The app's Stripe request timeout in these tests.
const STRIPE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the slow stand-in delays each request.
const SLOW_ANSWER: Duration = Duration::from_secs(30);

const STALE_NOTICE: &str = "Stripe cannot be reached right now. This is the last known state";
const UNAVAILABLE_MESSAGE: &str = "Stripe cannot be reached right now, so nothing was changed. Try again in a minute.";

/// Sets up "acme" with two cards (the Visa is the default) behind a delay
/// proxy and marks its mirror as old, so the next page load requests Stripe.
async fn acme_behind_proxy(backend: Backend) -> (BillingApp, common::delay_proxy::DelayProxy, common::Browser, i64, Vec<String>) {
    let (billing, proxy) = spawn_billing_app_behind_proxy(backend, STRIPE_TIMEOUT).await;
    let org_id = billing.app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let owner = billing.app.signed_in("owner@acme.test").await;
    let mut ids = Vec::new();
    for number in [CARD_VISA, CARD_MASTERCARD] {
        ids.push(add_card(&billing.app.base, &billing.stand_in, &owner, number).await);
    }
    mark_mirror_old(&billing, org_id).await;
    (billing, proxy, owner, org_id, ids)
}

async fn mark_mirror_old(billing: &BillingApp, org_id: i64) {
    sqlx::query("UPDATE billing_customers SET synced_at = 0 WHERE org_id = $1")
        .bind(org_id)
        .execute(&billing.app.pool)
        .await
        .unwrap();
}

/// Returns the mirrored default card and the number of "Set default card"
/// audit entries, which a failed Set Default must leave alone.
async fn local_default_state(billing: &BillingApp, org_id: i64) -> (Option<String>, i64) {
    let default: Option<String> =
        sqlx::query_scalar("SELECT default_payment_method_id FROM billing_customers WHERE org_id = $1")
            .bind(org_id)
            .fetch_one(&billing.app.pool)
            .await
            .unwrap();
    let audits: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM billing_audit_log WHERE org_id = $1 AND action = 'Set default card'",
    )
    .bind(org_id)
    .fetch_one(&billing.app.pool)
    .await
    .unwrap();
    (default, audits)
}

/// Loads the billing page as a browser does and returns its HTML.
async fn billing_page(billing: &BillingApp, client: &common::Browser) -> String {
    let response = client.get(billing.app.url("/billing")).send().await.expect("load /billing");
    assert_eq!(response.status(), 200);
    response.text().await.expect("read the billing page")
}

/// Checks the page, and a Set Default that must fail, while Stripe does not
/// respond.
async fn check_outage(billing: &BillingApp, owner: &common::Browser, org_id: i64, ids: &[String]) {
    let started = Instant::now();
    let page = billing_page(billing, owner).await;
    assert!(page.contains(STALE_NOTICE), "the page says Stripe is unreachable");
    assert!(page.contains("•••• 4242"), "the mirrored Visa is listed");
    assert!(page.contains("•••• 4444"), "the mirrored Mastercard is listed");
    assert!(started.elapsed() < SLOW_ANSWER, "the page did not wait for Stripe's late answer");

    let before = local_default_state(billing, org_id).await;
    assert_eq!(before, (Some(ids[0].clone()), 0));
    let started = Instant::now();
    let response = owner
        .post(billing.app.url("/api/billing/set-default-card"))
        .form(&[("card_id", ids[1].as_str())])
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"), "a 503 carries Retry-After");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["Unavailable"], UNAVAILABLE_MESSAGE);
    assert!(
        elapsed < STRIPE_TIMEOUT + Duration::from_secs(5),
        "the change failed after the {STRIPE_TIMEOUT:?} Stripe timeout, not later: {elapsed:?}"
    );
    assert_eq!(local_default_state(billing, org_id).await, before, "nothing changed locally");
}

/// Retries the Set Default once the stand-in responds again.
async fn retry_succeeds(billing: &BillingApp, owner: &common::Browser, org_id: i64, ids: &[String]) {
    let (status, body) = call(&billing.app.base, owner, "set-default-card", &[("card_id", &ids[1])]).await;
    assert_eq!(status, 200, "the retried change succeeds: {body}");
    assert_eq!(local_default_state(billing, org_id).await, (Some(ids[1].clone()), 1));
    let page = overview(&billing.app.base, owner).await;
    assert!(!page.stale);
    let starred: Vec<&str> = page.cards.iter().filter(|c| c.is_default).map(|c| c.id.as_str()).collect();
    assert_eq!(starred, vec![ids[1].as_str()]);
}

async fn stripe_slow_fails_within_timeout(backend: Backend) {
    let (billing, proxy, owner, org_id, ids) = acme_behind_proxy(backend).await;
    proxy.set_delay(SLOW_ANSWER);
    check_outage(&billing, &owner, org_id, &ids).await;

    proxy.set_delay(Duration::ZERO);
    retry_succeeds(&billing, &owner, org_id, &ids).await;
}

async fn stripe_down_then_back(backend: Backend) {
    let (mut billing, _proxy, owner, org_id, ids) = acme_behind_proxy(backend).await;
    billing.stand_in.stop().await;
    check_outage(&billing, &owner, org_id, &ids).await;

    billing.stand_in.restart().await;
    retry_succeeds(&billing, &owner, org_id, &ids).await;
}

on_both_databases!(stripe_slow_fails_within_timeout, stripe_down_then_back);
