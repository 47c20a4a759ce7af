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

/// Later reports of a third of `jobs`, in batches that mix new and known
/// jobs: a later status, sometimes with another model and submission
/// time; a repeat; or an earlier status, which changes nothing.
fn later_reports(rng: &mut StdRng, jobs: &[JobRecord]) -> Vec<JobRecord> {
    let mut reports = Vec::new();
    for job in jobs {
        if !rng.gen_ratio(1, 3) {
            continue;
        }
        let mut report = job.clone();
        match rng.gen_range(0..4) {
            0 => {}
            1 => report.status = JobStatus::Queued,
            _ => {
                if job.status == JobStatus::Queued || job.status == JobStatus::Running {
                    report.status = [JobStatus::Completed, JobStatus::Failed][rng.gen_range(0..2)];
                    report.finished_at = Some(job.submitted_at + rng.gen_range(1_000..3_600_000));
                }
                if rng.gen_ratio(1, 2) {
                    report.model = format!("model-{}", rng.gen_range(0..6));
                    report.submitted_at -= rng.gen_range(0..3 * 3_600_000);
                    report.started_at = Some(report.submitted_at);
                }
            }
        }
        reports.push(report);
    }
    reports
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
        // Later reports of some of the jobs move them between counts.
        let updates = later_reports(&mut rng, &jobs);
        upsert_jobs(&pool, org_id, &updates).await.unwrap();

        for zone in ZONES {
            for range in RangeKey::ALL {
                let summary = usage_summary(&pool, org_id, range, zone, now).await.unwrap();
                let (plain_buckets, plain_models) = plain_scan(&pool, org_id, range, zone, now).await;

                let fast_buckets: Vec<_> = summary.buckets.iter().map(|b| (b.completed, b.failed, b.total)).collect();
                assert_eq!(fast_buckets, plain_buckets, "buckets: {range:?} in {zone} at {now}");
                let fast_models: BTreeMap<String, Counts> =
                    summary.models.iter().map(|m| (m.model.clone(), m.counts.clone())).collect();
                assert_eq!(fast_models, plain_models, "models: {range:?} in {zone} at {now}");
                let plain_totals = plain_models.values().fold(Counts::default(), |sum, c| Counts {
                    jobs: sum.jobs + c.jobs,
                    completed: sum.completed + c.completed,
                    failed: sum.failed + c.failed,
                    gpu_ms: sum.gpu_ms + c.gpu_ms,
                });
                assert_eq!(summary.totals, plain_totals, "cards: {range:?} in {zone} at {now}");
                if range == RangeKey::Days90 {
                    assert!(summary.totals.jobs > 1_000, "the comparison covers real data");
                }
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 4 * ZONES.len() * RangeKey::ALL.len());
    assert_counts_match_jobs(&pool, backend).await;
}


/// Reads the counts tables' rows that have jobs, in key order.
async fn stored_counts(pool: &AnyPool) -> Vec<(i64, i64, i64, String, String, i64, i64)> {
    let by_model = sqlx::query(
        "SELECT org_id, period_ms, start_ms, model, status, jobs, gpu_ms FROM job_counts_by_model \
         WHERE jobs <> 0 ORDER BY org_id, period_ms, start_ms, model, status",
    );
    let by_status = sqlx::query(
        "SELECT org_id, period_ms, start_ms, '' AS model, status, jobs, gpu_ms FROM job_counts \
         WHERE jobs <> 0 ORDER BY org_id, period_ms, start_ms, status",
    );
    let mut rows = Vec::new();
    for query in [by_model, by_status] {
        for row in query.fetch_all(pool).await.unwrap() {
            rows.push((row.get(0), row.get(1), row.get(2), row.get(3), row.get(4), row.get(5), row.get(6)));
        }
    }
    rows
}

/// Checks the counts against the ones the migration computes from the jobs
/// table: it deletes them and runs the migration's backfill statements.
async fn assert_counts_match_jobs(pool: &AnyPool, backend: Backend) {
    let kept = stored_counts(pool).await;
    let migration = match backend {
        Backend::Sqlite => include_str!("../migrations/sqlite/20261206000001_job_counts.sql"),
        Backend::Postgres => include_str!("../migrations/postgres/20261206000001_job_counts.sql"),
    };
    let (_, backfill) = migration.split_once("-- Counts for the jobs stored before this migration.").unwrap();
    sqlx::raw_sql("DELETE FROM job_counts_by_model; DELETE FROM job_counts;").execute(pool).await.unwrap();
    sqlx::raw_sql(backfill).execute(pool).await.unwrap();
    let recounted = stored_counts(pool).await;
    assert!(recounted.len() > 100, "the check covers real data");
    assert_eq!(kept, recounted);
}

/// Batches written at the same time, with job ids in common, keep the
/// counts exact and never fail on a lock.
async fn concurrent_batches_keep_counts_exact(backend: Backend) {
    let (pool, _dir) = common::fresh_database(backend).await;
    let org_id = casola_server::accounts::create_org(&pool, "busy", "Busy", "UTC").await.unwrap();
    let now = Utc.with_ymd_and_hms(2025, 6, 10, 15, 20, 0).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let jobs = random_jobs(&mut rng, now, 2_000);

    let mut tasks = Vec::new();
    for writer in 0..8 {
        // Each writer sends an overlapping half of the jobs, then later
        // reports of them, in batches of 250.
        let mut rng = StdRng::seed_from_u64(writer);
        let mine: Vec<JobRecord> = jobs.iter().filter(|_| rng.gen_ratio(1, 2)).cloned().collect();
        let updates = later_reports(&mut rng, &mine);
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for batch in mine.chunks(250).chain(updates.chunks(250)) {
                upsert_jobs(&pool, org_id, batch).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_counts_match_jobs(&pool, backend).await;
}

on_both_databases!(summary_equals_plain_scan, concurrent_batches_keep_counts_exact);

/// PostgreSQL costs the usage reads' per-piece index scans as if each read
/// a large part of the table, high enough to compile them with JIT, which
/// took longer than the reads themselves. Every pooled connection has it off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_run_without_jit() {
    let (pool, _dir) = common::fresh_database(Backend::Postgres).await;
    let mut connections = Vec::new();
    for _ in 0..3 {
        let mut connection = pool.acquire().await.unwrap();
        let jit: String = sqlx::query_scalar("SELECT current_setting('jit')").fetch_one(&mut *connection).await.unwrap();
        assert_eq!(jit, "off");
        connections.push(connection);
    }
}

/// Checks that every statement of a usage read on PostgreSQL reads one
/// snapshot and is planned for its own pieces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_usage_read_settings() {
    let (pool, _dir) = common::fresh_database(Backend::Postgres).await;
    let mut tx = pool.begin().await.unwrap();
    app::usage::counts::begin_snapshot(&mut tx).await.unwrap();
    let setting = |name: &'static str| sqlx::query_scalar::<_, String>("SELECT current_setting($1)").bind(name);
    assert_eq!(setting("transaction_isolation").fetch_one(&mut *tx).await.unwrap(), "repeatable read");
    assert_eq!(setting("transaction_read_only").fetch_one(&mut *tx).await.unwrap(), "on");
    assert_eq!(setting("plan_cache_mode").fetch_one(&mut *tx).await.unwrap(), "force_custom_plan");
    tx.commit().await.unwrap();
}
