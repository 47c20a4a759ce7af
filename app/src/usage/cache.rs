//! A short-lived cache of usage summaries.
//!
//! Many people of one organization tend to look at the same few ranges at
//! once, and a dashboard left open refreshes them. A summary computed for
//! one of them serves the others for up to `max_age` (one second by
//! default), so the database computes each window at most about once a
//! second, however many requests ask for it.
//!
//! Freshness:
//! - Jobs stored through this server drop the organization's summaries at
//!   once (`forget_org`), so the page shows them on the next read.
//! - Jobs stored through another server, or by `casola import-trace`,
//!   show within `max_age`.
//!
//! Requests that miss at the same moment each compute the summary. None
//! waits on another's read, because a read whose request was dropped half
//! way may never finish. Errors are not cached.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono_tz::Tz;

use super::params::RangeKey;
use super::ssr::whole_interval;
use super::window::PlannedWindow;
use super::UsageSummary;
use crate::error::AppError;

/// What a summary depends on besides the stored jobs: the organization,
/// the zone, the range, and the edges of the window and of the one before
/// it. `now` matters only through these edges, which are bucket edges.
/// The window's labels and steps are not cached (see `get_usage_summary`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SummaryKey {
    org_id: i64,
    zone: String,
    range: RangeKey,
    buckets: usize,
    window_ms: Option<(i64, i64)>,
    previous_ms: Option<(i64, i64)>,
}

impl SummaryKey {
    pub fn new(org_id: i64, zone: Tz, window: &PlannedWindow) -> SummaryKey {
        SummaryKey {
            org_id,
            zone: zone.name().to_string(),
            range: window.range,
            buckets: window.spans.len(),
            window_ms: whole_interval(&window.spans),
            previous_ms: whole_interval(&window.previous),
        }
    }
}

/// Windows kept before old ones are dropped. A 90-day summary of 50
/// models is under 32 KB as JSON (`largest_summary_is_small` checks this),
/// so a full cache takes some tens of megabytes.
const MAX_WINDOWS: usize = 1024;

pub struct SummaryCache {
    max_age: Duration,
    windows: Mutex<HashMap<SummaryKey, Cached>>,
    /// Counters bumped by `forget_org`. A summary computed under an older
    /// generation of its organization is not served.
    generations: Mutex<HashMap<i64, u64>>,
}

struct Cached {
    computed_at: Instant,
    generation: u64,
    summary: UsageSummary,
}

impl SummaryCache {
    /// Creates a cache whose summaries serve for `max_age`. Zero turns it off.
    pub fn new(max_age: Duration) -> SummaryCache {
        SummaryCache { max_age, windows: Mutex::default(), generations: Mutex::default() }
    }

    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// Returns the summary of `key`, from the cache when one was computed
    /// less than `max_age` ago and the organization stored no jobs since,
    /// else from `compute`.
    pub async fn get_or_compute<F, Fut>(&self, key: SummaryKey, compute: F) -> Result<UsageSummary, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<UsageSummary, AppError>>,
    {
        if self.max_age.is_zero() {
            return compute().await;
        }
        let generation = self.generation(key.org_id);
        if let Some(hit) = self.lock_windows().get(&key) {
            if hit.generation == generation && hit.computed_at.elapsed() < self.max_age {
                return Ok(hit.summary.clone());
            }
        }
        // Taken before the read starts, so the age covers the whole read.
        // A summary read while the organization stored jobs keeps the older
        // generation and is not served.
        let computed_at = Instant::now();
        let summary = compute().await?;
        self.store(key, Cached { computed_at, generation, summary: summary.clone() });
        Ok(summary)
    }

    /// Drops the summaries of `org_id`: call it after storing its jobs.
    pub fn forget_org(&self, org_id: i64) {
        let mut generations = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        *generations.entry(org_id).or_default() += 1;
    }

    fn generation(&self, org_id: i64) -> u64 {
        let generations = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        generations.get(&org_id).copied().unwrap_or_default()
    }

    fn lock_windows(&self) -> std::sync::MutexGuard<'_, HashMap<SummaryKey, Cached>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn store(&self, key: SummaryKey, cached: Cached) {
        let mut windows = self.lock_windows();
        if !windows.contains_key(&key) && windows.len() >= MAX_WINDOWS {
            let max_age = self.max_age;
            windows.retain(|_, c| c.computed_at.elapsed() < max_age);
        }
        match windows.get(&key) {
            // A request that started later already stored its summary.
            Some(newer) if newer.computed_at > cached.computed_at => {}
            _ => {
                windows.insert(key, cached);
            }
        }
    }

    #[cfg(test)]
    fn windows(&self) -> usize {
        self.lock_windows().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(org_id: i64, range: &str) -> SummaryKey {
        let range = RangeKey::parse(range).unwrap();
        SummaryKey { org_id, zone: "UTC".into(), range, buckets: 60, window_ms: Some((0, 3_600_000)), previous_ms: None }
    }

    /// Returns a summary whose job total is the number of this call.
    async fn compute(calls: &AtomicUsize) -> Result<UsageSummary, AppError> {
        let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
        let mut summary = crate::usage::ssr::summarize(RangeKey::Hour1, chrono_tz::UTC, chrono::Utc::now(), &[], &[], &[]);
        summary.totals.jobs = call as u64;
        Ok(summary)
    }

    #[tokio::test]
    async fn cache_expires_after_max_age() {
        let cache = SummaryCache::new(Duration::from_millis(200));
        let calls = AtomicUsize::new(0);
        let first = cache.get_or_compute(key(1, "1h"), || compute(&calls)).await.unwrap();
        let second = cache.get_or_compute(key(1, "1h"), || compute(&calls)).await.unwrap();
        assert_eq!(first.totals.jobs, 1);
        assert_eq!(second.totals.jobs, 1, "served from the cache");

        tokio::time::sleep(Duration::from_millis(250)).await;
        let third = cache.get_or_compute(key(1, "1h"), || compute(&calls)).await.unwrap();
        assert_eq!(third.totals.jobs, 2);
    }

    #[tokio::test]
    async fn forget_org_drops_only_that_org() {
        let cache = SummaryCache::new(Duration::from_secs(60));
        let calls = AtomicUsize::new(0);
        cache.get_or_compute(key(1, "1h"), || compute(&calls)).await.unwrap();
        cache.get_or_compute(key(2, "1h"), || compute(&calls)).await.unwrap();
        cache.forget_org(1);
        let forgotten = cache.get_or_compute(key(1, "1h"), || compute(&calls)).await.unwrap();
        let other = cache.get_or_compute(key(2, "1h"), || compute(&calls)).await.unwrap();
        assert_eq!(forgotten.totals.jobs, 3, "recomputed after forget_org");
        assert_eq!(other.totals.jobs, 2, "another organization's summary stays");
    }

    #[tokio::test]
    async fn cache_keeps_windows_apart() {
        let cache = SummaryCache::new(Duration::from_secs(60));
        let calls = AtomicUsize::new(0);
        let hour = cache.get_or_compute(key(1, "1h"), || compute(&calls)).await.unwrap();
        let mut later = key(1, "1h");
        later.window_ms = Some((60_000, 3_660_000));
        let next = cache.get_or_compute(later, || compute(&calls)).await.unwrap();
        assert_eq!(hour.totals.jobs, 1);
        assert_eq!(next.totals.jobs, 2, "a later window is computed apart");
    }

    #[tokio::test]
    async fn cache_off_at_zero_max_age() {
        let cache = SummaryCache::new(Duration::ZERO);
        let calls = AtomicUsize::new(0);
        for _ in 0..3 {
            cache.get_or_compute(key(1, "1h"), || compute(&calls)).await.unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(cache.windows(), 0);
    }

    #[tokio::test]
    async fn cache_skips_errors() {
        let cache = SummaryCache::new(Duration::from_secs(60));
        let calls = AtomicUsize::new(0);
        let failed = cache
            .get_or_compute(key(1, "1h"), || async { Err(AppError::Unavailable("down".into())) })
            .await;
        assert!(failed.is_err());
        let summary = cache.get_or_compute(key(1, "1h"), || compute(&calls)).await.unwrap();
        assert_eq!(summary.totals.jobs, 1);
    }

    #[tokio::test]
    async fn cache_skips_read_during_store() {
        let cache = SummaryCache::new(Duration::from_secs(60));
        let calls = AtomicUsize::new(0);
        cache
            .get_or_compute(key(1, "1h"), || async {
                cache.forget_org(1);
                compute(&calls).await
            })
            .await
            .unwrap();
        let summary = cache.get_or_compute(key(1, "1h"), || compute(&calls)).await.unwrap();
        assert_eq!(summary.totals.jobs, 2);
    }

    /// The largest summary a preset range gives: 90 daily buckets and 50
    /// models, each with jobs of three statuses.
    #[test]
    fn largest_summary_is_small() {
        use crate::usage::counts::Tally;

        let now = chrono::Utc::now();
        let query = crate::usage::UsageQuery { range: RangeKey::Days90, ..Default::default() };
        let window = crate::usage::window::plan_window(&query, chrono_tz::Asia::Kathmandu, now).unwrap();
        let tally = |interval: usize, model: Option<String>, status: &str| Tally {
            interval,
            model,
            status: status.to_string(),
            jobs: 123_456,
            gpu_ms: 987_654_321_000,
        };
        let statuses = ["completed", "failed", "cancelled"];
        let buckets: Vec<Tally> =
            (0..window.spans.len()).flat_map(|i| statuses.map(|status| tally(i, None, status))).collect();
        let models: Vec<Tally> = (0..50)
            .flat_map(|m| statuses.map(|status| tally(0, Some(format!("meta-llama/Llama-3.1-70B-Instruct-{m:02}")), status)))
            .collect();
        let summary = crate::usage::ssr::summarize(
            RangeKey::Days90,
            chrono_tz::Asia::Kathmandu,
            now,
            &window.spans,
            &buckets,
            &models,
        );
        assert_eq!(summary.buckets.len(), 90);
        assert_eq!(summary.models.len(), 50);
        let size = serde_json::to_vec(&summary).unwrap().len();
        assert!(size < 32 * 1024, "a 90-day summary of 50 models takes {size} bytes as JSON");
    }

    #[tokio::test]
    async fn cache_drops_old_windows_when_full() {
        let cache = SummaryCache::new(Duration::from_millis(50));
        let calls = AtomicUsize::new(0);
        for org in 0..MAX_WINDOWS as i64 {
            cache.get_or_compute(key(org, "1h"), || compute(&calls)).await.unwrap();
        }
        assert_eq!(cache.windows(), MAX_WINDOWS);
        tokio::time::sleep(Duration::from_millis(60)).await;
        cache.get_or_compute(key(-1, "1h"), || compute(&calls)).await.unwrap();
        assert_eq!(cache.windows(), 1);
    }
}
