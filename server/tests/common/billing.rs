//! Billing calls as the browser makes them, against any server: one in the
//! test process or a `casola` child process.

use app::billing::BillingOverview;
use serde_json::Value;

use super::stand_in::StandIn;

/// Calls the billing server function `endpoint` of the server at `base` and
/// returns the status and JSON body (a JSON string when it is not JSON).
pub async fn call(base: &str, client: &super::Browser, endpoint: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = client
        .post(format!("{base}/api/billing/{endpoint}"))
        .form(form)
        .send()
        .await
        .expect("call the server function");
    let status = response.status().as_u16();
    let text = response.text().await.expect("read the response");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Loads the billing overview, which must succeed.
pub async fn overview(base: &str, client: &super::Browser) -> BillingOverview {
    let (status, body) = call(base, client, "overview", &[]).await;
    assert_eq!(status, 200, "overview failed: {body}");
    serde_json::from_value(body).expect("read the overview")
}

/// Adds a card as the browser does: the server creates a SetupIntent, the
/// stand-in's Stripe.js confirms it, the server completes it. Returns the
/// card's id.
pub async fn add_card(base: &str, stand_in: &StandIn, client: &super::Browser, number: &str) -> String {
    let (status, setup) = call(base, client, "card-setup", &[]).await;
    assert_eq!(status, 200, "card setup failed: {setup}");
    let intent_id = setup["setup_intent_id"].as_str().unwrap();
    let confirmed = stand_in
        .confirm_setup_intent(
            intent_id,
            setup["client_secret"].as_str().unwrap(),
            setup["publishable_key"].as_str().unwrap(),
            number,
        )
        .await;
    assert_eq!(confirmed["status"], "succeeded");

    let (status, body) = call(base, client, "complete-card-setup", &[("setup_intent_id", intent_id)]).await;
    assert_eq!(status, 200, "completing the card setup failed: {body}");
    confirmed["payment_method"].as_str().unwrap().to_string()
}
