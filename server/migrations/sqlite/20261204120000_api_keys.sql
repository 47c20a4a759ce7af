-- Organization API keys for the ingestion API. Only a hash of each key is
-- stored: the key itself is shown once, when it is created.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- Label chosen by its creator, unique among the organization's keys.
    name TEXT NOT NULL,
    -- Hex SHA-256 of the whole key; the ingestion API looks keys up by it.
    key_hash TEXT NOT NULL UNIQUE,
    -- The key's first characters, so people can tell keys apart in lists.
    key_prefix TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- Set when revoked; a revoked key authenticates nothing.
    revoked_at INTEGER,
    UNIQUE (org_id, name)
);
