//! Server side of accounts: password hashing, sessions and the checks every
//! server function starts with.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine;
use leptos::prelude::*;
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row};

use super::{OrgMembership, Role, SessionInfo};
use crate::db::{db_error, internal, now_ms};
use crate::error::AppError;
use crate::state::AppState;

/// Name of the cookie that carries the session token.
pub const SESSION_COOKIE: &str = "casola_session";
/// How long a session lasts without signing in again.
pub const SESSION_TTL_MS: i64 = 30 * 24 * 3_600_000;
/// Failed sign-ins allowed per email address within `LOGIN_WINDOW_MS`.
pub const LOGIN_MAX_FAILURES: i64 = 5;
pub const LOGIN_WINDOW_MS: i64 = 15 * 60_000;

/// The signed-in user acting in their current organization.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: i64,
    pub email: String,
    pub name: String,
    pub org_id: i64,
    pub role: Role,
    pub current: OrgMembership,
    pub orgs: Vec<OrgMembership>,
}

impl Caller {
    pub fn session_info(&self) -> SessionInfo {
        SessionInfo {
            email: self.email.clone(),
            name: self.name.clone(),
            current: self.current.clone(),
            orgs: self.orgs.clone(),
        }
    }
}

/// Returns the caller of this request, or 401 without a valid session.
/// Every server function calls this (or `require_owner`) first.
pub async fn require_member() -> Result<Caller, AppError> {
    let token = session_token().await?;
    let state = expect_context::<AppState>();
    match token {
        Some(token) => caller_from_token(&state.pool, &token).await,
        None => Err(AppError::Unauthenticated),
    }
}

/// Returns the session token from the request's cookie, if it has one.
/// Call only inside a server function.
pub async fn session_token() -> Result<Option<String>, AppError> {
    let jar = leptos_axum::extract::<CookieJar>()
        .await
        .map_err(|e| internal("read cookies", e))?;
    Ok(jar.get(SESSION_COOKIE).map(|c| c.value().to_string()))
}

/// Returns the caller when they own their current organization, else 403.
pub async fn require_owner() -> Result<Caller, AppError> {
    let caller = require_member().await?;
    if caller.role != Role::Owner {
        tracing::debug!(user_id = caller.user_id, org_id = caller.org_id, "rejected: not an owner");
        return Err(AppError::Forbidden(format!(
            "Only owners of {} can do this. Ask an owner for help.",
            caller.current.name
        )));
    }
    Ok(caller)
}

/// Looks up the session of `token` and the user's current organization.
pub async fn caller_from_token(pool: &AnyPool, token: &str) -> Result<Caller, AppError> {
    let session = sqlx::query(
        "SELECT u.id, u.email, u.name, s.current_org_id \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.expires_at > $2",
    )
    .bind(hash_token(token))
    .bind(now_ms())
    .fetch_optional(pool)
    .await
    .map_err(|e| db_error("look up session", e))?
    .ok_or(AppError::Unauthenticated)?;

    let user_id: i64 = session.try_get(0).map_err(|e| db_error("read session", e))?;
    let email: String = session.try_get(1).map_err(|e| db_error("read session", e))?;
    let name: String = session.try_get(2).map_err(|e| db_error("read session", e))?;
    let current_org_id: Option<i64> = session.try_get(3).map_err(|e| db_error("read session", e))?;

    let memberships = fetch_memberships(pool, user_id).await?;
    let chosen = memberships
        .iter()
        .find(|(id, _)| Some(*id) == current_org_id)
        .or_else(|| memberships.first())
        .cloned();
    let Some((org_id, current)) = chosen else {
        return Err(AppError::Forbidden(
            "Your account is not a member of any organization. Ask an owner to invite you."
                .to_string(),
        ));
    };

    Ok(Caller {
        user_id,
        email,
        name,
        org_id,
        role: current.role,
        current,
        orgs: memberships.into_iter().map(|(_, m)| m).collect(),
    })
}

/// Lists the organizations `user_id` belongs to, by name.
pub async fn fetch_memberships(
    pool: &AnyPool,
    user_id: i64,
) -> Result<Vec<(i64, OrgMembership)>, AppError> {
    let rows = sqlx::query(
        "SELECT o.id, o.slug, o.name, o.timezone, m.role \
         FROM memberships m JOIN organizations o ON o.id = m.org_id \
         WHERE m.user_id = $1 ORDER BY o.name, o.id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
    .map_err(|e| db_error("list memberships", e))?;

    rows.iter()
        .map(|row| {
            let role: String = row.try_get(4).map_err(|e| db_error("read membership", e))?;
            let membership = OrgMembership {
                slug: row.try_get(1).map_err(|e| db_error("read membership", e))?,
                name: row.try_get(2).map_err(|e| db_error("read membership", e))?,
                timezone: row.try_get(3).map_err(|e| db_error("read membership", e))?,
                role: Role::parse(&role)?,
            };
            let id: i64 = row.try_get(0).map_err(|e| db_error("read membership", e))?;
            Ok((id, membership))
        })
        .collect()
}

/// Checks an email and password and opens a session, returning its token.
///
/// After `LOGIN_MAX_FAILURES` failures for one address within
/// `LOGIN_WINDOW_MS`, further attempts are rejected with 429 until the
/// window passes, whatever the password.
pub async fn sign_in(pool: &AnyPool, email: &str, password: &str) -> Result<String, AppError> {
    let email = normalize_email(email);
    let now = now_ms();

    let recent_failures: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM login_failures WHERE email = $1 AND failed_at > $2")
            .bind(&email)
            .bind(now - LOGIN_WINDOW_MS)
            .fetch_one(pool)
            .await
            .map_err(|e| db_error("count sign-in failures", e))?;
    if recent_failures >= LOGIN_MAX_FAILURES {
        tracing::debug!(%email, "rejected: sign-in rate limit");
        return Err(AppError::TooManyRequests(format!(
            "Too many failed sign-in attempts for {email}. Wait 15 minutes, then try again."
        )));
    }

    let user = sqlx::query("SELECT id, password_hash FROM users WHERE email = $1")
        .bind(&email)
        .fetch_optional(pool)
        .await
        .map_err(|e| db_error("look up user", e))?;
    let (user_id, stored_hash) = match user {
        Some(row) => (
            Some(row.try_get::<i64, _>(0).map_err(|e| db_error("read user", e))?),
            row.try_get::<String, _>(1).map_err(|e| db_error("read user", e))?,
        ),
        // Verify against a fixed hash anyway so the response time does not
        // reveal which addresses have accounts.
        None => (None, UNKNOWN_USER_HASH.to_string()),
    };

    let password_ok = verify_password(password.to_string(), stored_hash).await?;
    let Some(user_id) = user_id.filter(|_| password_ok) else {
        sqlx::query("INSERT INTO login_failures (email, failed_at) VALUES ($1, $2)")
            .bind(&email)
            .bind(now)
            .execute(pool)
            .await
            .map_err(|e| db_error("record sign-in failure", e))?;
        return Err(AppError::BadRequest(
            "The email address or password is incorrect.".to_string(),
        ));
    };

    sqlx::query("DELETE FROM login_failures WHERE email = $1")
        .bind(&email)
        .execute(pool)
        .await
        .map_err(|e| db_error("clear sign-in failures", e))?;
    create_session(pool, user_id).await
}

/// Checks an email and password and opens a session like `sign_in`, then
/// deletes the session of `previous_token`, so that a session id a visitor
/// had before signing in is never reused. Returns the new token.
pub async fn sign_in_replacing(
    pool: &AnyPool,
    email: &str,
    password: &str,
    previous_token: Option<&str>,
) -> Result<String, AppError> {
    let token = sign_in(pool, email, password).await?;
    if let Some(previous) = previous_token {
        if let Err(error) = sign_out(pool, previous).await {
            tracing::warn!(%error, "could not delete the previous session");
        }
    }
    Ok(token)
}

/// Signs in for the `sign_in` server function, replacing the request's
/// session, and sets the new session cookie on the response.
pub async fn sign_in_from_server_function(email: &str, password: &str) -> Result<(), AppError> {
    let state = expect_context::<AppState>();
    let previous = session_token().await?;
    let token = sign_in_replacing(&state.pool, email, password, previous.as_deref()).await?;
    set_response_cookie(&session_cookie(token, state.secure_cookies));
    Ok(())
}

/// Deletes the request's session, if any, for the `sign_out` server
/// function, and removes the cookie.
pub async fn sign_out_from_server_function() -> Result<(), AppError> {
    let state = expect_context::<AppState>();
    if let Some(token) = session_token().await? {
        if let Err(error) = sign_out(&state.pool, &token).await {
            tracing::warn!(%error, "could not delete the session at sign-out");
        }
    }
    set_response_cookie(&removed_session_cookie());
    Ok(())
}

/// Adds a `Set-Cookie` header to the response of the current server
/// function.
fn set_response_cookie(cookie: &Cookie<'_>) {
    let options = expect_context::<leptos_axum::ResponseOptions>();
    match http::HeaderValue::from_str(&cookie.to_string()) {
        Ok(value) => options.append_header(http::header::SET_COOKIE, value),
        Err(error) => tracing::error!(%error, cookie = cookie.name(), "cookie is not a valid header value"),
    }
}

/// Opens a new session for `user_id` and returns its token. Only the
/// token's SHA-256 is stored.
pub async fn create_session(pool: &AnyPool, user_id: i64) -> Result<String, AppError> {
    let token = new_token();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, current_org_id, created_at, expires_at) \
         VALUES ($1, $2, NULL, $3, $4)",
    )
    .bind(hash_token(&token))
    .bind(user_id)
    .bind(now)
    .bind(now + SESSION_TTL_MS)
    .execute(pool)
    .await
    .map_err(|e| db_error("create session", e))?;
    Ok(token)
}

/// Ends the session of `token`, if any.
pub async fn sign_out(pool: &AnyPool, token: &str) -> Result<(), AppError> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(hash_token(token))
        .execute(pool)
        .await
        .map_err(|e| db_error("delete session", e))?;
    Ok(())
}

/// Makes `slug` the current organization of the session of `token`, when the
/// session's user is a member of it.
pub async fn switch_org(pool: &AnyPool, token: &str, slug: &str) -> Result<(), AppError> {
    let caller = caller_from_token(pool, token).await?;
    let target: Option<i64> = sqlx::query_scalar(
        "SELECT o.id FROM organizations o JOIN memberships m ON m.org_id = o.id \
         WHERE o.slug = $1 AND m.user_id = $2",
    )
    .bind(slug)
    .bind(caller.user_id)
    .fetch_optional(pool)
    .await
    .map_err(|e| db_error("look up organization", e))?;
    let Some(org_id) = target else {
        tracing::debug!(user_id = caller.user_id, slug, "rejected: switch to a foreign organization");
        return Err(AppError::Forbidden(format!(
            "You are not a member of an organization named \"{slug}\"."
        )));
    };

    sqlx::query("UPDATE sessions SET current_org_id = $1 WHERE token_hash = $2")
        .bind(org_id)
        .bind(hash_token(token))
        .execute(pool)
        .await
        .map_err(|e| db_error("switch organization", e))?;
    Ok(())
}

/// Builds the session cookie: HttpOnly, SameSite=Lax, and Secure unless
/// `secure` is false (local development over plain HTTP).
pub fn session_cookie(token: String, secure: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(time_from_ms(SESSION_TTL_MS))
        .build()
}

/// Builds a cookie that makes the browser delete the session cookie.
pub fn removed_session_cookie() -> Cookie<'static> {
    let mut cookie = Cookie::build((SESSION_COOKIE, "")).path("/").build();
    cookie.make_removal();
    cookie
}

fn time_from_ms(ms: i64) -> cookie::time::Duration {
    cookie::time::Duration::milliseconds(ms)
}

/// Lowercases and trims an email address, the form accounts are stored in.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Hashes a password with Argon2id on a blocking thread.
pub async fn hash_password(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
    })
    .await
    .map_err(|e| internal("join password hashing", e))?
    .map_err(|e| internal("hash password", e))
}

/// Checks a password against a stored Argon2 hash on a blocking thread.
pub async fn verify_password(password: String, stored_hash: String) -> Result<bool, AppError> {
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&stored_hash) else {
            return false;
        };
        Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
    })
    .await
    .map_err(|e| internal("join password check", e))
}

/// Argon2id hash of a random password that no account uses, checked when an email
/// address has no account.
const UNKNOWN_USER_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$2kUSm5jsUZGgI0TTbKn1UgR8mqvVGfa1thBzBoA6Qeo";

/// Returns a new random session token: 32 bytes, URL-safe base64.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Returns the hex SHA-256 of a token, the form sessions are stored in.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
