//! Storing job records: the one write path for jobs, shared by the demo
//! import and the ingestion API.

use std::collections::{BTreeMap, HashMap, HashSet};

use app::db::{now_ms, Placeholders};
use app::usage::counts::{period_start, MODEL_PERIODS, STATUS_PERIODS};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, Row};

pub use casola_parsers::job_batch::{JobRecord, JobStatus};

use crate::database::Backend;

/// Rows per INSERT statement: at most 10 parameters each keeps a statement
/// under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
const ROWS_PER_STATEMENT: usize = 1_000;

/// Ranks statuses in the order they may move, for the upsert's guard; the
/// SQL twin of `JobStatus::rank`.
const STATUS_RANK_SQL: &str = "CASE {} WHEN 'queued' THEN 0 WHEN 'running' THEN 1 ELSE 2 END";

/// Keeps one record per job id: the one furthest along, and of those the
/// last. One INSERT may not touch a row twice, and a batch can carry a
/// job's queued and running reports together.
fn latest_per_job(records: &[JobRecord]) -> Vec<&JobRecord> {
    let mut chosen: HashMap<&str, usize> = HashMap::new();
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

/// Batches of this process take turns to write to SQLite, which allows one
/// writer at a time. Without the turns, a batch that finds the database
/// locked sleeps in SQLite's busy handler, for up to 100 ms at a time, while
/// the database may already be free again.
static SQLITE_WRITER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Inserts or updates `records` of `org_id` in one transaction, so either
/// the whole batch is stored or none of it, together with the job counts
/// the usage page reads (see `app::usage::counts`). An update applies only
/// when it moves the status forward, so a repeated record changes nothing.
pub async fn upsert_jobs(pool: &AnyPool, org_id: i64, records: &[JobRecord]) -> Result<(), sqlx::Error> {
    let mut records = latest_per_job(records);
    // Concurrent batches lock shared rows in one order, so neither waits
    // on the other in a cycle.
    records.sort_unstable_by(|a, b| a.job_id.cmp(&b.job_id));
    let sqlite = Backend::of_url(pool.connect_options().database_url.as_str()) == Backend::Sqlite;
    let _turn = if sqlite { Some(SQLITE_WRITER.lock().await) } else { None };
    // On SQLite the transaction takes the write lock at once, so no other
    // writer can store a job between this batch's read and its insert.
    let mut tx = if sqlite { pool.begin_with("BEGIN IMMEDIATE").await? } else { pool.begin().await? };
    let now = now_ms();
    let mut changes = CountChanges::default();

    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        let (inserted, stored) = if sqlite {
            insert_new_sqlite(&mut tx, org_id, now, chunk).await?
        } else {
            insert_new_postgres(&mut tx, org_id, now, chunk).await?
        };
        for record in chunk.iter().filter(|r| inserted.contains(r.job_id.as_str())) {
            changes.add(record.submitted_at, &record.model, record.status.as_str(), record.effective_gpu_ms(), 1);
        }

        let forward: Vec<&JobRecord> = chunk
            .iter()
            .copied()
            .filter(|record| {
                let Some(old) = stored.get(record.job_id.as_str()) else {
                    return false;
                };
                if record.status.rank() <= old.status.rank() {
                    return false;
                }
                changes.add(old.submitted_at, &old.model, old.status.as_str(), old.gpu_ms, -1);
                changes.add(record.submitted_at, &record.model, record.status.as_str(), record.effective_gpu_ms(), 1);
                true
            })
            .collect();
        if !forward.is_empty() {
            let update = format!(
                "DO UPDATE SET \
                   model = excluded.model, status = excluded.status, \
                   submitted_at = excluded.submitted_at, started_at = excluded.started_at, \
                   finished_at = excluded.finished_at, gpu_count = excluded.gpu_count, \
                   gpu_ms = excluded.gpu_ms, updated_at = excluded.updated_at \
                 WHERE {} > {}",
                STATUS_RANK_SQL.replace("{}", "excluded.status"),
                STATUS_RANK_SQL.replace("{}", "jobs.status"),
            );
            let sql = insert_sql(&tx, forward.len(), &update);
            bind_records(sqlx::query(&sql), org_id, now, &forward).execute(&mut *tx).await?;
        }
    }

    changes.apply(&mut tx, org_id).await?;
    tx.commit().await
}

/// The job ids a chunk inserted, and the stored jobs among the rest.
type Inserted<'a> = (HashSet<&'a str>, HashMap<String, StoredJob>);

/// Inserts the chunk's new jobs on SQLite, inside a transaction that holds
/// the write lock: reads the stored jobs first, then inserts the others.
/// Only jobs already stored come back as rows, so a batch of new jobs
/// returns none. The SQLite driver passes each row from its worker thread
/// separately: 40 batches of 1,000 new jobs, sent one after another, took
/// 0.68 s this way and 0.84 s with `RETURNING`.
async fn insert_new_sqlite<'a>(
    tx: &mut AnyConnection,
    org_id: i64,
    now: i64,
    chunk: &[&'a JobRecord],
) -> Result<Inserted<'a>, sqlx::Error> {
    let stored = stored_jobs(tx, org_id, chunk).await?;
    let new: Vec<&JobRecord> = chunk.iter().copied().filter(|r| !stored.contains_key(&r.job_id)).collect();
    if !new.is_empty() {
        let sql = insert_sql(tx, new.len(), "DO NOTHING");
        bind_records(sqlx::query(&sql), org_id, now, &new).execute(&mut *tx).await?;
    }
    Ok((new.iter().map(|r| r.job_id.as_str()).collect(), stored))
}

/// Inserts the chunk's new jobs on PostgreSQL, where another transaction
/// may insert the same jobs at the same moment: the insert comes first and
/// returns the ids it stored, then the other jobs are read and locked.
async fn insert_new_postgres<'a>(
    tx: &mut AnyConnection,
    org_id: i64,
    now: i64,
    chunk: &[&'a JobRecord],
) -> Result<Inserted<'a>, sqlx::Error> {
    let sql = insert_sql(tx, chunk.len(), "DO NOTHING RETURNING job_id");
    let returned: HashSet<String> = bind_records(sqlx::query(&sql), org_id, now, chunk)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get("job_id"))
        .collect::<Result<_, _>>()?;
    let inserted: HashSet<&str> =
        chunk.iter().map(|r| r.job_id.as_str()).filter(|id| returned.contains(*id)).collect();
    let known: Vec<&JobRecord> = chunk.iter().copied().filter(|r| !inserted.contains(r.job_id.as_str())).collect();
    let stored = if known.is_empty() { HashMap::new() } else { stored_jobs(tx, org_id, &known).await? };
    Ok((inserted, stored))
}

/// Returns `INSERT INTO jobs ... ON CONFLICT (org_id, job_id) {on_conflict}`
/// for `rows` jobs, bound by `bind_records`.
fn insert_sql(conn: &AnyConnection, rows: usize, on_conflict: &str) -> String {
    let mut params = Placeholders::for_connection(conn);
    let tuples: Vec<String> = (0..rows).map(|_| params.tuple(10)).collect();
    format!(
        "INSERT INTO jobs (org_id, job_id, model, status, submitted_at, started_at, \
         finished_at, gpu_count, gpu_ms, updated_at) VALUES {} ON CONFLICT (org_id, job_id) {on_conflict}",
        tuples.join(", ")
    )
}

fn bind_records<'q>(
    mut query: Query<'q, Any, AnyArguments<'q>>,
    org_id: i64,
    now: i64,
    records: &'q [&'q JobRecord],
) -> Query<'q, Any, AnyArguments<'q>> {
    for record in records {
        query = query
            .bind(org_id)
            .bind(record.job_id.as_str())
            .bind(record.model.as_str())
            .bind(record.status.as_str())
            .bind(record.submitted_at)
            .bind(record.started_at)
            .bind(record.finished_at)
            .bind(record.gpu_count)
            .bind(record.effective_gpu_ms())
            .bind(now);
    }
    query
}

/// The stored fields of a job that its counts depend on.
struct StoredJob {
    model: String,
    status: JobStatus,
    submitted_at: i64,
    gpu_ms: Option<i64>,
}

/// Reads the stored jobs among `records`, locking their rows on PostgreSQL
/// until the transaction ends (SQLite's write lock already covers them).
async fn stored_jobs(
    conn: &mut AnyConnection,
    org_id: i64,
    records: &[&JobRecord],
) -> Result<HashMap<String, StoredJob>, sqlx::Error> {
    let mut params = Placeholders::for_connection(conn);
    let org = params.next();
    let ids = params.tuple(records.len());
    let lock = if conn.backend_name() == "PostgreSQL" { " ORDER BY job_id FOR UPDATE" } else { "" };
    let sql = format!(
        "SELECT job_id, model, status, submitted_at, gpu_ms FROM jobs \
         WHERE org_id = {org} AND job_id IN {ids}{lock}"
    );
    let mut query = sqlx::query(&sql).bind(org_id);
    for record in records {
        query = query.bind(record.job_id.as_str());
    }
    let mut stored = HashMap::new();
    for row in query.fetch_all(&mut *conn).await? {
        let status: String = row.try_get("status")?;
        let status = JobStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown job status {status:?}").into()))?;
        stored.insert(
            row.try_get("job_id")?,
            StoredJob {
                model: row.try_get("model")?,
                status,
                submitted_at: row.try_get("submitted_at")?,
                gpu_ms: row.try_get("gpu_ms")?,
            },
        );
    }
    Ok(stored)
}

/// A batch's changes to the job counts: jobs and GPU time to add per
/// period, model and status. Ordered maps, so every batch updates rows in one order.
#[derive(Default)]
struct CountChanges {
    by_model: BTreeMap<(i64, i64, String, &'static str), (i64, i64)>,
    by_status: BTreeMap<(i64, i64, &'static str), (i64, i64)>,
}

impl CountChanges {
    /// Adds (`sign` 1) or removes (`sign` -1) one job.
    fn add(&mut self, submitted_at: i64, model: &str, status: &'static str, gpu_ms: Option<i64>, sign: i64) {
        let gpu_ms = gpu_ms.unwrap_or(0) * sign;
        for period in MODEL_PERIODS {
            let key = (period, period_start(submitted_at, period), model.to_string(), status);
            let sum = self.by_model.entry(key).or_default();
            sum.0 += sign;
            sum.1 += gpu_ms;
        }
        for period in STATUS_PERIODS {
            let sum = self.by_status.entry((period, period_start(submitted_at, period), status)).or_default();
            sum.0 += sign;
            sum.1 += gpu_ms;
        }
    }

    async fn apply(self, conn: &mut AnyConnection, org_id: i64) -> Result<(), sqlx::Error> {
        let by_model: Vec<_> = self.by_model.into_iter().filter(|(_, sum)| *sum != (0, 0)).collect();
        for chunk in by_model.chunks(ROWS_PER_STATEMENT) {
            let rows = chunk.iter().map(|((period, start, model, status), (jobs, gpu_ms))| {
                [Value::Int(*period), Value::Int(*start), Value::Text(model), Value::Text(status), Value::Int(*jobs), Value::Int(*gpu_ms)]
            });
            add_counts(conn, "job_counts_by_model", org_id, "period_ms, start_ms, model, status", rows).await?;
        }
        let by_status: Vec<_> = self.by_status.into_iter().filter(|(_, sum)| *sum != (0, 0)).collect();
        for chunk in by_status.chunks(ROWS_PER_STATEMENT) {
            let rows = chunk.iter().map(|((period, start, status), (jobs, gpu_ms))| {
                [Value::Int(*period), Value::Int(*start), Value::Text(status), Value::Int(*jobs), Value::Int(*gpu_ms)]
            });
            add_counts(conn, "job_counts", org_id, "period_ms, start_ms, status", rows).await?;
        }
        Ok(())
    }
}

/// A bound value of a counts row.
enum Value<'a> {
    Int(i64),
    Text(&'a str),
}

/// Adds each row's last two values, jobs and GPU time, to the counts in
/// `table` under the row's key columns `key`, creating missing rows.
async fn add_counts<'a, const N: usize>(
    conn: &mut AnyConnection,
    table: &str,
    org_id: i64,
    key: &str,
    rows: impl ExactSizeIterator<Item = [Value<'a>; N]>,
) -> Result<(), sqlx::Error> {
    let mut params = Placeholders::for_connection(conn);
    let tuples: Vec<String> = (0..rows.len()).map(|_| params.tuple(N + 1)).collect();
    let sql = format!(
        "INSERT INTO {table} (org_id, {key}, jobs, gpu_ms) VALUES {} \
         ON CONFLICT (org_id, {key}) DO UPDATE SET \
           jobs = {table}.jobs + excluded.jobs, gpu_ms = {table}.gpu_ms + excluded.gpu_ms",
        tuples.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for row in rows {
        query = query.bind(org_id);
        for value in row {
            query = match value {
                Value::Int(v) => query.bind(v),
                Value::Text(v) => query.bind(v),
            };
        }
    }
    query.execute(conn).await?;
    Ok(())
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
