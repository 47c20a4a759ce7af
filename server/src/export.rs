//! `GET /usage/export.csv`: the visible range as CSV, one row per bucket
//! and per model.

use std::collections::HashMap;

use app::auth::ssr::{caller_from_token, SESSION_COOKIE};
use app::error::AppError;
use app::state::AppState;
use app::usage::ssr::{export_rows, parse_time_zone, span_model_tallies, zone_from_cookie, TIME_ZONE_COOKIE};
use app::usage::window::plan_window;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

use crate::web_auth::error_page;

/// Returns the caller's usage for the page's window parameters (`range`,
/// `end`, `from`, `to`, `tz`; `sort`, `dir` and `compare` are accepted and
/// ignored) as CSV. Any member may download it.
pub async fn usage_csv(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    match build_csv(&state, &jar, &params).await {
        Ok((filename, body)) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
            ],
            body,
        )
            .into_response(),
        Err(error) => error_page(&error),
    }
}

async fn build_csv(
    state: &AppState,
    jar: &CookieJar,
    params: &HashMap<String, String>,
) -> Result<(String, String), AppError> {
    let query = app::usage::UsageQuery::from_params(|name| params.get(name).map(String::as_str))?;
    let requested_zone = query.tz.as_deref().map(parse_time_zone).transpose()?;
    let token = jar.get(SESSION_COOKIE).ok_or(AppError::Unauthenticated)?;
    let caller = caller_from_token(&state.pool, token.value()).await?;
    let zone = requested_zone.unwrap_or_else(|| {
        zone_from_cookie(jar.get(TIME_ZONE_COOKIE).map(|c| c.value()), &caller.current.timezone).0
    });

    let window = plan_window(&query, zone, chrono::Utc::now())?;
    let spans = window.spans;
    let tallies = span_model_tallies(&state.pool, caller.org_id, &spans).await?;
    let rows = export_rows(&tallies);

    let mut writer = csv::Writer::from_writer(Vec::new());
    let write_error = |e: csv::Error| app::db::internal("write usage csv", e);
    writer
        .write_record(["bucket_start", "bucket_end", "time_zone", "model", "jobs", "completed", "failed", "gpu_ms"])
        .map_err(write_error)?;
    for row in rows {
        let span = &spans[row.bucket];
        writer
            .write_record([
                span.start.with_timezone(&zone).to_rfc3339(),
                span.end.with_timezone(&zone).to_rfc3339(),
                zone.name().to_string(),
                row.model,
                row.counts.jobs.to_string(),
                row.counts.completed.to_string(),
                row.counts.failed.to_string(),
                row.counts.gpu_ms.to_string(),
            ])
            .map_err(write_error)?;
    }
    let bytes = writer.into_inner().map_err(|e| app::db::internal("finish usage csv", e))?;
    let body = String::from_utf8(bytes).map_err(|e| app::db::internal("encode usage csv", e))?;

    let window_name = match (query.custom, query.end) {
        (Some(custom), _) => format!("{}-to-{}", custom.from, custom.to),
        (None, Some(end)) => format!("{}-to-{}", query.range.as_str(), end.as_param().replace(':', "")),
        (None, None) => query.range.as_str().to_string(),
    };
    let filename = format!("casola-usage-{}-{window_name}.csv", caller.current.slug);
    Ok((filename, body))
}
