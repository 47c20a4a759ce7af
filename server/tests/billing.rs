//! Billing against a real localstripe on SQLite and PostgreSQL: each flow,
//! authorization of every mutation, webhooks, the cases B1 and B2, and a
//! cancellation interrupted by the stand-in stopping.

mod common;

use app::auth::Role;
use app::billing::BillingOverview;
use casola_server::billing_demo::seed_billing_demo;
use casola_server::database::Backend;
use common::{spawn_billing_app, BillingApp};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const CARD_VISA: &str = "4242424242424242";
const CARD_MASTERCARD: &str = "5555555555554444";
const CARD_THIRD: &str = "4000056655665556";

/// Calls a billing server function and returns the status and JSON body.
async fn call(billing: &BillingApp, client: &common::Browser, endpoint: &str, form: &[(&str, &str)]) -> (u16, Value) {
    common::billing::call(&billing.app.base, client, endpoint, form).await
}

async fn overview(billing: &BillingApp, client: &common::Browser) -> BillingOverview {
    common::billing::overview(&billing.app.base, client).await
}

async fn customer_id(billing: &BillingApp, org_id: i64) -> String {
    sqlx::query_scalar("SELECT stripe_customer_id FROM billing_customers WHERE org_id = $1")
        .bind(org_id)
        .fetch_one(&billing.app.pool)
        .await
        .expect("the organization has a customer")
}

/// Returns the customer's default card and attached card ids from the stand-in.
async fn stand_in_cards(billing: &BillingApp, customer: &str) -> (Option<String>, Vec<String>) {
    let found = billing.stand_in.get(&billing.secret_key, &format!("customers/{customer}")).await;
    let default = found["invoice_settings"]["default_payment_method"].as_str().map(str::to_string);
    let list = billing
        .stand_in
        .get(&billing.secret_key, &format!("payment_methods?customer={customer}&type=card"))
        .await;
    let ids = list["data"].as_array().unwrap().iter().map(|pm| pm["id"].as_str().unwrap().to_string()).collect();
    (default, ids)
}

fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Posts `event` to the webhook, signed now with `secret`.
async fn post_event(billing: &BillingApp, event: &Value, secret: &str) -> (u16, String) {
    let body = event.to_string();
    let response = reqwest::Client::new()
        .post(billing.app.url("/webhooks/stripe"))
        .header("stripe-signature", signature(secret, chrono::Utc::now().timestamp(), &body))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn subscription_event(id: &str, event_type: &str, created: i64, subscription: &Value, status: &str) -> Value {
    let mut object = subscription.clone();
    object["status"] = json!(status);
    json!({ "id": id, "type": event_type, "created": created, "data": { "object": object } })
}

/// Creates an organization "acme" whose owner has `cards` cards (the first
/// is the default) and, when `subscribed`, an active subscription.
async fn acme(backend: Backend, cards: &[&str], subscribed: bool) -> (BillingApp, common::Browser, i64, Vec<String>) {
    let billing = spawn_billing_app(backend).await;
    let org_id = billing.app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let owner = billing.app.signed_in("owner@acme.test").await;
    let mut ids = Vec::new();
    for number in cards {
        ids.push(billing.add_card(&owner, number).await);
    }
    if subscribed {
        let (status, body) = billing.call(&owner, "subscribe", &[]).await;
        assert_eq!(status, 200, "subscribe failed: {body}");
    }
    (billing, owner, org_id, ids)
}

async fn first_card_becomes_default(backend: Backend) {
    let (billing, owner, org_id, ids) = acme(backend, &[CARD_VISA, CARD_MASTERCARD], false).await;
    let customer = customer_id(&billing, org_id).await;

    let (default, attached) = stand_in_cards(&billing, &customer).await;
    assert_eq!(default.as_deref(), Some(ids[0].as_str()), "Stripe's default is the first card");
    assert_eq!(attached.len(), 2);

    let page = overview(&billing, &owner).await;
    assert_eq!(page.cards.len(), 2);
    assert_eq!(page.cards[0].id, ids[1], "newest card first");
    assert_eq!(page.cards[0].last4, "4444");
    assert!(!page.cards[0].is_default);
    assert_eq!(page.cards[1].last4, "4242");
    assert!(page.cards[1].is_default);
    assert_eq!(page.cards[1].exp_month, 11);
    assert_eq!(page.cards[1].exp_year, 2031);
    assert_eq!(page.plan, "free");
    assert!(page.can_subscribe());
    let added = page.audit_log.iter().filter(|e| e.action == "Added card").count();
    assert_eq!(added, 2);
    assert!(page.audit_log.iter().all(|e| e.actor == "owner@acme.test"));
}

async fn unconfirmed_setup_is_rejected(backend: Backend) {
    let (billing, owner, _, _) = acme(backend, &[], false).await;
    let (_, setup) = billing.call(&owner, "card-setup", &[]).await;
    let intent_id = setup["setup_intent_id"].as_str().unwrap();

    let (status, body) = billing.call(&owner, "complete-card-setup", &[("setup_intent_id", intent_id)]).await;
    assert_eq!(status, 409, "{body}");
    assert!(overview(&billing, &owner).await.cards.is_empty());
}

async fn star_sets_customer_default(backend: Backend) {
    let (billing, owner, org_id, ids) = acme(backend, &[CARD_VISA, CARD_MASTERCARD], true).await;
    let customer = customer_id(&billing, org_id).await;

    let (status, body) = billing.call(&owner, "set-default-card", &[("card_id", &ids[1])]).await;
    assert_eq!(status, 200, "{body}");

    let (default, _) = stand_in_cards(&billing, &customer).await;
    assert_eq!(default.as_deref(), Some(ids[1].as_str()));
    let page = overview(&billing, &owner).await;
    let starred: Vec<&str> = page.cards.iter().filter(|c| c.is_default).map(|c| c.id.as_str()).collect();
    assert_eq!(starred, vec![ids[1].as_str()]);
    assert!(page.audit_log.iter().any(|e| e.action == "Set default card" && e.target.as_deref() == Some(&ids[1])));
}

async fn subscribe_shows_plan_and_invoice(backend: Backend) {
    let (billing, owner, _, _) = acme(backend, &[], false).await;
    let (status, body) = billing.call(&owner, "subscribe", &[]).await;
    assert_eq!(status, 409, "no card yet: {body}");

    billing.add_card(&owner, CARD_VISA).await;
    let (status, body) = billing.call(&owner, "subscribe", &[]).await;
    assert_eq!(status, 200, "{body}");

    let page = overview(&billing, &owner).await;
    assert_eq!(page.plan, "paid");
    let subscription = page.subscription.clone().expect("a subscription");
    assert_eq!(subscription.status, "active");
    assert_eq!(subscription.plan_name, "Casola Pro");
    assert_eq!(subscription.amount, 4_900);
    assert_eq!(subscription.currency, "usd");
    assert_eq!(subscription.interval, "month");
    assert!(subscription.current_period_end.unwrap() > app::db::now_ms());
    assert_eq!(page.invoices.len(), 1);
    assert_eq!(page.invoices[0].amount_due, 4_900);
    assert_eq!(page.invoices[0].status, "paid");
    assert!(!page.can_subscribe());

    let (status, body) = billing.call(&owner, "subscribe", &[]).await;
    assert_eq!(status, 409, "already subscribed: {body}");
}

/// B1, first half: a past_due subscription's only card stays, and the
/// message explains why and points to Cancel Subscription.
async fn b1_past_due_last_card_refused(backend: Backend) {
    let (billing, owner, org_id, ids) = acme(backend, &[CARD_VISA], true).await;
    let customer = customer_id(&billing, org_id).await;
    let subscription_id = overview(&billing, &owner).await.subscription.unwrap().id;
    let subscription = billing.stand_in.get(&billing.secret_key, &format!("subscriptions/{subscription_id}")).await;

    let later = chrono::Utc::now().timestamp() + 1;
    let event = subscription_event("evt_b1_past_due", "customer.subscription.updated", later, &subscription, "past_due");
    let (status, outcome) = post_event(&billing, &event, &billing.webhook_secret).await;
    assert_eq!((status, outcome.as_str()), (200, "applied"));
    assert_eq!(overview(&billing, &owner).await.subscription.unwrap().status, "past_due");

    let calls_before = billing.stand_in.request_count(&billing.secret_key).await;
    let (status, body) = billing.call(&owner, "remove-card", &[("card_id", &ids[0])]).await;
    assert_eq!(status, 409);
    let message = body["Conflict"].as_str().expect("a Conflict error");
    assert_eq!(
        message,
        "The Visa card ending in 4242 is the only card, and the subscription is past due, so Stripe \
         needs it to charge the next invoice. To remove every card, use Cancel Subscription at the \
         bottom of this page."
    );
    assert_eq!(billing.stand_in.request_count(&billing.secret_key).await, calls_before, "no Stripe call");
    let (_, attached) = stand_in_cards(&billing, &customer).await;
    assert_eq!(attached, ids);
}

/// B1, second half: with two cards on an active subscription, removing the
/// non-default works, and removing the default promotes the other.
async fn b1_two_cards_active_removal(backend: Backend) {
    let (billing, owner, org_id, ids) = acme(backend, &[CARD_VISA, CARD_MASTERCARD], true).await;
    let customer = customer_id(&billing, org_id).await;
    let (default_id, other_id) = (&ids[0], &ids[1]);

    let (status, body) = billing.call(&owner, "remove-card", &[("card_id", other_id)]).await;
    assert_eq!(status, 200, "{body}");
    let (default, attached) = stand_in_cards(&billing, &customer).await;
    assert_eq!(attached, vec![default_id.clone()]);
    assert_eq!(default.as_deref(), Some(default_id.as_str()));

    let third = billing.add_card(&owner, CARD_THIRD).await;
    let (status, body) = billing.call(&owner, "remove-card", &[("card_id", default_id)]).await;
    assert_eq!(status, 200, "{body}");
    let (default, attached) = stand_in_cards(&billing, &customer).await;
    assert_eq!(attached, vec![third.clone()]);
    assert_eq!(default.as_deref(), Some(third.as_str()), "the other card is promoted in Stripe");

    let page = overview(&billing, &owner).await;
    assert_eq!(page.cards.len(), 1);
    assert_eq!(page.cards[0].id, third);
    assert!(page.cards[0].is_default);
    assert_eq!(page.subscription.unwrap().status, "active");
}

/// B2: deleted (t2) arrives first, then updated/active (t1 < t2), then the
/// deleted event again.
async fn b2_out_of_order_webhooks(backend: Backend) {
    let (billing, owner, org_id, _) = acme(backend, &[CARD_VISA], true).await;
    let subscription_id = overview(&billing, &owner).await.subscription.unwrap().id;
    let subscription = billing.stand_in.get(&billing.secret_key, &format!("subscriptions/{subscription_id}")).await;
    let t1 = chrono::Utc::now().timestamp() + 1;
    let t2 = t1 + 1;
    let deleted = subscription_event("evt_b2_deleted", "customer.subscription.deleted", t2, &subscription, "canceled");
    let updated = subscription_event("evt_b2_updated", "customer.subscription.updated", t1, &subscription, "active");

    let (status, outcome) = post_event(&billing, &deleted, &billing.webhook_secret).await;
    assert_eq!((status, outcome.as_str()), (200, "applied"));
    let (status, outcome) = post_event(&billing, &updated, &billing.webhook_secret).await;
    assert_eq!((status, outcome.as_str()), (200, "stale"));
    let (status, outcome) = post_event(&billing, &deleted, &billing.webhook_secret).await;
    assert_eq!((status, outcome.as_str()), (200, "duplicate"));

    let page = overview(&billing, &owner).await;
    assert_eq!(page.subscription.unwrap().status, "canceled");
    assert_eq!(page.plan, "free");
    for id in ["evt_b2_deleted", "evt_b2_updated"] {
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM billing_webhook_events WHERE event_id = $1")
            .bind(id)
            .fetch_one(&billing.app.pool)
            .await
            .unwrap();
        assert_eq!(rows, 1, "{id} recorded once");
    }
    let plan: String = sqlx::query_scalar("SELECT plan FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_one(&billing.app.pool)
        .await
        .unwrap();
    assert_eq!(plan, "free");

    // The same kind with a later-dated event: Stripe never revives a
    // canceled subscription, so an "active" update after it is stale too.
    let revived = subscription_event("evt_b2_revived", "customer.subscription.updated", t2 + 5, &subscription, "active");
    let (_, outcome) = post_event(&billing, &revived, &billing.webhook_secret).await;
    assert_eq!(outcome, "stale");
    assert_eq!(overview(&billing, &owner).await.subscription.unwrap().status, "canceled");
}

async fn webhook_older_than_mirror_is_stale(backend: Backend) {
    let (billing, owner, _, _) = acme(backend, &[CARD_VISA], true).await;
    let subscription_id = overview(&billing, &owner).await.subscription.unwrap().id;
    let subscription = billing.stand_in.get(&billing.secret_key, &format!("subscriptions/{subscription_id}")).await;

    let earlier = chrono::Utc::now().timestamp() - 60;
    let event = subscription_event("evt_old", "customer.subscription.updated", earlier, &subscription, "past_due");
    let (status, outcome) = post_event(&billing, &event, &billing.webhook_secret).await;
    assert_eq!((status, outcome.as_str()), (200, "stale"));
    assert_eq!(overview(&billing, &owner).await.subscription.unwrap().status, "active");
}

async fn webhook_bad_signature_changes_nothing(backend: Backend) {
    let (billing, owner, _, _) = acme(backend, &[CARD_VISA], true).await;
    let subscription_id = overview(&billing, &owner).await.subscription.unwrap().id;
    let subscription = billing.stand_in.get(&billing.secret_key, &format!("subscriptions/{subscription_id}")).await;
    let later = chrono::Utc::now().timestamp() + 1;
    let event = subscription_event("evt_forged", "customer.subscription.deleted", later, &subscription, "canceled");
    let body = event.to_string();
    let now = chrono::Utc::now().timestamp();

    let cases = [
        ("wrong secret", Some(signature("whsec_wrong", now, &body)), body.clone()),
        ("changed body", Some(signature(&billing.webhook_secret, now, &body)), body.replace("canceled", "cancelled")),
        ("too old", Some(signature(&billing.webhook_secret, now - 301, &body)), body.clone()),
        ("no header", None, body.clone()),
    ];
    for (case, header, sent_body) in cases {
        let mut request = reqwest::Client::new().post(billing.app.url("/webhooks/stripe")).body(sent_body);
        if let Some(header) = header {
            request = request.header("stripe-signature", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{case}");
    }

    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM billing_webhook_events WHERE event_id = 'evt_forged'")
        .fetch_one(&billing.app.pool)
        .await
        .unwrap();
    assert_eq!(recorded, 0);
    let page = overview(&billing, &owner).await;
    assert_eq!(page.subscription.unwrap().status, "active");
    assert_eq!(page.plan, "paid");
}

/// A subscription canceled outside the product (as from Stripe's
/// dashboard) reaches the mirror through the stand-in's own webhook.
async fn stand_in_webhook_updates_mirror(backend: Backend) {
    let (billing, owner, _, _) = acme(backend, &[CARD_VISA], true).await;
    let subscription_id = overview(&billing, &owner).await.subscription.unwrap().id;

    let response = reqwest::Client::new()
        .delete(format!("{}v1/subscriptions/{subscription_id}", billing.stand_in.base))
        .bearer_auth(&billing.secret_key)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());

    let mut status = String::new();
    for _ in 0..50 {
        status = overview(&billing, &owner).await.subscription.unwrap().status;
        if status == "canceled" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(status, "canceled", "the deleted event arrives within 10 s");
    let page = overview(&billing, &owner).await;
    assert_eq!(page.plan, "free");
    assert!(page.audit_log.iter().any(|e| e.actor == "Stripe webhook" && e.action == "Subscription is now canceled"));
}

/// Every mutation, called by an admin, a member, a signed-out visitor and
/// an owner of another organization with acme's ids: 403 (401 signed out),
/// no Stripe request, and acme's billing unchanged.
async fn non_owners_get_403_and_no_stripe_call(backend: Backend) {
    let (billing, owner, acme_id, ids) = acme(backend, &[CARD_VISA, CARD_MASTERCARD], true).await;
    let (_, setup) = billing.call(&owner, "card-setup", &[]).await;
    let acme_intent = setup["setup_intent_id"].as_str().unwrap().to_string();
    billing.app.user_in("acme", "admin@acme.test", Role::Admin).await;
    billing.app.user_in("acme", "member@acme.test", Role::Member).await;
    billing.app.org_with_user("other", "owner@other.test", Role::Owner).await;
    let other_owner = billing.app.signed_in("owner@other.test").await;
    billing.add_card(&other_owner, CARD_THIRD).await;
    let before = overview(&billing, &owner).await;

    let card = ids[1].as_str();
    let mutations: [(&str, Vec<(&str, &str)>); 6] = [
        ("card-setup", vec![]),
        ("complete-card-setup", vec![("setup_intent_id", acme_intent.as_str())]),
        ("set-default-card", vec![("card_id", card)]),
        ("remove-card", vec![("card_id", card)]),
        ("subscribe", vec![]),
        ("cancel-subscription", vec![]),
    ];
    let callers = [
        ("admin", billing.app.signed_in("admin@acme.test").await, 403),
        ("member", billing.app.signed_in("member@acme.test").await, 403),
        ("signed out", billing.app.client(), 401),
    ];
    let calls_before = billing.stand_in.request_count(&billing.secret_key).await;

    for (who, client, expected) in &callers {
        for (endpoint, form) in &mutations {
            let (status, body) = billing.call(client, endpoint, form).await;
            assert_eq!(status, *expected, "{who} calling {endpoint}: {body}");
        }
    }
    // The other owner may change their own billing, so only the calls that
    // take acme's ids apply.
    for (endpoint, form) in &mutations[1..4] {
        let (status, body) = billing.call(&other_owner, endpoint, form).await;
        assert_eq!(status, 403, "other owner calling {endpoint}: {body}");
    }

    assert_eq!(billing.stand_in.request_count(&billing.secret_key).await, calls_before, "no Stripe request");
    let after = overview(&billing, &owner).await;
    assert_eq!(after.cards, before.cards);
    assert_eq!(after.subscription, before.subscription);
    // The stand-in delivers the subscription's webhooks at its own pace, so
    // only changes made by people count here.
    let by_people = |log: &[app::billing::AuditEntry]| log.iter().filter(|e| e.actor != "Stripe webhook").count();
    let audit_rows: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM billing_audit_log WHERE org_id = $1 AND actor <> 'Stripe webhook'",
    )
    .bind(acme_id)
    .fetch_one(&billing.app.pool)
    .await
    .unwrap();
    assert_eq!(audit_rows as usize, by_people(&before.audit_log));
}

async fn members_see_billing_without_audit(backend: Backend) {
    let (billing, owner, _, _) = acme(backend, &[CARD_VISA], true).await;
    billing.app.user_in("acme", "member@acme.test", Role::Member).await;
    let member = billing.app.signed_in("member@acme.test").await;

    let owners_view = overview(&billing, &owner).await;
    let members_view = overview(&billing, &member).await;
    assert!(owners_view.can_manage);
    assert!(!members_view.can_manage);
    assert_eq!(members_view.cards, owners_view.cards);
    assert_eq!(members_view.subscription, owners_view.subscription);
    assert_eq!(members_view.invoices, owners_view.invoices);
    assert!(!owners_view.audit_log.is_empty());
    assert!(members_view.audit_log.is_empty());
    assert_eq!(members_view.owners, vec!["Test User <owner@acme.test>".to_string()]);
}

async fn cancel_detaches_cards_and_downgrades(backend: Backend) {
    let (billing, owner, org_id, _) = acme(backend, &[CARD_VISA, CARD_MASTERCARD], true).await;
    let customer = customer_id(&billing, org_id).await;
    let subscription_id = overview(&billing, &owner).await.subscription.unwrap().id;

    let (status, body) = billing.call(&owner, "cancel-subscription", &[]).await;
    assert_eq!(status, 200, "{body}");

    let subscription = billing.stand_in.get(&billing.secret_key, &format!("subscriptions/{subscription_id}")).await;
    assert_eq!(subscription["status"], "canceled");
    let (_, attached) = stand_in_cards(&billing, &customer).await;
    assert!(attached.is_empty(), "every card detached: {attached:?}");
    let page = overview(&billing, &owner).await;
    assert_eq!(page.plan, "free");
    assert!(page.cards.is_empty());
    assert_eq!(page.subscription.unwrap().status, "canceled");
    assert!(!page.cancel_unfinished);
    assert!(page.audit_log.iter().any(|e| e.action == "Canceled subscription"));

    let (status, body) = call(&billing, &owner, "cancel-subscription", &[]).await;
    assert_eq!(status, 409, "a second cancel finds nothing to cancel: {body}");
    assert_eq!(
        body["Conflict"],
        "The subscription of Org acme is already canceled, and it has no cards left, so nothing was changed."
    );
    let cancels = overview(&billing, &owner).await.audit_log.iter().filter(|e| e.action == "Canceled subscription").count();
    assert_eq!(cancels, 1, "the subscription was canceled once");
}

/// The stand-in exits right after the first card is detached; the cancel
/// fails with 503, and after a restart a retry finishes the job.
async fn cancel_resumes_after_stand_in_restart(backend: Backend) {
    let (mut billing, owner, org_id, _) = acme(backend, &[CARD_VISA, CARD_MASTERCARD], true).await;
    let customer = customer_id(&billing, org_id).await;
    let subscription_id = overview(&billing, &owner).await.subscription.unwrap().id;

    billing.stand_in.exit_after("POST", "/v1/payment_methods/").await;
    let (status, body) = billing.call(&owner, "cancel-subscription", &[]).await;
    assert_eq!(status, 503, "{body}");
    billing.stand_in.wait_exited().await;
    let page = overview(&billing, &owner).await;
    assert!(page.cancel_unfinished);

    billing.stand_in.restart().await;
    let subscription = billing.stand_in.get(&billing.secret_key, &format!("subscriptions/{subscription_id}")).await;
    assert_eq!(subscription["status"], "canceled", "the cancel happened before the stop");
    let (_, attached) = stand_in_cards(&billing, &customer).await;
    assert_eq!(attached.len(), 1, "one card was detached before the stop");

    let (status, body) = billing.call(&owner, "cancel-subscription", &[]).await;
    assert_eq!(status, 200, "{body}");
    let (_, attached) = stand_in_cards(&billing, &customer).await;
    assert!(attached.is_empty());
    let page = overview(&billing, &owner).await;
    assert_eq!(page.plan, "free");
    assert!(page.cards.is_empty());
    assert!(!page.cancel_unfinished);
    let cancels = page.audit_log.iter().filter(|e| e.action == "Canceled subscription").count();
    assert_eq!(cancels, 1, "the subscription was canceled once");
}

async fn stripe_down_shows_last_known_state(backend: Backend) {
    let (mut billing, owner, org_id, ids) = acme(backend, &[CARD_VISA, CARD_MASTERCARD], false).await;
    billing.stand_in.stop().await;
    sqlx::query("UPDATE billing_customers SET synced_at = 0 WHERE org_id = $1")
        .bind(org_id)
        .execute(&billing.app.pool)
        .await
        .unwrap();

    let page = overview(&billing, &owner).await;
    assert!(page.stale);
    assert_eq!(page.cards.len(), 2);
    assert_eq!(page.synced_at, Some(0));

    let (status, body) = billing.call(&owner, "set-default-card", &[("card_id", &ids[1])]).await;
    assert_eq!(status, 503);
    assert_eq!(
        body["Unavailable"],
        "Stripe cannot be reached right now, so nothing was changed. Try again in a minute."
    );
}

/// The demo seed gives the `demo` organization a customer with two cards
/// and an active subscription, keeps them on a second run, and creates them
/// again after the stand-in starts empty.
async fn demo_seed_recreated_after_empty_stand_in(backend: Backend) {
    let mut billing = spawn_billing_app(backend).await;
    let org_id = billing.app.org_with_user("demo", "owner@example.com", Role::Owner).await;
    let owner = billing.app.signed_in("owner@example.com").await;
    let stripe = billing.app.stripe.clone().unwrap();

    seed_billing_demo(&billing.app.pool, &stripe).await.expect("first seed");
    let first_customer = customer_id(&billing, org_id).await;
    let page = overview(&billing, &owner).await;
    assert_eq!(page.cards.len(), 2);
    assert_eq!(page.cards.iter().filter(|c| c.is_default).count(), 1);
    assert_eq!(page.subscription.as_ref().unwrap().status, "active");

    let kept = seed_billing_demo(&billing.app.pool, &stripe).await.expect("second seed");
    assert!(kept.contains("kept"), "{kept}");
    assert_eq!(customer_id(&billing, org_id).await, first_customer);

    billing.stand_in.restart_empty().await;
    seed_billing_demo(&billing.app.pool, &stripe).await.expect("seed after the stand-in was emptied");
    let second_customer = customer_id(&billing, org_id).await;
    assert_ne!(second_customer, first_customer);
    let (default, attached) = stand_in_cards(&billing, &second_customer).await;
    assert_eq!(attached.len(), 2);
    assert!(default.is_some_and(|d| attached.contains(&d)));
    let page = overview(&billing, &owner).await;
    assert_eq!(page.cards.len(), 2);
    assert_eq!(page.subscription.unwrap().status, "active");
    assert_eq!(page.plan, "paid");
}

/// Card, customer and invoice events: applied when newer than the mirror,
/// stale when older, and a paid invoice never goes back to failed.
async fn card_customer_invoice_events(backend: Backend) {
    let (billing, owner, org_id, ids) = acme(backend, &[CARD_VISA, CARD_MASTERCARD], true).await;
    let customer = customer_id(&billing, org_id).await;
    let later = chrono::Utc::now().timestamp() + 2;
    let card = billing.stand_in.get(&billing.secret_key, &format!("payment_methods/{}", ids[1])).await;
    let customer_object = billing.stand_in.get(&billing.secret_key, &format!("customers/{customer}")).await;
    let invoice = overview(&billing, &owner).await.invoices[0].clone();
    let invoice_object = json!({
        "id": invoice.id, "created": invoice.created_at / 1000, "amount_due": invoice.amount_due,
        "currency": invoice.currency, "status": "open", "customer": customer,
    });
    let event = |id: &str, kind: &str, created: i64, object: Value| {
        json!({ "id": id, "type": kind, "created": created, "data": { "object": object } })
    };

    let mut default_changed = customer_object.clone();
    default_changed["invoice_settings"]["default_payment_method"] = json!(ids[1]);
    let (_, outcome) = post_event(&billing, &event("evt_default", "customer.updated", later, default_changed), &billing.webhook_secret).await;
    assert_eq!(outcome, "applied");
    let page = overview(&billing, &owner).await;
    let starred: Vec<&str> = page.cards.iter().filter(|c| c.is_default).map(|c| c.id.as_str()).collect();
    assert_eq!(starred, vec![ids[1].as_str()]);

    let mut detached = card.clone();
    detached["customer"] = Value::Null;
    let (_, outcome) = post_event(&billing, &event("evt_detached", "payment_method.detached", later, detached), &billing.webhook_secret).await;
    assert_eq!(outcome, "applied");
    let (_, outcome) = post_event(&billing, &event("evt_attached_old", "payment_method.attached", later - 1, card.clone()), &billing.webhook_secret).await;
    assert_eq!(outcome, "stale");
    let (_, outcome) = post_event(&billing, &event("evt_attached_new", "payment_method.attached", later + 1, card), &billing.webhook_secret).await;
    assert_eq!(outcome, "stale", "a detached card is never attached again");
    let page = overview(&billing, &owner).await;
    assert_eq!(page.cards.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), vec![ids[0].as_str()]);

    let (_, outcome) = post_event(&billing, &event("evt_failed", "invoice.payment_failed", later, invoice_object.clone()), &billing.webhook_secret).await;
    assert_eq!(outcome, "stale", "a paid invoice stays paid");
    let mut new_invoice = invoice_object;
    new_invoice["id"] = json!("in_from_webhook");
    new_invoice["status"] = json!("paid");
    new_invoice["amount_due"] = json!(1_234);
    new_invoice["hosted_invoice_url"] = json!("https://invoice.stripe.com/i/test");
    let (_, outcome) = post_event(&billing, &event("evt_paid", "invoice.paid", later, new_invoice), &billing.webhook_secret).await;
    assert_eq!(outcome, "applied");
    let page = overview(&billing, &owner).await;
    assert_eq!(page.invoices.iter().find(|i| i.id == invoice.id).unwrap().status, "paid");
    let added = page.invoices.iter().find(|i| i.id == "in_from_webhook").expect("the paid invoice is mirrored");
    assert_eq!(added.amount_due, 1_234);
    assert_eq!(added.hosted_invoice_url.as_deref(), Some("https://invoice.stripe.com/i/test"));

    let (_, outcome) = post_event(&billing, &event("evt_other", "customer.subscription.updated", later, json!({
        "id": "sub_unknown", "customer": "cus_unknown", "status": "active", "created": later, "items": { "data": [] }
    })), &billing.webhook_secret).await;
    assert_eq!(outcome, "ignored: customer is not one of ours");
}

on_both_databases!(
    card_customer_invoice_events,
    demo_seed_recreated_after_empty_stand_in,
    first_card_becomes_default,
    unconfirmed_setup_is_rejected,
    star_sets_customer_default,
    subscribe_shows_plan_and_invoice,
    b1_past_due_last_card_refused,
    b1_two_cards_active_removal,
    b2_out_of_order_webhooks,
    webhook_older_than_mirror_is_stale,
    webhook_bad_signature_changes_nothing,
    stand_in_webhook_updates_mirror,
    non_owners_get_403_and_no_stripe_call,
    members_see_billing_without_audit,
    cancel_detaches_cards_and_downgrades,
    cancel_resumes_after_stand_in_restart,
    stripe_down_shows_last_known_state,
);
