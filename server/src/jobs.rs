//! Storing job records: the one write path for jobs, shared by the demo
//! import and the ingestion API.

use app::db::now_ms;
use sqlx::AnyPool;

pub use casola_parsers::job_batch::{JobRecord, JobStatus};

/// Rows per INSERT statement: 8 parameters each keeps a statement well under
/// SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
const ROWS_PER_STATEMENT: usize = 1_000;

/// Ranks statuses in the order they may move, for the upsert's guard; the
/// SQL twin of `JobStatus::rank`.
const STATUS_RANK_SQL: &str = "CASE {} WHEN 'queued' THEN 0 WHEN 'running' THEN 1 ELSE 2 END";

/// Keeps one record per job id: the one furthest along, and of those the
/// last. One INSERT may not touch a row twice, and a batch can carry a
/// job's queued and running reports together.
fn latest_per_job(records: &[JobRecord]) -> Vec<&JobRecord> {
    let mut chosen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, record) in records.iter().enumerate() {
        chosen
            .entry(record.job_id.as_str())
            .and_modify(|kept| {
                if record.status.rank() >= records[*kept].status.rank() {
                    *kept = i;
                }
            })
            .or_insert(i);
    }
    let mut indexes: Vec<usize> = chosen.into_values().collect();
    indexes.sort_unstable();
    indexes.into_iter().map(|i| &records[i]).collect()
}

/// Inserts or updates `records` of `org_id` in one transaction, so either
/// the whole batch is stored or none of it. An update applies only when it
/// moves the status forward, so a repeated record changes nothing.
pub async fn upsert_jobs(pool: &AnyPool, org_id: i64, records: &[JobRecord]) -> Result<(), sqlx::Error> {
    let records = latest_per_job(records);
    let mut tx = pool.begin().await?;
    let now = now_ms();

    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from(
            "INSERT INTO jobs (org_id, job_id, model, status, submitted_at, started_at, \
             finished_at, gpu_count, gpu_ms, updated_at) VALUES ",
        );
        for i in 0..chunk.len() {
            let p = i * 8;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "($1, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, $2)",
                p + 3,
                p + 4,
                p + 5,
                p + 6,
                p + 7,
                p + 8,
                p + 9,
                p + 10,
            ));
        }
        sql.push_str(&format!(
            " ON CONFLICT (org_id, job_id) DO UPDATE SET \
               model = excluded.model, status = excluded.status, \
               submitted_at = excluded.submitted_at, started_at = excluded.started_at, \
               finished_at = excluded.finished_at, gpu_count = excluded.gpu_count, \
               gpu_ms = excluded.gpu_ms, updated_at = excluded.updated_at \
             WHERE {} > {}",
            STATUS_RANK_SQL.replace("{}", "excluded.status"),
            STATUS_RANK_SQL.replace("{}", "jobs.status"),
        ));

        let mut query = sqlx::query(&sql).bind(org_id).bind(now);
        for record in chunk {
            query = query
                .bind(record.job_id.as_str())
                .bind(record.model.as_str())
                .bind(record.status.as_str())
                .bind(record.submitted_at)
                .bind(record.started_at)
                .bind(record.finished_at)
                .bind(record.gpu_count)
                .bind(record.effective_gpu_ms());
        }
        query.execute(&mut *tx).await?;
    }

    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(id: &str, status: JobStatus) -> JobRecord {
        JobRecord {
            job_id: id.to_string(),
            model: "m".to_string(),
            status,
            submitted_at: 0,
            started_at: None,
            finished_at: None,
            gpu_count: 1,
            gpu_ms: None,
        }
    }

    #[test]
    fn latest_per_job_keeps_furthest_status() {
        let batch = [
            report("a", JobStatus::Running),
            report("b", JobStatus::Queued),
            report("a", JobStatus::Queued),
            report("a", JobStatus::Completed),
            report("b", JobStatus::Queued),
        ];
        let kept: Vec<(&str, JobStatus)> =
            latest_per_job(&batch).into_iter().map(|r| (r.job_id.as_str(), r.status)).collect();
        assert_eq!(kept, [("a", JobStatus::Completed), ("b", JobStatus::Queued)]);
    }
}
