//! Server side of the usage page: bucket boundaries in a time zone, and the
//! summary that every figure on the page comes from, read in one snapshot.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use sqlx::{AnyConnection, AnyPool};
use std::collections::BTreeMap;

use super::counts::{begin_snapshot, count_intervals, Breakdown, CountSource, Tally};
use super::{Bucket, Counts, Granularity, ModelRow, RangeKey, UsageSummary, ZoneSource};
use crate::db::db_error;
use crate::error::AppError;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;

/// Parses an IANA time zone name, listing examples when it is unknown.
pub fn parse_time_zone(name: &str) -> Result<Tz, AppError> {
    name.parse::<Tz>().map_err(|_| {
        AppError::BadRequest(format!(
            "Unknown time zone \"{name}\". Use an IANA time zone name such as UTC, \
             Europe/Berlin or America/Chicago."
        ))
    })
}

/// Name of the cookie in which the browser reports its IANA time zone.
pub const TIME_ZONE_COOKIE: &str = "casola_tz";

/// Returns the zone the browser reported in its cookie, else the
/// organization's zone, else UTC, and which of them it is.
pub async fn browser_or_org_zone(org_timezone: &str) -> (Tz, ZoneSource) {
    let jar = leptos_axum::extract::<axum_extra::extract::CookieJar>().await.ok();
    let cookie = jar.as_ref().and_then(|jar| jar.get(TIME_ZONE_COOKIE));
    zone_from_cookie(cookie.map(|c| c.value()), org_timezone)
}

/// Picks the zone from the browser's cookie value, else the organization's
/// zone, else UTC. A cookie naming an unknown zone is ignored rather than
/// rejected, because the user never typed it.
pub fn zone_from_cookie(cookie: Option<&str>, org_timezone: &str) -> (Tz, ZoneSource) {
    if let Some(zone) = cookie.and_then(|value| value.parse::<Tz>().ok()) {
        return (zone, ZoneSource::Browser);
    }
    let zone = org_timezone.parse::<Tz>().unwrap_or(Tz::UTC);
    (zone, ZoneSource::Organization)
}

/// One bucket's boundaries and labels, before any job is counted.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketSpan {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub label: String,
    pub span_label: String,
}

/// Plans the buckets of `range` ending with the one that contains `now`.
///
/// Minute and hour buckets are fixed steps of real time aligned to the unit
/// in `zone`, so the repeated hour of a fall-back day is two buckets. Day
/// buckets are local calendar days, 23 to 25 hours long.
pub fn plan_buckets(range: RangeKey, zone: Tz, now: DateTime<Utc>) -> Vec<BucketSpan> {
    let count = range.bucket_count() as i64;
    match range.granularity() {
        Granularity::Minute => fixed_steps(zone, now, MINUTE_MS, count),
        Granularity::Hour => fixed_steps(zone, now, HOUR_MS, count),
        Granularity::Day => calendar_days(zone, now, count),
    }
}

fn fixed_steps(zone: Tz, now: DateTime<Utc>, step_ms: i64, count: i64) -> Vec<BucketSpan> {
    // Align to the unit in local time: a +05:45 zone's hours start at :15
    // past the UTC hour.
    let offset_ms = zone.offset_from_utc_datetime(&now.naive_utc()).fix().local_minus_utc() as i64 * 1_000;
    let local_ms = now.timestamp_millis() + offset_ms;
    let current_start = local_ms - local_ms.rem_euclid(step_ms) - offset_ms;

    (0..count)
        .map(|i| step_span(zone, current_start - (count - 1 - i) * step_ms, step_ms))
        .collect()
}

/// Returns the fixed-length bucket of `step_ms` starting at `start_ms`.
pub fn step_span(zone: Tz, start_ms: i64, step_ms: i64) -> BucketSpan {
    let start = utc_from_ms(start_ms);
    let end = utc_from_ms(start_ms + step_ms);
    let local_start = start.with_timezone(&zone);
    let local_end = end.with_timezone(&zone);
    BucketSpan {
        start,
        end,
        label: local_start.format("%H:%M").to_string(),
        span_label: format!(
            "{} – {} {}",
            local_start.format("%a %b %-d, %H:%M"),
            local_end.format("%H:%M"),
            local_start.format("%Z"),
        ),
    }
}

fn calendar_days(zone: Tz, now: DateTime<Utc>, count: i64) -> Vec<BucketSpan> {
    let today = now.with_timezone(&zone).date_naive();
    (0..count)
        .map(|i| day_span(zone, today - Duration::days(count - 1 - i)))
        .collect()
}

/// Returns the bucket of the local calendar day `day`, 23 to 25 hours long.
pub fn day_span(zone: Tz, day: NaiveDate) -> BucketSpan {
    let start = local_midnight(zone, day);
    let end = local_midnight(zone, day + Duration::days(1));
    let local_start = start.with_timezone(&zone);
    BucketSpan {
        start,
        end,
        label: day.format("%b %-d").to_string(),
        span_label: format!(
            "{} (00:00 – 24:00 {})",
            day.format("%a %b %-d, %Y"),
            local_start.format("%Z"),
        ),
    }
}

/// Returns the first instant of `day` in `zone`. Where a daylight-saving
/// change skips midnight, the day starts at the first local time that exists.
pub fn local_midnight(zone: Tz, day: NaiveDate) -> DateTime<Utc> {
    resolve_local(zone, day.and_time(NaiveTime::MIN))
}

/// Returns the instant of the local time `local` in `zone`: its first
/// occurrence when a fall-back change repeats it, and the first time that
/// exists after it when a spring-forward change skips it.
pub fn resolve_local(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut candidate = local;
    // Gaps are at most a few hours; step a minute at a time past one.
    for _ in 0..(24 * 60) {
        match zone.from_local_datetime(&candidate) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(earliest, _) => return earliest.with_timezone(&Utc),
            LocalResult::None => candidate += Duration::minutes(1),
        }
    }
    // No zone in the tz database has a gap of a whole day.
    Utc.from_utc_datetime(&local)
}

pub fn utc_from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Computes the usage summary of `org_id` for `range` in `zone` at `now`.
pub async fn usage_summary(
    pool: &AnyPool,
    org_id: i64,
    range: RangeKey,
    zone: Tz,
    now: DateTime<Utc>,
) -> Result<UsageSummary, AppError> {
    let query = super::UsageQuery { range, ..Default::default() };
    let window = super::window::plan_window(&query, zone, now)?;
    window_summary(pool, org_id, &window, zone, now).await
}

/// Computes the usage summary of `org_id` for a planned window, with the
/// previous window's totals for comparison, from one database snapshot.
pub async fn window_summary(
    pool: &AnyPool,
    org_id: i64,
    window: &super::window::PlannedWindow,
    zone: Tz,
    now: DateTime<Utc>,
) -> Result<UsageSummary, AppError> {
    window_summary_from(pool, org_id, window, zone, now, CountSource::Counts).await
}

/// `window_summary` with the counts read from `source`.
pub async fn window_summary_from(
    pool: &AnyPool,
    org_id: i64,
    window: &super::window::PlannedWindow,
    zone: Tz,
    now: DateTime<Utc>,
    source: CountSource,
) -> Result<UsageSummary, AppError> {
    let current = whole_interval(&window.spans);
    let previous = whole_interval(&window.previous);
    // The chart's buckets, then the previous window as one more interval.
    let mut chart_intervals: Vec<(i64, i64)> = window.spans.iter().map(span_interval).collect();
    chart_intervals.extend(previous);
    let model_intervals: Vec<(i64, i64)> = current.into_iter().chain(previous).collect();

    let mut tx = pool.begin().await.map_err(|e| db_error("start usage read", e))?;
    begin_snapshot(&mut tx).await?;
    let by_status = count_intervals(&mut tx, org_id, &chart_intervals, Breakdown::Status, source).await?;
    let by_model = count_intervals(&mut tx, org_id, &model_intervals, Breakdown::ModelAndStatus, source).await?;
    let data_credit = fetch_data_credit(&mut tx, org_id).await?;
    tx.commit().await.map_err(|e| db_error("finish usage read", e))?;

    let (models, previous_models): (Vec<Tally>, Vec<Tally>) =
        by_model.into_iter().partition(|t| current.is_some() && t.interval == 0);
    let mut summary = summarize(window.range, zone, now, &window.spans, &by_status, &models);
    let mut previous_totals = Counts::default();
    for tally in by_status.iter().filter(|t| t.interval == window.spans.len()) {
        previous_totals.add(&tally.status, tally.jobs, tally.gpu_ms);
    }
    for row in &mut summary.models {
        let mut counts = Counts::default();
        for tally in previous_models.iter().filter(|t| t.model.as_deref() == Some(row.model.as_str())) {
            counts.add(&tally.status, tally.jobs, tally.gpu_ms);
        }
        row.previous = Some(counts);
    }
    summary.granularity = window.granularity;
    summary.previous_totals = Some(previous_totals);
    summary.window = window.info.clone();
    summary.data_credit = data_credit;
    Ok(summary)
}

fn span_interval(span: &BucketSpan) -> (i64, i64) {
    (span.start.timestamp_millis(), span.end.timestamp_millis())
}

/// Returns `[start of the first span, end of the last)`, if there are spans.
pub fn whole_interval(spans: &[BucketSpan]) -> Option<(i64, i64)> {
    Some((span_interval(spans.first()?).0, span_interval(spans.last()?).1))
}

/// Counts the jobs of `org_id` per span and model, for the CSV export.
pub async fn span_model_tallies(pool: &AnyPool, org_id: i64, spans: &[BucketSpan]) -> Result<Vec<Tally>, AppError> {
    let intervals: Vec<(i64, i64)> = spans.iter().map(span_interval).collect();
    let mut tx = pool.begin().await.map_err(|e| db_error("start usage read", e))?;
    begin_snapshot(&mut tx).await?;
    let tallies = count_intervals(&mut tx, org_id, &intervals, Breakdown::ModelAndStatus, CountSource::Counts).await?;
    tx.commit().await.map_err(|e| db_error("finish usage read", e))?;
    Ok(tallies)
}

async fn fetch_data_credit(conn: &mut AnyConnection, org_id: i64) -> Result<Option<String>, AppError> {
    sqlx::query_scalar::<_, Option<String>>("SELECT data_credit FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_optional(conn)
        .await
        .map(Option::flatten)
        .map_err(|e| db_error("fetch data credit", e))
}

/// Folds the tallies into cards, buckets and model rows: `buckets` per
/// status with the index of a span as interval (others are ignored), and
/// `models` per model and status over the whole window.
///
/// Cards are the sum of the buckets, so the chart and the cards agree. The model rows
/// agree with both because both sets of tallies count the same jobs.
pub fn summarize(
    range: RangeKey,
    zone: Tz,
    now: DateTime<Utc>,
    spans: &[BucketSpan],
    buckets: &[Tally],
    models: &[Tally],
) -> UsageSummary {
    let mut chart: Vec<Bucket> = spans
        .iter()
        .map(|span| Bucket {
            start_ms: span.start.timestamp_millis(),
            end_ms: span.end.timestamp_millis(),
            label: span.label.clone(),
            span_label: span.span_label.clone(),
            total: 0,
            completed: 0,
            failed: 0,
            partial: span.start <= now && now < span.end,
        })
        .collect();
    let mut totals = Counts::default();
    for tally in buckets {
        let Some(bucket) = chart.get_mut(tally.interval) else {
            continue;
        };
        let jobs = tally.jobs.max(0) as u64;
        bucket.total += jobs;
        match tally.status.as_str() {
            "completed" => bucket.completed += jobs,
            "failed" => bucket.failed += jobs,
            _ => {}
        }
        totals.add(&tally.status, tally.jobs, tally.gpu_ms);
    }

    let mut by_model: BTreeMap<&str, Counts> = BTreeMap::new();
    for tally in models {
        let model = tally.model.as_deref().unwrap_or_default();
        by_model.entry(model).or_default().add(&tally.status, tally.jobs, tally.gpu_ms);
    }
    let mut models: Vec<ModelRow> = by_model
        .into_iter()
        .filter(|(_, counts)| counts.jobs > 0)
        .map(|(model, counts)| ModelRow { model: model.to_string(), counts, previous: None })
        .collect();
    // Most jobs first; the map already ordered ties by name.
    models.sort_by(|a, b| b.counts.jobs.cmp(&a.counts.jobs));

    UsageSummary {
        range,
        tz: zone.name().to_string(),
        zone_source: ZoneSource::Requested,
        granularity: range.granularity(),
        totals,
        buckets: chart,
        models,
        org_timezone: String::new(),
        data_credit: None,
        previous_totals: None,
        window: Default::default(),
    }
}

impl Counts {
    /// Adds `jobs` jobs of `status` with `gpu_ms` of GPU time.
    fn add(&mut self, status: &str, jobs: i64, gpu_ms: i64) {
        let jobs = jobs.max(0) as u64;
        self.jobs += jobs;
        self.gpu_ms += gpu_ms;
        match status {
            "completed" => self.completed += jobs,
            "failed" => self.failed += jobs,
            _ => {}
        }
    }
}

/// One CSV row: the jobs of one model in one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    /// Index into the planned spans.
    pub bucket: usize,
    pub model: String,
    pub counts: Counts,
}

/// Folds tallies per span and model into CSV rows, in bucket order and then
/// by model name. Buckets without jobs have no rows.
pub fn export_rows(tallies: &[Tally]) -> Vec<ExportRow> {
    let mut cells: BTreeMap<(usize, &str), Counts> = BTreeMap::new();
    for tally in tallies {
        let model = tally.model.as_deref().unwrap_or_default();
        cells.entry((tally.interval, model)).or_default().add(&tally.status, tally.jobs, tally.gpu_ms);
    }
    cells
        .into_iter()
        .filter(|(_, counts)| counts.jobs > 0)
        .map(|((bucket, model), counts)| ExportRow { bucket, model: model.to_string(), counts })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    fn at(zone: Tz, local: &str) -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").unwrap();
        zone.from_local_datetime(&naive).earliest().unwrap().with_timezone(&Utc)
    }

    fn utc(text: &str) -> DateTime<Utc> {
        at(Tz::UTC, text)
    }

    /// `jobs` jobs of one model and status submitted at `t`.
    struct Sample {
        at: DateTime<Utc>,
        model: String,
        status: String,
        jobs: i64,
    }

    fn group(at: DateTime<Utc>, model: &str, status: &str, jobs: i64) -> Sample {
        Sample { at, model: model.to_string(), status: status.to_string(), jobs }
    }

    /// Tallies samples as the database does: per span and status, and per
    /// model and status over every span. Samples outside the spans are left out.
    fn tally(spans: &[BucketSpan], samples: &[Sample]) -> (Vec<Tally>, Vec<Tally>) {
        let mut buckets = Vec::new();
        let mut models = Vec::new();
        for sample in samples {
            let Some(index) = spans.iter().position(|s| s.start <= sample.at && sample.at < s.end) else {
                continue;
            };
            let tally = Tally {
                interval: index,
                model: Some(sample.model.clone()),
                status: sample.status.clone(),
                jobs: sample.jobs,
                gpu_ms: 0,
            };
            buckets.push(Tally { model: None, ..tally.clone() });
            models.push(tally);
        }
        (buckets, models)
    }

    fn summarize_samples(
        range: RangeKey,
        zone: Tz,
        now: DateTime<Utc>,
        spans: &[BucketSpan],
        samples: &[Sample],
    ) -> UsageSummary {
        let (buckets, models) = tally(spans, samples);
        let models: Vec<Tally> = models.into_iter().map(|t| Tally { interval: 0, ..t }).collect();
        summarize(range, zone, now, spans, &buckets, &models)
    }

    fn check_contiguous(spans: &[BucketSpan]) {
        for pair in spans.windows(2) {
            assert_eq!(pair[0].end, pair[1].start, "gap or overlap at {:?}", pair[1]);
        }
        for span in spans {
            assert_eq!(span.start.timestamp_millis() % MINUTE_MS, 0, "{span:?}");
        }
    }

    #[test]
    fn every_range_has_its_bucket_count_and_contains_now() {
        let zones = [Tz::UTC, chrono_tz::America::Chicago, chrono_tz::Asia::Kathmandu, chrono_tz::Asia::Kolkata];
        let now = utc("2025-06-10 15:20:31");
        for zone in zones {
            for range in RangeKey::ALL {
                let spans = plan_buckets(range, zone, now);
                assert_eq!(spans.len() as u32, range.bucket_count(), "{range:?} {zone}");
                check_contiguous(&spans);
                let last = spans.last().unwrap();
                assert!(last.start <= now && now < last.end, "{range:?} {zone}: {last:?}");
            }
        }
    }

    #[test]
    fn hour_buckets_align_to_local_hour_in_kathmandu() {
        let zone = chrono_tz::Asia::Kathmandu; // UTC+05:45
        let spans = plan_buckets(RangeKey::Hours6, zone, utc("2025-06-10 15:20:00"));
        let last = spans.last().unwrap();
        assert_eq!(last.start, utc("2025-06-10 15:15:00"));
        assert_eq!(last.label, "21:00");
        assert_eq!(spans[0].label, "16:00");
    }

    #[test]
    fn hour_buckets_align_to_local_hour_in_kolkata() {
        let zone = chrono_tz::Asia::Kolkata; // UTC+05:30
        let spans = plan_buckets(RangeKey::Hours24, zone, utc("2025-06-10 15:20:00"));
        assert_eq!(spans.last().unwrap().start, utc("2025-06-10 14:30:00"));
        assert_eq!(spans.last().unwrap().label, "20:00");
    }

    #[test]
    fn fall_back_hour_is_two_buckets_in_chicago() {
        let zone = chrono_tz::America::Chicago;
        // 2022-11-06 02:00 CDT became 01:00 CST.
        let now = at(zone, "2022-11-06 04:10:00");
        let spans = plan_buckets(RangeKey::Hours6, zone, now);
        let labels: Vec<_> = spans.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["00:00", "01:00", "01:00", "02:00", "03:00", "04:00"]);
        assert!(spans[1].span_label.ends_with("CDT"), "{}", spans[1].span_label);
        assert!(spans[2].span_label.ends_with("CST"), "{}", spans[2].span_label);
    }

    #[test]
    fn spring_forward_hour_is_skipped_in_berlin() {
        let zone = chrono_tz::Europe::Berlin;
        // 2024-03-31 02:00 CET became 03:00 CEST.
        let now = at(zone, "2024-03-31 05:30:00");
        let spans = plan_buckets(RangeKey::Hours6, zone, now);
        let labels: Vec<_> = spans.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["23:00", "00:00", "01:00", "03:00", "04:00", "05:00"]);
    }

    #[test]
    fn day_buckets_follow_dst_day_lengths() {
        let chicago = chrono_tz::America::Chicago;
        let spans = plan_buckets(RangeKey::Days7, chicago, at(chicago, "2022-11-08 12:00:00"));
        let fall_back = spans.iter().find(|s| s.label == "Nov 6").unwrap();
        assert_eq!((fall_back.end - fall_back.start).num_hours(), 25);

        let berlin = chrono_tz::Europe::Berlin;
        let spans = plan_buckets(RangeKey::Days7, berlin, at(berlin, "2024-04-02 12:00:00"));
        let spring = spans.iter().find(|s| s.label == "Mar 31").unwrap();
        assert_eq!((spring.end - spring.start).num_hours(), 23);
        assert_eq!(spring.start, utc("2024-03-30 23:00:00"));
    }

    #[test]
    fn dst_changes_in_chicago_and_berlin() {
        use chrono_tz::America::Chicago;
        use chrono_tz::Europe::Berlin;
        // (zone, local "now" a few hours after the change, hour labels of
        // the 6-hour view, day of the change and its length in hours)
        let cases = [
            (Chicago, "2022-03-13 05:30:00", ["23:00", "00:00", "01:00", "03:00", "04:00", "05:00"], "Mar 13", 23),
            (Chicago, "2022-11-06 04:30:00", ["00:00", "01:00", "01:00", "02:00", "03:00", "04:00"], "Nov 6", 25),
            (Berlin, "2024-03-31 05:30:00", ["23:00", "00:00", "01:00", "03:00", "04:00", "05:00"], "Mar 31", 23),
            (Berlin, "2024-10-27 04:30:00", ["00:00", "01:00", "02:00", "02:00", "03:00", "04:00"], "Oct 27", 25),
        ];
        for (zone, local_now, hour_labels, day_label, day_hours) in cases {
            let now = at(zone, local_now);

            let hours = plan_buckets(RangeKey::Hours6, zone, now);
            let labels: Vec<_> = hours.iter().map(|s| s.label.as_str()).collect();
            assert_eq!(labels, hour_labels, "{zone} {local_now}");
            check_contiguous(&hours);
            assert!(hours.iter().all(|s| (s.end - s.start).num_minutes() == 60), "{zone} {local_now}");

            let days = plan_buckets(RangeKey::Days7, zone, now);
            let change = days.iter().find(|s| s.label == day_label).unwrap();
            assert_eq!((change.end - change.start).num_hours(), day_hours, "{zone} {local_now}");
            check_contiguous(&days);
        }
    }

    #[test]
    fn job_at_bucket_edge_counts_in_later_bucket() {
        let zone = chrono_tz::Asia::Kolkata; // UTC+05:30
        let now = at(zone, "2025-06-10 15:20:30");
        for range in [RangeKey::Hour1, RangeKey::Hours6, RangeKey::Days7] {
            let spans = plan_buckets(range, zone, now);
            let edge = spans[3].start;
            let groups = [group(edge, "m", "completed", 1), group(edge - Duration::seconds(1), "m", "failed", 1)];

            let summary = summarize_samples(range, zone, now, &spans, &groups);

            assert_eq!(summary.buckets[3].completed, 1, "{range:?}");
            assert_eq!(summary.buckets[3].failed, 0, "{range:?}");
            assert_eq!(summary.buckets[2].failed, 1, "{range:?}");
        }
    }

    #[test]
    fn midnight_skipped_by_dst_starts_day_at_first_valid_time() {
        // Havana moved clocks from 00:00 to 01:00 on 2024-03-10.
        let zone = chrono_tz::America::Havana;
        let day = NaiveDate::from_ymd_opt(2024, 3, 10).unwrap();
        let start = local_midnight(zone, day);
        assert_eq!(start.with_timezone(&zone).format("%H:%M").to_string(), "01:00");
        assert_eq!(start, utc("2024-03-10 05:00:00"));
    }

    // Daylight-saving start in America/Toronto.
    #[test]
    fn case_u1_toronto_week_over_dst_start() {
        let zone = chrono_tz::America::Toronto;
        let now = at(zone, "2024-03-13 18:00:00");
        let spans = plan_buckets(RangeKey::Days7, zone, now);
        let groups: Vec<_> = (7..=13)
            .map(|day| group(at(zone, &format!("2024-03-{day:02} 12:00:00")), "m", "completed", 1))
            .collect();

        let summary = summarize_samples(RangeKey::Days7, zone, now, &spans, &groups);

        let labels: Vec<_> = summary.buckets.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["Mar 7", "Mar 8", "Mar 9", "Mar 10", "Mar 11", "Mar 12", "Mar 13"]);
        for bucket in &summary.buckets {
            assert_eq!(bucket.total, 1, "{}", bucket.label);
            assert_eq!(bucket.completed, 1, "{}", bucket.label);
        }
        assert_eq!(summary.totals.jobs, 7);
    }

    // Today is the last, still-filling day.
    #[test]
    fn case_u2_today_is_last_partial_bar() {
        let now = utc("2025-06-10 15:20:00");
        let spans = plan_buckets(RangeKey::Days7, Tz::UTC, now);
        let groups = [group(utc("2025-06-10 09:00:00"), "m", "completed", 1)];

        let summary = summarize_samples(RangeKey::Days7, Tz::UTC, now, &spans, &groups);

        let last = summary.buckets.last().unwrap();
        assert_eq!(last.label, "Jun 10");
        assert_eq!(last.total, 1);
        assert!(last.partial);
        let earlier_partial = summary.buckets[..6].iter().filter(|b| b.partial).count();
        assert_eq!(earlier_partial, 0);
    }

    // Windows are half-open.
    #[test]
    fn case_u3_job_at_midnight_counts_on_new_day() {
        let now = utc("2025-05-03 10:00:00");
        let spans = plan_buckets(RangeKey::Days7, Tz::UTC, now);
        let groups = [
            group(utc("2025-04-30 23:59:59"), "m", "completed", 1),
            group(utc("2025-05-01 00:00:00"), "m", "completed", 1),
        ];

        let summary = summarize_samples(RangeKey::Days7, Tz::UTC, now, &spans, &groups);

        let count_on = |label: &str| summary.buckets.iter().find(|b| b.label == label).unwrap().total;
        assert_eq!(count_on("Apr 30"), 1);
        assert_eq!(count_on("May 1"), 1);
        let bar_sum: u64 = summary.buckets.iter().map(|b| b.total).sum();
        assert_eq!(bar_sum, summary.totals.jobs);
        assert_eq!(summary.totals.jobs, 2);
    }

    // Cards, chart and table add up.
    #[test]
    fn case_u5_cards_chart_and_table_agree() {
        let now = utc("2025-06-10 15:20:00");
        let spans = plan_buckets(RangeKey::Days7, Tz::UTC, now);
        let mut groups = Vec::new();
        for i in 0..100 {
            let status = match i {
                0..70 => "completed",
                70..95 => "failed",
                _ => "running",
            };
            let t = utc("2025-06-04 00:00:00") + Duration::minutes(i * 97);
            groups.push(group(t, &format!("model-{}", i % 4), status, 1));
        }

        let summary = summarize_samples(RangeKey::Days7, Tz::UTC, now, &spans, &groups);

        assert_eq!(summary.totals.jobs, 100);
        assert_eq!(summary.totals.completed, 70);
        assert_eq!(summary.totals.failed, 25);
        assert_eq!(summary.buckets.iter().map(|b| b.completed).sum::<u64>(), 70);
        assert_eq!(summary.buckets.iter().map(|b| b.failed).sum::<u64>(), 25);
        assert_eq!(summary.models.iter().map(|m| m.counts.jobs).sum::<u64>(), 100);
        assert_eq!(summary.models.iter().map(|m| m.counts.completed).sum::<u64>(), 70);
        assert_eq!(summary.models.iter().map(|m| m.counts.failed).sum::<u64>(), 25);
    }

    #[test]
    fn models_sorted_by_jobs_then_name() {
        let now = utc("2025-06-10 15:20:00");
        let spans = plan_buckets(RangeKey::Days7, Tz::UTC, now);
        let t = utc("2025-06-09 10:00:00");
        let groups = [
            group(t, "zeta", "completed", 2),
            group(t, "alpha", "completed", 2),
            group(t, "mid", "failed", 5),
        ];

        let summary = summarize_samples(RangeKey::Days7, Tz::UTC, now, &spans, &groups);

        let names: Vec<_> = summary.models.iter().map(|m| m.model.as_str()).collect();
        assert_eq!(names, ["mid", "alpha", "zeta"]);
    }

    #[test]
    fn empty_range_has_zero_buckets_and_no_models() {
        let now = utc("2025-06-10 15:20:00");
        for range in RangeKey::ALL {
            let spans = plan_buckets(range, Tz::UTC, now);
            let summary = summarize_samples(range, Tz::UTC, now, &spans, &[]);
            assert_eq!(summary.buckets.len() as u32, range.bucket_count());
            assert!(summary.buckets.iter().all(|b| b.total == 0));
            assert!(summary.models.is_empty());
            assert_eq!(summary.totals, Counts::default());
        }
    }

    #[test]
    fn export_rows_add_up_to_totals() {
        let now = utc("2025-06-10 15:20:00");
        let spans = plan_buckets(RangeKey::Days7, Tz::UTC, now);
        let groups = [
            group(utc("2025-06-09 10:00:00"), "b", "completed", 2),
            group(utc("2025-06-09 11:00:00"), "a", "failed", 1),
            group(utc("2025-06-10 10:00:00"), "a", "running", 4),
        ];

        let rows = export_rows(&tally(&spans, &groups).1);
        let summary = summarize_samples(RangeKey::Days7, Tz::UTC, now, &spans, &groups);

        let models: Vec<_> = rows.iter().map(|r| (r.bucket, r.model.as_str())).collect();
        assert_eq!(models, [(5, "a"), (5, "b"), (6, "a")]);
        assert_eq!(rows.iter().map(|r| r.counts.jobs).sum::<u64>(), summary.totals.jobs);
        assert_eq!(rows.iter().map(|r| r.counts.failed).sum::<u64>(), summary.totals.failed);
    }

    #[test]
    fn cookie_zone_falls_back_to_org_then_utc() {
        assert_eq!(
            zone_from_cookie(Some("Asia/Tokyo"), "Europe/Berlin"),
            (chrono_tz::Asia::Tokyo, ZoneSource::Browser)
        );
        assert_eq!(
            zone_from_cookie(Some("Nowhere/Land"), "Europe/Berlin"),
            (chrono_tz::Europe::Berlin, ZoneSource::Organization)
        );
        assert_eq!(zone_from_cookie(None, "bad"), (Tz::UTC, ZoneSource::Organization));
    }

    #[test]
    fn unknown_time_zone_names_value() {
        let err = parse_time_zone("Mars/Olympus").unwrap_err();
        assert!(err.to_string().contains("\"Mars/Olympus\""));
        assert!(matches!(err, AppError::BadRequest(_)));
    }
}
