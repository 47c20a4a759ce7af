//! The usage page: ranges, buckets, the summary the page draws, and the
//! server function that computes it.

pub mod chart;
#[cfg(feature = "ssr")]
pub mod cache;
#[cfg(feature = "ssr")]
pub mod counts;
mod table;
pub mod format;
mod page;
pub mod params;
#[cfg(feature = "ssr")]
pub mod ssr;
#[cfg(feature = "ssr")]
pub mod window;

pub use page::UsagePage;
pub use params::{CustomRange, RangeKey, SortDir, SortKey, UsageQuery, WindowEnd};

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The width of one chart bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Granularity {
    Minute,
    Hour,
    Day,
}

/// The origin of a summary's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZoneSource {
    /// The URL named it.
    Requested,
    /// The browser reported it in its cookie.
    Browser,
    /// Neither did, so the organization's zone was used.
    Organization,
}

/// Job counts for one chart bucket, the half-open span `[start_ms, end_ms)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Start, in milliseconds since the Unix epoch.
    pub start_ms: i64,
    /// End (exclusive), in milliseconds since the Unix epoch.
    pub end_ms: i64,
    /// Axis label in the chosen time zone, such as "14:05" or "Mar 7".
    pub label: String,
    /// The whole span in words for the tooltip, with the zone abbreviation.
    pub span_label: String,
    pub total: u64,
    pub completed: u64,
    pub failed: u64,
    /// Whether the bucket contains "now" and is still filling.
    pub partial: bool,
}

/// Job counts and GPU time for one model, or for the whole range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Every job submitted, whatever its status.
    pub jobs: u64,
    pub completed: u64,
    pub failed: u64,
    /// GPU time (GPU count × run time) in milliseconds.
    pub gpu_ms: i64,
}

impl Counts {
    /// Returns completed ÷ (completed + failed), or `None` when no job has
    /// finished either way: queued, running and cancelled jobs do not count.
    pub fn success_rate(&self) -> Option<f64> {
        let finished = self.completed + self.failed;
        (finished > 0).then(|| self.completed as f64 / finished as f64)
    }
}

/// One row of the per-model table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRow {
    pub model: String,
    pub counts: Counts,
    /// The same model's counts in the previous window.
    pub previous: Option<Counts>,
}

/// The target of the previous or next arrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WindowStep {
    /// The window already reaches now: no next window.
    Disabled,
    /// The window that ends now.
    Live,
    /// A preset range ending there.
    End(WindowEnd),
    /// A custom range.
    Custom(CustomRange),
}

/// The window a summary covers, in words, and its neighbours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowInfo {
    /// Such as "Mar 25 – Mar 31, 2024" or "Mar 31, 00:00 – 06:00 CEST".
    pub label: String,
    /// Such as "previous 7 days", for the cards' comparison.
    pub previous_label: String,
    /// Whether the window ends now (its last bucket is still filling).
    pub live: bool,
    pub previous: WindowStep,
    pub next: WindowStep,
}

impl Default for WindowInfo {
    fn default() -> Self {
        WindowInfo {
            label: String::new(),
            previous_label: String::new(),
            live: true,
            previous: WindowStep::Disabled,
            next: WindowStep::Disabled,
        }
    }
}

/// Everything the usage page shows for one range, computed from a single
/// database read so that the cards, the chart and the table always agree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageSummary {
    pub range: RangeKey,
    /// IANA name of the zone the buckets are aligned to.
    pub tz: String,
    pub zone_source: ZoneSource,
    pub granularity: Granularity,
    pub totals: Counts,
    pub buckets: Vec<Bucket>,
    /// Models in the default order: most jobs first, ties by name.
    pub models: Vec<ModelRow>,
    /// IANA name of the organization's own zone, offered as a choice.
    pub org_timezone: String,
    /// Attribution to show while the organization has imported demo data.
    pub data_credit: Option<String>,
    /// The previous window's totals, for the cards' comparison.
    pub previous_totals: Option<Counts>,
    pub window: WindowInfo,
}

/// Computes the usage summary of the caller's current organization.
///
/// Public endpoint: any member of the organization (owner, admin or member)
/// may call it. `range` is one of `1h`, `6h`, `24h`, `7d`, `30d`, `90d` or
/// `custom` (with `from` and `to` dates); `end` moves a preset range into
/// the past. `tz` is an IANA time zone name, or empty for the browser's zone
/// as its `casola_tz` cookie reports it (else the organization's). Any
/// other value is a 400 naming it.
#[server(endpoint = "usage/summary", client = crate::client::CredentialedClient)]
pub async fn get_usage_summary(
    range: String,
    tz: String,
    end: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<UsageSummary, AppError> {
    use crate::auth::ssr::require_member;
    use crate::state::AppState;

    let query = UsageQuery::from_params(|name| match name {
        "range" => Some(range.as_str()),
        "end" => end.as_deref(),
        "from" => from.as_deref(),
        "to" => to.as_deref(),
        _ => None,
    })?;
    let requested_zone = match tz.as_str() {
        "" => None,
        name => Some(ssr::parse_time_zone(name)?),
    };
    let caller = require_member().await?;
    let (zone, zone_source) = match requested_zone {
        Some(zone) => (zone, ZoneSource::Requested),
        None => ssr::browser_or_org_zone(&caller.current.timezone).await,
    };
    let now = chrono::Utc::now();
    let window = window::plan_window(&query, zone, now)?;
    let state = expect_context::<AppState>();

    let key = cache::SummaryKey::new(caller.org_id, zone, &window);
    let mut summary = state
        .usage_cache
        .get_or_compute(key, || ssr::window_summary(&state.pool, caller.org_id, &window, zone, now))
        .await?;
    // A cached summary may come from an earlier request, so the labels and
    // steps are set from this request's window.
    summary.window = window.info.clone();
    summary.org_timezone = caller.current.timezone.clone();
    summary.zone_source = zone_source;
    Ok(summary)
}
