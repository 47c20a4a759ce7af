//! Creating organizations, users and memberships, for the operator
//! commands and the demo seed.

use anyhow::{bail, Context};
use app::auth::ssr::{hash_password, normalize_email};
use app::auth::Role;
use app::db::now_ms;
use sqlx::AnyPool;

/// Creates an organization and returns its id. `slug` is 2 to 40 lowercase
/// letters, digits or dashes; `timezone` an IANA name.
pub async fn create_org(pool: &AnyPool, slug: &str, name: &str, timezone: &str) -> anyhow::Result<i64> {
    validate_slug(slug)?;
    if name.trim().is_empty() {
        bail!("the organization name must not be empty");
    }
    if timezone.parse::<chrono_tz::Tz>().is_err() {
        bail!("unknown time zone \"{timezone}\": use an IANA name such as UTC or Europe/Berlin");
    }
    sqlx::query_scalar(
        "INSERT INTO organizations (slug, name, timezone, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(slug)
    .bind(name.trim())
    .bind(timezone)
    .bind(now_ms())
    .fetch_one(pool)
    .await
    .with_context(|| format!("creating organization \"{slug}\" (is the slug taken?)"))
}

/// Creates a user with an Argon2id password hash and returns their id.
pub async fn create_user(pool: &AnyPool, email: &str, name: &str, password: &str) -> anyhow::Result<i64> {
    let email = normalize_email(email);
    if !email.contains('@') || email.len() > 254 {
        bail!("\"{email}\" is not an email address");
    }
    if password.chars().count() < 8 {
        bail!("the password must be at least 8 characters long");
    }
    let hash = hash_password(password.to_string()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    sqlx::query_scalar(
        "INSERT INTO users (email, name, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(&email)
    .bind(name.trim())
    .bind(hash)
    .bind(now_ms())
    .fetch_one(pool)
    .await
    .with_context(|| format!("creating user {email} (does the account exist already?)"))
}

/// Adds a user to an organization with a role, or changes their role.
pub async fn add_member(pool: &AnyPool, org_slug: &str, email: &str, role: Role) -> anyhow::Result<()> {
    let email = normalize_email(email);
    let org_id: i64 = sqlx::query_scalar("SELECT id FROM organizations WHERE slug = $1")
        .bind(org_slug)
        .fetch_optional(pool)
        .await?
        .with_context(|| format!("no organization has the slug \"{org_slug}\""))?;
    let user_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(&email)
        .fetch_optional(pool)
        .await?
        .with_context(|| format!("no user has the email address {email}"))?;
    sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(role.as_str())
    .bind(now_ms())
    .execute(pool)
    .await
    .context("adding the membership")?;
    Ok(())
}

fn validate_slug(slug: &str) -> anyhow::Result<()> {
    let valid_chars = slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !(2..=40).contains(&slug.len()) || !valid_chars {
        bail!("invalid slug \"{slug}\": use 2 to 40 lowercase letters, digits or dashes");
    }
    Ok(())
}
