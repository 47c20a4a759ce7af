//! Organization API keys: created and revoked by operators, checked by the
//! ingestion API on every request.

use anyhow::{bail, Context};
use app::auth::ssr::{hash_token, new_token};
use app::db::now_ms;
use sqlx::AnyPool;

/// Prefix of every key, so a leaked key is recognisable in logs and scans.
pub const KEY_PREFIX: &str = "csk_";

/// Creates a key named `name` for the organization `org_slug` and returns
/// the key itself, which is not stored and cannot be shown again.
pub async fn create_api_key(pool: &AnyPool, org_slug: &str, name: &str) -> anyhow::Result<String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        bail!("the key name must be 1 to 100 characters long");
    }
    let org_id = org_id_of(pool, org_slug).await?;
    let key = format!("{KEY_PREFIX}{}", new_token());

    sqlx::query(
        "INSERT INTO api_keys (org_id, name, key_hash, key_prefix, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(org_id)
    .bind(name)
    .bind(hash_token(&key))
    .bind(&key[..KEY_PREFIX.len() + 6])
    .bind(now_ms())
    .execute(pool)
    .await
    .with_context(|| format!("creating API key \"{name}\" (does {org_slug} have a key of that name?)"))?;
    Ok(key)
}

/// Revokes the key named `name` of `org_slug`. Revoking a revoked key is
/// not an error.
pub async fn revoke_api_key(pool: &AnyPool, org_slug: &str, name: &str) -> anyhow::Result<()> {
    let org_id = org_id_of(pool, org_slug).await?;
    let result = sqlx::query(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE org_id = $2 AND name = $3",
    )
    .bind(now_ms())
    .bind(org_id)
    .bind(name)
    .execute(pool)
    .await?;
    if result.rows_affected() == 0 {
        bail!("{org_slug} has no API key named \"{name}\"");
    }
    Ok(())
}

/// Returns the organization id of an active key, or `None` for an unknown
/// or revoked one.
pub async fn authenticate(pool: &AnyPool, key: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT org_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
        .bind(hash_token(key))
        .fetch_optional(pool)
        .await
}

async fn org_id_of(pool: &AnyPool, slug: &str) -> anyhow::Result<i64> {
    sqlx::query_scalar("SELECT id FROM organizations WHERE slug = $1")
        .bind(slug)
        .fetch_optional(pool)
        .await?
        .with_context(|| format!("no organization has the slug \"{slug}\""))
}
