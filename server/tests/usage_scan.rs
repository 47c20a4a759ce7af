//! The usage summary against the plain implementation: one GROUP BY query
//! per bucket over the jobs table. Random jobs, ranges, zones and clocks,
//! on SQLite and PostgreSQL.

mod common;

use app::usage::ssr::{plan_buckets, usage_summary};
use app::usage::{Counts, RangeKey};
use casola_server::database::Backend;
use casola_server::jobs::{upsert_jobs, JobRecord, JobStatus};
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{AnyPool, Row};
use std::collections::BTreeMap;

/// Zones with whole-hour, half-hour and 45-minute offsets, and with
/// daylight-saving changes in both hemispheres.
const ZONES: [Tz; 7] = [
    Tz::UTC,
    chrono_tz::America::Chicago,
    chrono_tz::Europe::Berlin,
    chrono_tz::Asia::Kathmandu,
    chrono_tz::Asia::Kolkata,
    chrono_tz::Australia::Adelaide,
    chrono_tz::America::St_Johns,
];

/// Clocks next to daylight-saving changes, and one far from any.
fn clocks() -> Vec<DateTime<Utc>> {
    [
        (2022, 11, 6, 9, 17),  // just after Chicago's fall-back
        (2024, 3, 31, 2, 44),  // just after Berlin's spring-forward
        (2024, 4, 7, 3, 5),    // Adelaide's fall-back
        (2025, 6, 10, 15, 20), // no change near
    ]
    .into_iter()
    .map(|(y, mo, d, h, mi)| Utc.with_ymd_and_hms(y, mo, d, h, mi, 31).unwrap())
    .collect()
}

const STATUSES: [JobStatus; 5] =
    [JobStatus::Queued, JobStatus::Running, JobStatus::Completed, JobStatus::Failed, JobStatus::Cancelled];

fn random_jobs(rng: &mut StdRng, now: DateTime<Utc>, count: usize) -> Vec<JobRecord> {
    let now_ms = now.timestamp_millis();
    (0..count)
        .map(|i| {
            // Nearly all jobs in the last 92 days, some on exact minute and hour
            // edges, a few after "now".
            let mut submitted = now_ms - rng.gen_range(-600_000..92 * 86_400_000);
            if i % 7 == 0 {
                submitted -= submitted.rem_euclid(3_600_000);
            } else if i % 5 == 0 {
                submitted -= submitted.rem_euclid(900_000);
            }
            let status = STATUSES[rng.gen_range(0..STATUSES.len())];
            let finished = matches!(status, JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled)
                .then(|| submitted + rng.gen_range(1_000..7_200_000));
            JobRecord {
                job_id: format!("job-{i}"),
                model: format!("model-{}", rng.gen_range(0..6)),
                status,
                submitted_at: submitted,
                started_at: Some(submitted),
                finished_at: finished,
                gpu_count: rng.gen_range(1..9),
                gpu_ms: None,
            }
        })
        .collect()
}

/// The plain implementation: for each bucket, one GROUP BY over the jobs
/// table. Returns per-bucket (completed, failed, total) and per-model counts.
async fn plain_scan(
    pool: &AnyPool,
    org_id: i64,
    range: RangeKey,
    zone: Tz,
    now: DateTime<Utc>,
) -> (Vec<(u64, u64, u64)>, BTreeMap<String, Counts>) {
    let mut buckets = Vec::new();
    let mut models: BTreeMap<String, Counts> = BTreeMap::new();
    for span in plan_buckets(range, zone, now) {
        let rows = sqlx::query(
            "SELECT model, status, COUNT(*), CAST(COALESCE(SUM(gpu_ms), 0) AS BIGINT) FROM jobs \
             WHERE org_id = $1 AND submitted_at >= $2 AND submitted_at < $3 GROUP BY model, status",
        )
        .bind(org_id)
        .bind(span.start.timestamp_millis())
        .bind(span.end.timestamp_millis())
        .fetch_all(pool)
        .await
        .unwrap();
        let (mut completed, mut failed, mut total) = (0, 0, 0);
        for row in rows {
            let model: String = row.get(0);
            let status: String = row.get(1);
            let jobs = row.get::<i64, _>(2) as u64;
            let counts = models.entry(model).or_default();
            counts.jobs += jobs;
            counts.gpu_ms += row.get::<i64, _>(3);
            total += jobs;
            match status.as_str() {
                "completed" => {
                    completed += jobs;
                    counts.completed += jobs;
                }
                "failed" => {
                    failed += jobs;
                    counts.failed += jobs;
                }
                _ => {}
            }
        }
        buckets.push((completed, failed, total));
    }
    (buckets, models)
}

async fn summary_equals_plain_scan(backend: Backend) {
    let (pool, _dir) = common::fresh_database(backend).await;
    let mut rng = StdRng::seed_from_u64(0x00ca_5017);
    let mut cases = 0;

    for (case, now) in clocks().into_iter().enumerate() {
        let slug = format!("org-{case}");
        let org_id = casola_server::accounts::create_org(&pool, &slug, "Org", "UTC").await.unwrap();
        let jobs = random_jobs(&mut rng, now, 1_500);
        upsert_jobs(&pool, org_id, &jobs).await.unwrap();

        for zone in ZONES {
            for range in RangeKey::ALL {
                let summary = usage_summary(&pool, org_id, range, zone, now).await.unwrap();
                let (plain_buckets, plain_models) = plain_scan(&pool, org_id, range, zone, now).await;

                let fast_buckets: Vec<_> = summary.buckets.iter().map(|b| (b.completed, b.failed, b.total)).collect();
                assert_eq!(fast_buckets, plain_buckets, "buckets: {range:?} in {zone} at {now}");
                let fast_models: BTreeMap<String, Counts> =
                    summary.models.iter().map(|m| (m.model.clone(), m.counts.clone())).collect();
                assert_eq!(fast_models, plain_models, "models: {range:?} in {zone} at {now}");
                if range == RangeKey::Days90 {
                    assert!(summary.totals.jobs > 1_000, "the comparison covers real data");
                }
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 4 * ZONES.len() * RangeKey::ALL.len());
}

on_both_databases!(summary_equals_plain_scan);
