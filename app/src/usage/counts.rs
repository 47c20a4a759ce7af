//! Counting an organization's jobs in time intervals, fast at any size.
//!
//! The tables `job_counts_by_model` and `job_counts` hold job counts per UTC
//! day, hour and quarter hour (see their migration). An interval is split
//! into whole periods, coarsest first, and whatever is left at its edges
//! (less than a quarter hour on each side) is counted in the jobs table.
//! Both parts count jobs by submission time, so their sum is exactly what a
//! count over the jobs table gives.

use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

use crate::db::{db_error, Placeholders};
use crate::error::AppError;

pub const QUARTER_MS: i64 = 900_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// Periods kept per model and status, coarsest first.
pub const MODEL_PERIODS: [i64; 3] = [DAY_MS, HOUR_MS, QUARTER_MS];
/// Periods kept per status only, coarsest first. The chart never needs a
/// model, and a day per status would serve only UTC day buckets.
pub const STATUS_PERIODS: [i64; 2] = [HOUR_MS, QUARTER_MS];

/// Returns the start of the period of length `period_ms` that contains `at_ms`.
pub fn period_start(at_ms: i64, period_ms: i64) -> i64 {
    at_ms - at_ms.rem_euclid(period_ms)
}

/// The grouping of counts within an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakdown {
    Status,
    ModelAndStatus,
}

impl Breakdown {
    fn table(self) -> &'static str {
        match self {
            Breakdown::Status => "job_counts",
            Breakdown::ModelAndStatus => "job_counts_by_model",
        }
    }

    fn periods(self) -> &'static [i64] {
        match self {
            Breakdown::Status => &STATUS_PERIODS,
            Breakdown::ModelAndStatus => &MODEL_PERIODS,
        }
    }
}

/// The source of job counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountSource {
    /// The counts tables, and the jobs table only at the edges: the product.
    Counts,
    /// The jobs table alone, one GROUP BY per interval: the plain way, which
    /// the benchmark compares against.
    Jobs,
}

/// The jobs of one status, and with `Breakdown::ModelAndStatus` of one
/// model, submitted in one of the requested intervals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Index into the requested intervals.
    pub interval: usize,
    pub model: Option<String>,
    pub status: String,
    pub jobs: i64,
    pub gpu_ms: i64,
}

/// A part of an interval read from one source: the counts of periods of
/// `period_ms`, or the jobs table when it is `None`. Half-open `[lo, hi)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    interval: usize,
    period_ms: Option<i64>,
    lo: i64,
    hi: i64,
}

/// Splits `[lo, hi)` into runs of whole periods, coarsest first, and the
/// leftover edges for the jobs table. The pieces cover it exactly once;
/// `pieces_cover_the_interval_exactly_once` tests this.
fn split(interval: usize, lo: i64, hi: i64, periods: &[i64], pieces: &mut Vec<Piece>) {
    if lo >= hi {
        return;
    }
    let Some((&period, finer)) = periods.split_first() else {
        pieces.push(Piece { interval, period_ms: None, lo, hi });
        return;
    };
    let first = period_start(lo + period - 1, period);
    let last = period_start(hi, period);
    if first < last {
        split(interval, lo, first, finer, pieces);
        pieces.push(Piece { interval, period_ms: Some(period), lo: first, hi: last });
        split(interval, last, hi, finer, pieces);
    } else {
        split(interval, lo, hi, finer, pieces);
    }
}

/// Pieces per statement: three bound parameters each.
const PIECES_PER_STATEMENT: usize = 300;

/// Counts the jobs of `org_id` submitted in each interval `[lo, hi)`
/// (milliseconds since the epoch), broken down by `breakdown`. Only
/// non-zero tallies are returned.
///
/// Run it inside a transaction, with `begin_snapshot`, when several calls
/// must agree with each other.
pub async fn count_intervals(
    conn: &mut AnyConnection,
    org_id: i64,
    intervals: &[(i64, i64)],
    breakdown: Breakdown,
    source: CountSource,
) -> Result<Vec<Tally>, AppError> {
    let periods = match source {
        CountSource::Counts => breakdown.periods(),
        CountSource::Jobs => &[],
    };
    let mut pieces = Vec::new();
    for (i, &(lo, hi)) in intervals.iter().enumerate() {
        split(i, lo, hi, periods, &mut pieces);
    }

    let mut sums: HashMap<(usize, Option<String>, String), (i64, i64)> = HashMap::new();
    let mut sources: Vec<Option<i64>> = pieces.iter().map(|p| p.period_ms).collect();
    sources.sort_unstable();
    sources.dedup();
    for source in sources {
        let of_source: Vec<Piece> = pieces.iter().copied().filter(|p| p.period_ms == source).collect();
        for chunk in of_source.chunks(PIECES_PER_STATEMENT) {
            for tally in count_pieces(conn, org_id, source, chunk, breakdown).await? {
                let sum = sums.entry((tally.interval, tally.model, tally.status)).or_default();
                sum.0 += tally.jobs;
                sum.1 += tally.gpu_ms;
            }
        }
    }

    let mut tallies: Vec<Tally> = sums
        .into_iter()
        .filter(|(_, (jobs, _))| *jobs != 0)
        .map(|((interval, model, status), (jobs, gpu_ms))| Tally { interval, model, status, jobs, gpu_ms })
        .collect();
    tallies.sort_by(|a, b| (a.interval, &a.model, &a.status).cmp(&(b.interval, &b.model, &b.status)));
    Ok(tallies)
}

/// Reads the tallies of `pieces`, all from one source, in one statement.
async fn count_pieces(
    conn: &mut AnyConnection,
    org_id: i64,
    source: Option<i64>,
    pieces: &[Piece],
    breakdown: Breakdown,
) -> Result<Vec<Tally>, AppError> {
    let by_model = breakdown == Breakdown::ModelAndStatus;
    // Placeholders in the order they appear: the pieces, the organization,
    // and the period for a counts table.
    let mut params = Placeholders::for_connection(conn);
    let values: Vec<String> = pieces.iter().map(|_| params.tuple(3)).collect();
    let org = params.next();
    let (table, within, jobs, gpu_ms) = match source {
        Some(_) => (
            breakdown.table(),
            format!("c.period_ms = {} AND c.start_ms >= pieces.lo AND c.start_ms < pieces.hi", params.next()),
            "CAST(SUM(c.jobs) AS BIGINT)",
            "CAST(SUM(c.gpu_ms) AS BIGINT)",
        ),
        None => (
            "jobs",
            "c.submitted_at >= pieces.lo AND c.submitted_at < pieces.hi".to_string(),
            "COUNT(*)",
            "CAST(COALESCE(SUM(c.gpu_ms), 0) AS BIGINT)",
        ),
    };
    let (model, group_model) = if by_model { ("c.model", "c.model, ") } else { ("NULL", "") };
    let values = values.join(", ");
    let counted = format!("{model} AS model, c.status, {jobs} AS jobs, {gpu_ms} AS gpu_ms");
    let matching = format!("{table} c ON c.org_id = {org} AND {within}");
    let sql = if conn.backend_name() == "PostgreSQL" {
        // PostgreSQL cannot tell how narrow each piece is and scans the
        // whole table; a lateral subquery reads each piece by its index.
        format!(
            "SELECT pieces.idx, t.model, t.status, t.jobs, t.gpu_ms \
             FROM (VALUES {values}) AS pieces (idx, lo, hi) CROSS JOIN LATERAL \
             (SELECT {counted} FROM {} GROUP BY {group_model}c.status) t",
            matching.replacen(" c ON ", " c WHERE ", 1)
        )
    } else {
        format!(
            "WITH pieces (idx, lo, hi) AS (VALUES {values}) \
             SELECT pieces.idx, {counted} FROM pieces JOIN {matching} \
             GROUP BY pieces.idx, {group_model}c.status"
        )
    };

    let mut query = sqlx::query(&sql);
    for piece in pieces {
        query = query.bind(piece.interval as i64).bind(piece.lo).bind(piece.hi);
    }
    query = query.bind(org_id);
    if let Some(period) = source {
        query = query.bind(period);
    }
    let rows = query.fetch_all(&mut *conn).await.map_err(|e| db_error("count jobs", e))?;
    rows.iter()
        .map(|row| {
            Ok(Tally {
                interval: row.try_get::<i64, _>(0)? as usize,
                model: if by_model { Some(row.try_get(1)?) } else { None },
                status: row.try_get(2)?,
                jobs: row.try_get(3)?,
                gpu_ms: row.try_get(4)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(|e| db_error("read job counts", e))
}

/// Makes the transaction on `conn` read one snapshot in every statement.
/// SQLite's transactions already do; PostgreSQL's default isolation takes
/// a new snapshot per statement.
///
/// On PostgreSQL it also plans each statement for its actual pieces. After
/// five runs of a prepared statement PostgreSQL may switch to a plan made
/// without the parameters' values, and with the pieces unknown such a plan
/// may read a whole table.
pub async fn begin_snapshot(conn: &mut AnyConnection) -> Result<(), AppError> {
    if conn.backend_name() == "PostgreSQL" {
        // One round trip: a string without parameters may hold several
        // statements.
        sqlx::Executor::execute(
            &mut *conn,
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
             SET LOCAL plan_cache_mode = force_custom_plan",
        )
        .await
        .map_err(|e| db_error("start usage snapshot", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces_of(lo: i64, hi: i64, periods: &[i64]) -> Vec<(Option<i64>, i64, i64)> {
        let mut pieces = Vec::new();
        split(0, lo, hi, periods, &mut pieces);
        pieces.into_iter().map(|p| (p.period_ms, p.lo, p.hi)).collect()
    }

    const MIN: i64 = 60_000;

    #[test]
    fn pieces_cover_the_interval_exactly_once() {
        // Kathmandu's local day (UTC+05:45) from 18:15 to 18:15 UTC, plus a
        // few minutes off the quarter at each end.
        let lo = DAY_MS + 18 * HOUR_MS + 15 * MIN - 7 * MIN;
        let hi = 2 * DAY_MS + 18 * HOUR_MS + 15 * MIN + 4 * MIN;
        for periods in [&MODEL_PERIODS[..], &STATUS_PERIODS[..]] {
            let pieces = pieces_of(lo, hi, periods);
            let mut at = lo;
            for &(_, a, b) in &pieces {
                assert_eq!(a, at, "pieces are contiguous: {pieces:?}");
                assert!(a < b);
                at = b;
            }
            assert_eq!(at, hi);
        }
    }

    #[test]
    fn day_bucket_in_kathmandu_reads_few_periods() {
        let lo = DAY_MS + 18 * HOUR_MS + 15 * MIN;
        let hi = 2 * DAY_MS + 18 * HOUR_MS + 15 * MIN;
        assert_eq!(
            pieces_of(lo, hi, &MODEL_PERIODS),
            [
                (Some(QUARTER_MS), lo, lo + 45 * MIN),
                (Some(HOUR_MS), DAY_MS + 19 * HOUR_MS, 2 * DAY_MS + 18 * HOUR_MS),
                (Some(QUARTER_MS), 2 * DAY_MS + 18 * HOUR_MS, hi),
            ]
        );
    }

    #[test]
    fn minute_buckets_come_from_the_jobs_table() {
        let lo = 5 * HOUR_MS + 3 * MIN;
        assert_eq!(pieces_of(lo, lo + MIN, &MODEL_PERIODS), [(None, lo, lo + MIN)]);
    }

    #[test]
    fn period_start_rounds_down_before_1970() {
        assert_eq!(period_start(-1, QUARTER_MS), -QUARTER_MS);
        assert_eq!(period_start(-QUARTER_MS, QUARTER_MS), -QUARTER_MS);
        assert_eq!(period_start(QUARTER_MS + 1, QUARTER_MS), QUARTER_MS);
    }
}
