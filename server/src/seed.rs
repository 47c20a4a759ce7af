//! The demo organization: three sign-ins and 15,000 real jobs from the
//! Microsoft Philly GPU trace, imported through `jobs::upsert_jobs`.

use anyhow::{bail, Context};
use app::auth::Role;
use chrono::{DateTime, Utc};
use sqlx::AnyPool;

use crate::accounts::{add_member, create_org, create_user};
use crate::jobs::{upsert_jobs, JobRecord, JobStatus};

/// Password of every demo account. Created only by `casola seed-demo`.
pub const DEMO_PASSWORD: &str = "casola-demo";
/// The demo accounts and their roles in the demo organization.
pub const DEMO_USERS: [(&str, &str, Role); 3] = [
    ("owner@example.com", "Olivia Owner", Role::Owner),
    ("admin@example.com", "Adam Admin", Role::Admin),
    ("member@example.com", "Mia Member", Role::Member),
];

/// The trace, shipped with the source (CC BY 4.0, see NOTICE).
const PHILLY_TRACE: &str = include_str!("../../traces/philly-15k/philly_data_training.csv");

/// Attribution the trace's license asks for wherever the data appears.
pub const PHILLY_CREDIT: &str = "Job data: Microsoft Philly trace (Jeon et al., USENIX ATC '19), \
CC BY 4.0; 15,000-job cut via DIR-LAB/Gen-Parallel-Workloads (Soundar Raj et al., JSSPP 2024). \
Dates are shifted so the last job was submitted a few minutes ago.";

/// The outcome of `seed_demo`.
#[derive(Debug, PartialEq, Eq)]
pub enum SeedOutcome {
    Seeded { jobs: usize },
    /// The database already had organizations; nothing was changed.
    SkippedNotEmpty,
}

/// Seeds the demo organization `demo` when the database has no
/// organization yet, with "now" as the end of the shifted trace.
pub async fn seed_demo(pool: &AnyPool, now: DateTime<Utc>) -> anyhow::Result<SeedOutcome> {
    let organizations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM organizations")
        .fetch_one(pool)
        .await?;
    if organizations > 0 {
        return Ok(SeedOutcome::SkippedNotEmpty);
    }

    let org_id = create_org(pool, "demo", "Demo GPU Lab", "America/New_York").await?;
    create_org(pool, "empty", "Empty Research Lab", "Europe/Berlin").await?;
    for (email, name, role) in DEMO_USERS {
        create_user(pool, email, name, DEMO_PASSWORD).await?;
        add_member(pool, "demo", email, role).await?;
    }
    // The owner also belongs to an organization without jobs, so the
    // switcher and the empty state can be seen.
    add_member(pool, "empty", "owner@example.com", Role::Owner).await?;

    let records = philly_records(PHILLY_TRACE, now)?;
    upsert_jobs(pool, org_id, &records).await.context("importing the Philly trace")?;
    sqlx::query("UPDATE organizations SET data_credit = $1 WHERE id = $2")
        .bind(PHILLY_CREDIT)
        .bind(org_id)
        .execute(pool)
        .await?;

    Ok(SeedOutcome::Seeded { jobs: records.len() })
}

/// Converts the trace CSV into job records, shifted so that the last job
/// was submitted five minutes before `now`.
///
/// Columns used: `u_id` (job id), `user` (model label `philly-user-N`: the
/// trace has no model names, and none is invented), `gpu_num`, `interval`
/// (seconds since the previous submission), `run_time` (seconds) and
/// `new_status` (`Pass`, `Failed`, `Killed`). A job still running at `now`
/// is stored as running, without finish time or GPU time.
pub fn philly_records(csv_text: &str, now: DateTime<Utc>) -> anyhow::Result<Vec<JobRecord>> {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("the trace has no column \"{name}\""))
    };
    let (id_col, user_col, gpu_col) = (column("u_id")?, column("user")?, column("gpu_num")?);
    let (interval_col, run_col, status_col) =
        (column("interval")?, column("run_time")?, column("new_status")?);

    let mut rows = Vec::new();
    let mut offset_s: i64 = 0;
    for (line, row) in reader.records().enumerate() {
        let row = row?;
        let number = |col: usize| -> anyhow::Result<i64> {
            row[col]
                .parse::<i64>()
                .with_context(|| format!("line {}: \"{}\" is not a whole number", line + 2, &row[col]))
        };
        offset_s += number(interval_col)?;
        let status = match &row[status_col] {
            "Pass" => JobStatus::Completed,
            "Failed" => JobStatus::Failed,
            "Killed" => JobStatus::Cancelled,
            other => bail!("line {}: unknown status \"{other}\"", line + 2),
        };
        rows.push((row[id_col].to_string(), row[user_col].to_string(), number(gpu_col)?, offset_s, number(run_col)?, status));
    }

    let last_offset_s = rows.last().map(|r| r.3).unwrap_or(0);
    let anchor_ms = now.timestamp_millis() - 5 * 60_000 - last_offset_s * 1_000;
    let now_ms = now.timestamp_millis();

    Ok(rows
        .into_iter()
        .map(|(id, user, gpus, offset_s, run_s, status)| {
            let submitted = anchor_ms + offset_s * 1_000;
            let finished = submitted + run_s * 1_000;
            let still_running = finished > now_ms;
            JobRecord {
                job_id: format!("philly-{id}"),
                model: format!("philly-user-{user}"),
                status: if still_running { JobStatus::Running } else { status },
                submitted_at: submitted,
                started_at: Some(submitted),
                finished_at: (!still_running).then_some(finished),
                gpu_count: gpus,
                gpu_ms: None,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_has_fifteen_thousand_jobs_ending_before_now() {
        let now = Utc::now();
        let records = philly_records(PHILLY_TRACE, now).unwrap();
        assert_eq!(records.len(), 15_000);
        let last = records.iter().map(|r| r.submitted_at).max().unwrap();
        assert_eq!(last, now.timestamp_millis() - 5 * 60_000);
    }

    #[test]
    fn trace_statuses_map_and_running_jobs_have_no_finish() {
        let records = philly_records(PHILLY_TRACE, Utc::now()).unwrap();
        let count = |s: JobStatus| records.iter().filter(|r| r.status == s).count();
        assert_eq!(count(JobStatus::Completed) + count(JobStatus::Failed) + count(JobStatus::Cancelled) + count(JobStatus::Running), 15_000);
        assert!(count(JobStatus::Running) > 0, "the last jobs of the trace run past now");
        assert!(count(JobStatus::Completed) <= 8_538);
        for record in records.iter().filter(|r| r.status == JobStatus::Running) {
            assert_eq!(record.finished_at, None);
            assert_eq!(record.effective_gpu_ms(), None);
        }
    }

    #[test]
    fn trace_gpu_time_is_gpus_times_run_time() {
        let csv = "u_id,user,gpu_num,cpu_num,node_num,interval,run_time,wall_time,new_status\n\
                   0,7,8,0,1,0,10,0,Pass\n";
        let now = Utc::now();
        let records = philly_records(csv, now).unwrap();
        assert_eq!(records[0].model, "philly-user-7");
        assert_eq!(records[0].job_id, "philly-0");
        assert_eq!(records[0].effective_gpu_ms(), Some(80_000));
    }

    #[test]
    fn trace_with_bad_status_names_line() {
        let csv = "u_id,user,gpu_num,cpu_num,node_num,interval,run_time,wall_time,new_status\n\
                   0,7,8,0,1,0,10,0,Lost\n";
        let error = philly_records(csv, Utc::now()).unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
        assert!(error.contains("\"Lost\""), "{error}");
    }
}
