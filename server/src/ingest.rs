//! `POST /api/v1/jobs`: the platform reports jobs here, authenticated by an
//! organization API key.
//!
//! The body is `{"jobs": [record, …]}` with at most `MAX_BATCH_RECORDS`
//! records. A record has `id` (the platform's job id), `model`, `status`,
//! `submitted_at`, optional `started_at` and `finished_at` (RFC 3339),
//! `gpu_count` and optional `gpu_ms`. The batch is stored whole or not at
//! all, and a 2xx response is sent only after the transaction commits.
//! `casola_parsers::job_batch` parses and validates the body.

use app::state::AppState;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::json;

use app::api_keys::ssr as api_keys;
pub use casola_parsers::job_batch::{parse_batch, BatchRejection, RecordError, MAX_BATCH_RECORDS, MAX_BODY_BYTES};
use crate::jobs::{upsert_jobs, JobRecord};

/// Handles `POST /api/v1/jobs`.
pub async fn post_jobs(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();

    let org_id = match authenticate(&state, &parts.headers).await {
        Ok(org_id) => org_id,
        Err(response) => return response,
    };
    if let Err(response) = check_content_type(&parts.headers) {
        return response;
    }
    let records = match read_batch(body).await {
        Ok(records) => records,
        Err(response) => return response,
    };

    let count = records.len();
    if let Err(error) = store_batch(&state, org_id, &records).await {
        let request_id = app::db::new_request_id();
        tracing::error!(org_id, count, %request_id, %error, "storing a job batch failed");
        let (status, message) = if app::db::is_unavailable(&error) {
            (StatusCode::SERVICE_UNAVAILABLE, "The database is unavailable; nothing was stored. Retry the same batch.")
        } else {
            (StatusCode::INTERNAL_SERVER_ERROR, "Storing the batch failed; nothing was stored. Retry the same batch.")
        };
        return error_response(status, &format!("{message} (request {request_id})"), None);
    }

    state.usage_cache.forget_org(org_id);
    tracing::info!(org_id, count, "stored a job batch");
    (StatusCode::OK, Json(json!({ "accepted": count }))).into_response()
}

/// Times a batch is stored before the error goes to the client, when
/// the transaction lost to another one (see `is_transaction_conflict`).
const STORE_ATTEMPTS: u32 = 3;

/// Stores a batch with `upsert_jobs`, running the transaction again when it
/// failed only because a concurrent one got in its way. The whole batch is
/// one transaction, so a failed attempt stored nothing. A random pause of
/// up to 100 ms × attempt comes first, so that two batches that conflicted
/// do not meet again at once.
async fn store_batch(state: &AppState, org_id: i64, records: &[JobRecord]) -> Result<(), sqlx::Error> {
    let mut attempt = 1;
    loop {
        match upsert_jobs(&state.pool, org_id, records).await {
            // NOTE: no test reaches this branch: `upsert_jobs` orders its
            // rows, which removed the deadlocks between concurrent batches.
            Err(error) if attempt < STORE_ATTEMPTS && app::db::is_transaction_conflict(&error) => {
                tracing::warn!(org_id, attempt, %error, "storing a job batch conflicted with another transaction, retrying");
                let pause_ms = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=100 * u64::from(attempt));
                tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<i64, Response> {
    let unauthorized = |message: &str| error_response(StatusCode::UNAUTHORIZED, message, None);
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "Missing Authorization header. Send `Authorization: Bearer <API key>`.",
        ));
    };
    let key = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let Some(key) = key else {
        return Err(unauthorized("The Authorization header must be `Bearer <API key>`."));
    };

    match api_keys::authenticate(&state.pool, key).await {
        Ok(Some(org_id)) => Ok(org_id),
        Ok(None) => {
            tracing::debug!("rejected: unknown or revoked API key");
            Err(unauthorized("The API key is invalid or has been revoked."))
        }
        Err(error) => {
            tracing::warn!(%error, "API key lookup failed");
            Err(error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is unavailable; nothing was stored. Retry the same batch.",
                None,
            ))
        }
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), Response> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if media_type.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    let shown = if content_type.is_empty() { "none" } else { content_type };
    Err(error_response(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        &format!("Unsupported content type \"{shown}\". Send `Content-Type: application/json`."),
        None,
    ))
}

async fn read_batch(body: Body) -> Result<Vec<JobRecord>, Response> {
    let bytes = to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| rejection_response(BatchRejection::too_large()))?;
    parse_batch(&bytes, Utc::now()).map_err(rejection_response)
}

fn rejection_response(rejection: BatchRejection) -> Response {
    error_response(rejection.status, &rejection.message, rejection.errors)
}

fn error_response(status: StatusCode, message: &str, errors: Option<Vec<RecordError>>) -> Response {
    let body = match errors {
        Some(errors) => json!({ "error": message, "errors": errors }),
        None => json!({ "error": message }),
    };
    (status, Json(body)).into_response()
}

