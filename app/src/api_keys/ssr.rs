//! Server side of API keys: creation, revocation and the check the
//! ingestion API runs on every request.

use sqlx::{AnyPool, Row};

use super::ApiKeyInfo;
use crate::auth::ssr::{hash_token, new_token};
use crate::db::{db_error, now_ms};
use crate::error::AppError;

/// Prefix of every key, so a leaked key is recognisable in logs and scans.
pub const KEY_PREFIX: &str = "csk_";
/// Maximum key name length, in characters.
pub const MAX_NAME_LEN: usize = 100;

/// Creates a key named `name` for organization `org_id` and returns the key
/// itself, which is not stored and cannot be shown again.
pub async fn create_key(pool: &AnyPool, org_id: i64, name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
        return Err(AppError::BadRequest(format!(
            "Invalid key name \"{name}\": use 1 to {MAX_NAME_LEN} characters."
        )));
    }
    let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE org_id = $1 AND name = $2")
        .bind(org_id)
        .bind(name)
        .fetch_one(pool)
        .await
        .map_err(|e| db_error("check API key name", e))?;
    if taken > 0 {
        return Err(AppError::Conflict(format!(
            "A key named \"{name}\" exists already. Choose another name."
        )));
    }

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
    .map_err(|e| db_error("create API key", e))?;
    Ok(key)
}

/// Revokes the key named `name` of `org_id`. Revoking a revoked key changes
/// nothing and is not an error.
pub async fn revoke_key(pool: &AnyPool, org_id: i64, name: &str) -> Result<(), AppError> {
    let result = sqlx::query(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE org_id = $2 AND name = $3",
    )
    .bind(now_ms())
    .bind(org_id)
    .bind(name)
    .execute(pool)
    .await
    .map_err(|e| db_error("revoke API key", e))?;
    if result.rows_affected() == 0 {
        return Err(AppError::NotFound(format!("There is no API key named \"{name}\".")));
    }
    Ok(())
}

/// Lists the keys of `org_id`, newest first, without their secrets.
pub async fn list_keys(pool: &AnyPool, org_id: i64) -> Result<Vec<ApiKeyInfo>, AppError> {
    let rows = sqlx::query(
        "SELECT name, key_prefix, created_at, revoked_at FROM api_keys \
         WHERE org_id = $1 ORDER BY created_at DESC, id DESC",
    )
    .bind(org_id)
    .fetch_all(pool)
    .await
    .map_err(|e| db_error("list API keys", e))?;

    rows.iter()
        .map(|row| {
            Ok(ApiKeyInfo {
                name: row.try_get(0)?,
                prefix: row.try_get(1)?,
                created_at_ms: row.try_get(2)?,
                revoked_at_ms: row.try_get(3)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(|e| db_error("read API keys", e))
}

/// Returns the organization id of an active key, or `None` for an unknown
/// or revoked one.
pub async fn authenticate(pool: &AnyPool, key: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT org_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
        .bind(hash_token(key))
        .fetch_optional(pool)
        .await
}

/// Returns the id of the organization with `slug`.
pub async fn org_id_of(pool: &AnyPool, slug: &str) -> Result<i64, AppError> {
    sqlx::query_scalar("SELECT id FROM organizations WHERE slug = $1")
        .bind(slug)
        .fetch_optional(pool)
        .await
        .map_err(|e| db_error("look up organization", e))?
        .ok_or_else(|| AppError::NotFound(format!("No organization has the slug \"{slug}\".")))
}
