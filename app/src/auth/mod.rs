//! Accounts: roles, the signed-in session and the sign-in page.

mod page;
#[cfg(feature = "ssr")]
pub mod ssr;

pub use page::LoginPage;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Returns `path` when it is a path on this site, else `fallback`. Stops a
/// sign-in link from sending the user to another site afterwards.
pub fn local_path_or<'a>(path: &'a str, fallback: &'a str) -> &'a str {
    let local = path.starts_with('/') && !path.starts_with("//") && !path.contains('\\');
    if local {
        path
    } else {
        fallback
    }
}

/// A member's role in one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Manages billing and members.
    Owner,
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(value: &str) -> Result<Role, AppError> {
        match value {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            _ => Err(AppError::BadRequest(format!(
                "Unknown role \"{value}\". Accepted roles: owner, admin, member."
            ))),
        }
    }
}

/// An organization as listed in the sidebar's switcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgMembership {
    pub slug: String,
    pub name: String,
    /// IANA name of the organization's own time zone.
    pub timezone: String,
    pub role: Role,
}

/// The signed-in user and the organization the pages show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub email: String,
    pub name: String,
    pub current: OrgMembership,
    pub orgs: Vec<OrgMembership>,
}

/// Returns who is signed in and their current organization.
///
/// Public endpoint: anyone may call it; a caller without a valid session
/// gets 401.
#[server(endpoint = "session", client = crate::client::CredentialedClient)]
pub async fn get_session_info() -> Result<SessionInfo, AppError> {
    let caller = ssr::require_member().await?;
    Ok(caller.session_info())
}

/// Checks an email and password, opens a session and sets its cookie on
/// the response, ending any session this browser had. The static app's
/// sign-in form calls it; the server-rendered page posts to `/login`.
///
/// Public endpoint: anyone may call it. A missing or wrong email or
/// password is 400, too many failures for one address 429.
#[server(endpoint = "auth/sign-in", client = crate::client::CredentialedClient)]
pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
    if email.trim().is_empty() || password.is_empty() {
        return Err(AppError::BadRequest("Enter both your email address and your password.".to_string()));
    }
    ssr::sign_in_from_server_function(&email, &password).await
}

/// Ends the caller's session and removes its cookie.
///
/// Public endpoint: anyone may call it; without a session it only removes
/// the cookie.
#[server(endpoint = "auth/sign-out", client = crate::client::CredentialedClient)]
pub async fn sign_out() -> Result<(), AppError> {
    ssr::sign_out_from_server_function().await
}

/// Makes the organization `org` (a slug) current for the caller's session.
///
/// Public endpoint: any signed-in user may call it for an organization
/// they belong to. Another organization gets 403, and no session gets 401.
#[server(endpoint = "auth/switch-org", client = crate::client::CredentialedClient)]
pub async fn switch_organization(org: String) -> Result<(), AppError> {
    let state = expect_context::<crate::state::AppState>();
    let token = ssr::session_token().await?.ok_or(AppError::Unauthenticated)?;
    ssr::switch_org(&state.pool, &token, &org).await
}
