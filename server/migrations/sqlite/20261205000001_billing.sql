-- The local mirror of each organization's Stripe customer, cards,
-- subscription and invoices. Stripe is the source of truth: the server
-- rewrites these rows after every change it makes and on webhooks, and the
-- billing page reads only from them, so it still shows the last known state
-- while Stripe cannot be reached. Times are milliseconds since the Unix
-- epoch (UTC).

CREATE TABLE billing_customers (
    org_id INTEGER PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    stripe_customer_id TEXT NOT NULL UNIQUE,
    -- The customer's invoice_settings.default_payment_method; NULL for none.
    default_payment_method_id TEXT,
    -- Time of the Stripe state the default was taken from. A webhook event
    -- created before it is stale and leaves the default alone.
    default_state_at INTEGER NOT NULL,
    -- Last complete refresh from Stripe; the page shows it when stale.
    synced_at INTEGER NOT NULL,
    -- Set while a Cancel Subscription run has not finished, so the page can
    -- ask the owner to retry; cleared when every step has succeeded.
    cancel_started_at INTEGER
);

CREATE TABLE billing_cards (
    -- Stripe's PaymentMethod id (pm_…).
    payment_method_id TEXT PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    brand TEXT NOT NULL,
    last4 TEXT NOT NULL,
    exp_month INTEGER NOT NULL,
    exp_year INTEGER NOT NULL,
    -- Stripe's creation time; the newest other card replaces a removed default.
    added_at INTEGER NOT NULL,
    -- When this server first saw the card. Stripe's times are whole seconds,
    -- so this orders cards added within the same second.
    first_seen_at INTEGER NOT NULL,
    -- Set when the card is detached. The row stays so that a delayed
    -- "attached" event cannot bring the card back.
    detached_at INTEGER,
    -- Time of the Stripe state this row was taken from, for event ordering.
    state_at INTEGER NOT NULL
);
CREATE INDEX billing_cards_by_org ON billing_cards (org_id, added_at);

CREATE TABLE billing_subscriptions (
    org_id INTEGER PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    stripe_subscription_id TEXT NOT NULL,
    -- Stripe's status: active, trialing, past_due, canceled, incomplete, …
    status TEXT NOT NULL,
    plan_name TEXT NOT NULL,
    -- Price per interval in the currency's minor unit (cents).
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    -- month, year, week or day.
    billing_interval TEXT NOT NULL,
    current_period_end INTEGER,
    -- Time of the Stripe state this row was taken from, for event ordering.
    state_at INTEGER NOT NULL
);

CREATE TABLE billing_invoices (
    invoice_id TEXT PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    number TEXT,
    created_at INTEGER NOT NULL,
    -- In the currency's minor unit (cents).
    amount_due INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    -- Stripe's hosted invoice page; NULL when Stripe gives none.
    hosted_invoice_url TEXT
);
CREATE INDEX billing_invoices_by_org ON billing_invoices (org_id, created_at);

-- SetupIntents this server created, so that completing one checks on our
-- side, before any Stripe call, that it belongs to the caller's organization.
CREATE TABLE billing_setup_intents (
    setup_intent_id TEXT PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);

-- Every webhook event id handled, so a redelivered event changes nothing.
CREATE TABLE billing_webhook_events (
    event_id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    -- The event's own creation time (Stripe's `created`).
    created_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    -- applied, stale, or ignored with the reason.
    outcome TEXT NOT NULL
);

-- Who changed what in billing, shown to owners on the billing page.
CREATE TABLE billing_audit_log (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- NULL for changes that arrived by webhook or from the demo seed.
    user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    -- The user's email, or "Stripe webhook", kept if the user is deleted.
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    -- The card (pm_…) or subscription (sub_…) the change was about.
    target TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX billing_audit_log_by_org ON billing_audit_log (org_id, created_at);
