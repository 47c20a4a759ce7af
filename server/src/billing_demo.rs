//! Billing demo data in the Stripe stand-in: the demo organization gets a
//! customer with two cards (the newer one the default) and an active
//! subscription, so the owner's billing page has something to manage.

use anyhow::{bail, Context};
use app::billing::ssr::{customer_of, ensure_customer_for, insert_audit, refresh};
use app::billing::stripe::Stripe;
use sqlx::AnyPool;

/// Slug of the organization `seed-demo` creates.
pub const DEMO_ORG_SLUG: &str = "demo";
/// The actor the audit log shows for demo changes.
const DEMO_ACTOR: &str = "demo seed";
/// The paid plan the stand-in gets: name and monthly price in cents (USD).
pub const DEMO_PLAN_NAME: &str = "Casola Pro";
pub const DEMO_PLAN_AMOUNT_CENTS: i64 = 4_900;
/// Stripe's test card numbers; the stand-in accepts any 16 digits.
const DEMO_CARDS: [(&str, u32, i32); 2] = [("4242424242424242", 12, 2030), ("5555555555554444", 8, 2029)];

/// Creates the stand-in's plan and the demo organization's billing, unless
/// the stand-in already contains the customer. When the stand-in started empty
/// while the database still mirrors an old customer, the mirror is cleared
/// and everything is created again. Returns what it did, for the console.
pub async fn seed_billing_demo(pool: &AnyPool, stripe: &Stripe) -> anyhow::Result<String> {
    if !stripe.settings.is_stand_in() {
        bail!("seed-billing-demo only runs against a Stripe stand-in (STRIPE_API_BASE is Stripe's own)");
    }
    stripe
        .ensure_stand_in_plan(DEMO_PLAN_AMOUNT_CENTS, "usd", DEMO_PLAN_NAME)
        .await
        .context("creating the plan in the stand-in")?;

    let org: Option<(i64, String)> = sqlx::query_as("SELECT id, name FROM organizations WHERE slug = $1")
        .bind(DEMO_ORG_SLUG)
        .fetch_optional(pool)
        .await?;
    let Some((org_id, org_name)) = org else {
        return Ok("No demo organization; billing demo skipped.".to_string());
    };

    if let Some(customer) = customer_of(pool, org_id).await.map_err(|e| anyhow::anyhow!("{e}"))? {
        match stripe.retrieve_customer(&customer.customer_id).await {
            Ok(found) if !found.deleted => {
                refresh(pool, stripe, org_id, &customer.customer_id)
                    .await
                    .map_err(|e| anyhow::anyhow!("refreshing the demo billing: {e:?}"))?;
                return Ok("The stand-in already contains the demo customer; billing demo kept.".to_string());
            }
            Ok(_) => {}
            Err(failure) if failure.is_not_found() => {}
            Err(failure) => return Err(failure).context("looking up the demo customer"),
        }
        clear_mirror(pool, org_id).await?;
    }

    let owner_email = "owner@example.com";
    let customer_id = ensure_customer_for(pool, stripe, org_id, &org_name, owner_email, None)
        .await
        .map_err(|e| anyhow::anyhow!("creating the demo customer: {e}"))?;

    let mut newest = None;
    for (number, exp_month, exp_year) in DEMO_CARDS {
        let card = stripe.create_test_card(number, exp_month, exp_year).await.context("creating a demo card")?;
        stripe.attach_payment_method(&card.id, &customer_id).await.context("attaching a demo card")?;
        insert_audit(pool, org_id, None, DEMO_ACTOR, "Added card", Some(&card.id))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        newest = Some(card.id);
    }
    let default = newest.context("no demo card was created")?;
    stripe.set_customer_default(&customer_id, &default).await.context("setting the demo default card")?;

    let subscription = stripe.create_subscription(&customer_id).await.context("subscribing the demo customer")?;
    insert_audit(pool, org_id, None, DEMO_ACTOR, "Subscribed", Some(&subscription.id))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    refresh(pool, stripe, org_id, &customer_id)
        .await
        .map_err(|e| anyhow::anyhow!("refreshing the demo billing: {e:?}"))?;
    Ok(format!("Billing demo: customer {customer_id} with two cards and subscription {} ({}).", subscription.id, subscription.status))
}

/// Deletes the demo organization's mirrored billing, kept audit log aside.
async fn clear_mirror(pool: &AnyPool, org_id: i64) -> anyhow::Result<()> {
    for table in ["billing_cards", "billing_subscriptions", "billing_invoices", "billing_setup_intents", "billing_customers"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE org_id = $1"))
            .bind(org_id)
            .execute(pool)
            .await
            .with_context(|| format!("clearing {table}"))?;
    }
    Ok(())
}
