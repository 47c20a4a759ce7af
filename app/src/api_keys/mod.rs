//! Organization API keys for the ingestion API, managed by owners.

mod page;
#[cfg(feature = "ssr")]
pub mod ssr;

pub use page::ApiKeysPage;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// A key as listed: never the key itself, which is shown once at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    pub name: String,
    /// The key's first characters, such as `csk_Ab12Cd`.
    pub prefix: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// Lists the API keys of the caller's organization.
///
/// Public endpoint: owners only; anyone else gets 403.
#[server(endpoint = "api-keys/list", client = crate::client::CredentialedClient)]
pub async fn list_api_keys() -> Result<Vec<ApiKeyInfo>, AppError> {
    let caller = crate::auth::ssr::require_owner().await?;
    let state = expect_context::<crate::state::AppState>();
    ssr::list_keys(&state.pool, caller.org_id).await
}

/// Creates an API key named `name` and returns it. The key is shown only
/// in this response; the server keeps a hash.
///
/// Public endpoint: owners only; anyone else gets 403.
#[server(endpoint = "api-keys/create", client = crate::client::CredentialedClient)]
pub async fn create_api_key(name: String) -> Result<String, AppError> {
    let caller = crate::auth::ssr::require_owner().await?;
    let state = expect_context::<crate::state::AppState>();
    let key = ssr::create_key(&state.pool, caller.org_id, &name).await?;
    tracing::info!(org_id = caller.org_id, user_id = caller.user_id, name = name.trim(), "API key created");
    Ok(key)
}

/// Revokes the API key named `name`: requests with it are rejected from
/// then on.
///
/// Public endpoint: owners only; anyone else gets 403.
#[server(endpoint = "api-keys/revoke", client = crate::client::CredentialedClient)]
pub async fn revoke_api_key(name: String) -> Result<(), AppError> {
    let caller = crate::auth::ssr::require_owner().await?;
    let state = expect_context::<crate::state::AppState>();
    ssr::revoke_key(&state.pool, caller.org_id, &name).await?;
    tracing::info!(org_id = caller.org_id, user_id = caller.user_id, %name, "API key revoked");
    Ok(())
}
