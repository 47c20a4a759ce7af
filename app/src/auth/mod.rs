//! Accounts: roles, the signed-in session and the sign-in page.

mod page;
#[cfg(feature = "ssr")]
pub mod ssr;

pub use page::LoginPage;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

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
#[server(endpoint = "session")]
pub async fn get_session_info() -> Result<SessionInfo, AppError> {
    let caller = ssr::require_member().await?;
    Ok(caller.session_info())
}
