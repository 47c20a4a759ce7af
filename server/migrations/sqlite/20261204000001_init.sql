-- Accounts, organizations and jobs. Times are milliseconds since the Unix
-- epoch (UTC) in INTEGER columns, the one representation both backends and
-- sqlx's Any driver share.

-- The unit that owns jobs, members and billing.
CREATE TABLE organizations (
    id INTEGER PRIMARY KEY,
    -- Stable URL-safe name, used by the CLI and the organization switcher.
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    -- IANA zone the usage page offers besides the browser's and UTC.
    timezone TEXT NOT NULL DEFAULT 'UTC',
    plan TEXT NOT NULL DEFAULT 'free',
    -- Attribution shown on the usage page while imported demo data is present.
    data_credit TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    -- Stored lowercased and trimmed.
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    -- Argon2id in PHC string format.
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE memberships (
    org_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
-- The sidebar lists a user's organizations on every page.
CREATE INDEX memberships_by_user ON memberships (user_id);

CREATE TABLE sessions (
    -- SHA-256 of the cookie's token, so a copy of the table opens no session.
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The organization the pages show; NULL means the first by name.
    current_org_id INTEGER REFERENCES organizations (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Failed sign-ins, counted per address for the rate limit.
CREATE TABLE login_failures (
    email TEXT NOT NULL,
    failed_at INTEGER NOT NULL
);
CREATE INDEX login_failures_by_email ON login_failures (email, failed_at);

CREATE TABLE jobs (
    org_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- The platform's id, unique within the organization.
    job_id TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    submitted_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    gpu_count INTEGER NOT NULL CHECK (gpu_count >= 0),
    -- GPU count × run time; NULL until known.
    gpu_ms INTEGER CHECK (gpu_ms >= 0),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, job_id)
);
-- Every usage query is one organization's jobs in a submission-time window.
CREATE INDEX jobs_by_org_submitted ON jobs (org_id, submitted_at);
