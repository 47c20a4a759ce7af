//! The window a usage summary covers: a preset range ending now or at
//! `end`, or a custom range of whole days, with the window before it for
//! comparison and the targets of the previous and next arrows.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::ssr::{day_span, local_midnight, plan_buckets, resolve_local, step_span, BucketSpan, HOUR_MS};
use super::{CustomRange, Granularity, RangeKey, UsageQuery, WindowEnd, WindowInfo, WindowStep};
use crate::error::AppError;

/// Custom ranges up to this many days are drawn per hour, longer ones per day.
const HOURLY_CUSTOM_DAYS: i64 = 2;

/// The buckets to draw and the buckets of the window before, which has the
/// same length.
#[derive(Debug, Clone)]
pub struct PlannedWindow {
    pub range: RangeKey,
    pub granularity: Granularity,
    pub spans: Vec<BucketSpan>,
    pub previous: Vec<BucketSpan>,
    pub info: WindowInfo,
}

/// Plans the window `query` requests, in `zone`, at `now`. An `end` or a
/// custom range that lies in the future is a 400 naming it.
pub fn plan_window(query: &UsageQuery, zone: Tz, now: DateTime<Utc>) -> Result<PlannedWindow, AppError> {
    match query.custom {
        Some(custom) => plan_custom(custom, zone, now),
        None => plan_preset(query.range, query.end, zone, now),
    }
}

fn plan_preset(
    range: RangeKey,
    end: Option<WindowEnd>,
    zone: Tz,
    now: DateTime<Utc>,
) -> Result<PlannedWindow, AppError> {
    // The last bucket is the one containing the instant just before the
    // (exclusive) end, so the window ends at the bucket edge at or after it.
    let last_instant = match end {
        None => now,
        Some(end) => window_end_instant(end, zone, now)? - Duration::milliseconds(1),
    };
    let spans = plan_buckets(range, zone, last_instant);
    let first_start = spans.first().map(|s| s.start).unwrap_or(now);
    let previous = plan_buckets(range, zone, first_start - Duration::milliseconds(1));

    let live = spans.last().is_some_and(|s| s.end > now);
    let info = WindowInfo {
        label: window_label(&spans, range.granularity(), zone),
        previous_label: format!("previous {}", range_length_words(range)),
        live,
        previous: previous_step(range, &spans, zone),
        next: next_step(range, &spans, zone, now, live),
    };
    Ok(PlannedWindow { range, granularity: range.granularity(), spans, previous, info })
}

/// Returns the exclusive end of the window `end` names, or a 400 when it
/// lies in the future.
fn window_end_instant(end: WindowEnd, zone: Tz, now: DateTime<Utc>) -> Result<DateTime<Utc>, AppError> {
    let today = now.with_timezone(&zone).date_naive();
    let in_future = |shown: String| {
        AppError::BadRequest(format!(
            "The end \"{shown}\" is in the future. Use a date up to today ({today}) or a time up to now."
        ))
    };
    match end {
        WindowEnd::Date(day) if day > today => Err(in_future(end.as_param())),
        WindowEnd::Date(day) => Ok(local_midnight(zone, day + Duration::days(1)).min(day_end_cap(now, zone))),
        WindowEnd::LocalTime(local) => {
            let instant = resolve_local(zone, local);
            if instant > now {
                return Err(in_future(end.as_param()));
            }
            Ok(instant)
        }
        WindowEnd::Instant(instant) => {
            let instant = instant.with_timezone(&Utc);
            if instant > now {
                return Err(in_future(end.as_param()));
            }
            Ok(instant)
        }
    }
}

/// Today's window ends at the end of today; `end` set to today means the
/// live window.
fn day_end_cap(now: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    local_midnight(zone, now.with_timezone(&zone).date_naive() + Duration::days(1))
}

fn previous_step(range: RangeKey, spans: &[BucketSpan], zone: Tz) -> WindowStep {
    let Some(first) = spans.first() else {
        return WindowStep::Disabled;
    };
    match range.granularity() {
        // The previous window ends with the day before this one starts.
        Granularity::Day => {
            let day_before = first.start.with_timezone(&zone).date_naive() - Duration::days(1);
            WindowStep::End(WindowEnd::Date(day_before))
        }
        _ => WindowStep::End(WindowEnd::Instant(first.start.with_timezone(&zone).fixed_offset())),
    }
}

fn next_step(range: RangeKey, spans: &[BucketSpan], zone: Tz, now: DateTime<Utc>, live: bool) -> WindowStep {
    let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
        return WindowStep::Disabled;
    };
    if live {
        return WindowStep::Disabled;
    }
    match range.granularity() {
        Granularity::Day => {
            let last_day = last.start.with_timezone(&zone).date_naive();
            let next_last = last_day + Duration::days(spans.len() as i64);
            if next_last >= now.with_timezone(&zone).date_naive() {
                WindowStep::Live
            } else {
                WindowStep::End(WindowEnd::Date(next_last))
            }
        }
        _ => {
            let next_end = last.end + (last.end - first.start);
            if next_end > now {
                WindowStep::Live
            } else {
                WindowStep::End(WindowEnd::Instant(next_end.with_timezone(&zone).fixed_offset()))
            }
        }
    }
}

fn plan_custom(custom: CustomRange, zone: Tz, now: DateTime<Utc>) -> Result<PlannedWindow, AppError> {
    let today = now.with_timezone(&zone).date_naive();
    if custom.to > today {
        return Err(AppError::BadRequest(format!(
            "The custom range ends in the future ({}). Use dates up to today ({today}).",
            custom.to
        )));
    }
    let days = custom.days();
    let before = CustomRange {
        from: custom.from - Duration::days(days),
        to: custom.from - Duration::days(1),
    };
    let granularity = if days <= HOURLY_CUSTOM_DAYS { Granularity::Hour } else { Granularity::Day };
    let spans = custom_spans(custom, granularity, zone);
    let previous = custom_spans(before, granularity, zone);

    let live = custom.to == today;
    let next = if live {
        WindowStep::Disabled
    } else {
        let to = (custom.to + Duration::days(days)).min(today);
        WindowStep::Custom(CustomRange { from: to - Duration::days(days - 1), to })
    };
    let info = WindowInfo {
        label: window_label(&spans, granularity, zone),
        previous_label: format!("previous {}", plural(days, "day")),
        live,
        previous: WindowStep::Custom(before),
        next,
    };
    // `range` is unused for custom windows; the summary carries it anyway.
    Ok(PlannedWindow { range: RangeKey::Days7, granularity, spans, previous, info })
}

fn custom_spans(custom: CustomRange, granularity: Granularity, zone: Tz) -> Vec<BucketSpan> {
    let start = local_midnight(zone, custom.from);
    let end = local_midnight(zone, custom.to + Duration::days(1));
    match granularity {
        Granularity::Day => (0..custom.days())
            .map(|i| day_span(zone, custom.from + Duration::days(i)))
            .collect(),
        _ => {
            let mut spans = Vec::new();
            let mut at = start.timestamp_millis();
            while at < end.timestamp_millis() {
                spans.push(step_span(zone, at, HOUR_MS));
                at += HOUR_MS;
            }
            spans
        }
    }
}

/// Describes a window: "Mar 25 – Mar 31, 2024" for days, "Mar 31, 00:00 –
/// 06:00 CEST" for hours and minutes.
fn window_label(spans: &[BucketSpan], granularity: Granularity, zone: Tz) -> String {
    let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
        return String::new();
    };
    let start = first.start.with_timezone(&zone);
    let end = last.end.with_timezone(&zone);
    match granularity {
        Granularity::Day => {
            let last_day = last.start.with_timezone(&zone).date_naive();
            format!("{} – {}", start.format("%b %-d"), format_day(last_day))
        }
        _ if start.date_naive() == end.date_naive() => {
            format!("{}, {} – {} {}", start.format("%b %-d"), start.format("%H:%M"), end.format("%H:%M"), end.format("%Z"))
        }
        _ => format!("{} – {} {}", start.format("%b %-d, %H:%M"), end.format("%b %-d, %H:%M"), end.format("%Z")),
    }
}

fn format_day(day: NaiveDate) -> String {
    day.format("%b %-d, %Y").to_string()
}

fn range_length_words(range: RangeKey) -> String {
    match range {
        RangeKey::Hour1 => "hour".to_string(),
        RangeKey::Hours6 => "6 hours".to_string(),
        RangeKey::Hours24 => "24 hours".to_string(),
        RangeKey::Days7 => "7 days".to_string(),
        RangeKey::Days30 => "30 days".to_string(),
        RangeKey::Days90 => "90 days".to_string(),
    }
}

fn plural(count: i64, unit: &str) -> String {
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDateTime, TimeZone};
    use chrono_tz::America::Chicago;
    use chrono_tz::Europe::Berlin;

    fn utc(text: &str) -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap();
        Utc.from_utc_datetime(&naive)
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn preset(range: RangeKey, end: &str) -> UsageQuery {
        UsageQuery { range, end: Some(WindowEnd::parse(end).unwrap()), ..Default::default() }
    }

    fn labels(window: &PlannedWindow) -> Vec<&str> {
        window.spans.iter().map(|s| s.label.as_str()).collect()
    }

    const NOW: &str = "2025-06-10 15:20:00";

    #[test]
    fn end_in_chicago_fall_back_keeps_both_one_oclocks() {
        let window = plan_window(&preset(RangeKey::Hours6, "2022-11-06T04:00"), Chicago, utc(NOW)).unwrap();
        assert_eq!(labels(&window), ["23:00", "00:00", "01:00", "01:00", "02:00", "03:00"]);
        assert!(window.spans.iter().all(|s| s.end <= utc(NOW)));
        assert!(!window.info.live);
        assert_eq!(window.info.label, "Nov 5, 23:00 – Nov 6, 04:00 CST");
    }

    #[test]
    fn end_date_in_chicago_week_has_25_hour_day() {
        let window = plan_window(&preset(RangeKey::Days7, "2022-11-06"), Chicago, utc(NOW)).unwrap();
        assert_eq!(labels(&window), ["Oct 31", "Nov 1", "Nov 2", "Nov 3", "Nov 4", "Nov 5", "Nov 6"]);
        let last = window.spans.last().unwrap();
        assert_eq!((last.end - last.start).num_hours(), 25);
        assert_eq!(window.info.label, "Oct 31 – Nov 6, 2022");
        assert_eq!(window.info.previous, WindowStep::End(WindowEnd::Date(day("2022-10-30"))));
        assert_eq!(window.info.next, WindowStep::End(WindowEnd::Date(day("2022-11-13"))));
        assert_eq!(window.previous.last().unwrap().end, window.spans[0].start);
        assert_eq!(window.previous.len(), 7);
    }

    #[test]
    fn end_date_in_berlin_spring_forward() {
        let day_window = plan_window(&preset(RangeKey::Hours24, "2024-03-31"), Berlin, utc(NOW)).unwrap();
        let hours = labels(&day_window);
        assert_eq!(hours.len(), 24);
        assert_eq!(&hours[..4], ["23:00", "00:00", "01:00", "03:00"]);
        assert_eq!(hours[23], "23:00");
        assert_eq!(day_window.spans.last().unwrap().end, utc("2024-03-31 22:00:00"));

        let week = plan_window(&preset(RangeKey::Days7, "2024-03-31"), Berlin, utc(NOW)).unwrap();
        let last = week.spans.last().unwrap();
        assert_eq!(last.label, "Mar 31");
        assert_eq!((last.end - last.start).num_hours(), 23);
    }

    #[test]
    fn skipped_local_time_ends_where_clock_jumped() {
        // 02:30 did not exist in Berlin on 2024-03-31; 03:00 CEST did.
        let window = plan_window(&preset(RangeKey::Hour1, "2024-03-31T02:30"), Berlin, utc(NOW)).unwrap();
        assert_eq!(window.spans.last().unwrap().end, utc("2024-03-31 01:00:00"));
    }

    #[test]
    fn live_window_has_no_next_and_partial_last_bucket() {
        let window = plan_window(&UsageQuery::default(), Tz::UTC, utc(NOW)).unwrap();
        assert!(window.info.live);
        assert_eq!(window.info.next, WindowStep::Disabled);
        assert_eq!(window.info.previous, WindowStep::End(WindowEnd::Date(day("2025-06-03"))));
        assert_eq!(window.info.previous_label, "previous 7 days");
    }

    #[test]
    fn today_as_end_is_the_live_window() {
        let window = plan_window(&preset(RangeKey::Days7, "2025-06-10"), Tz::UTC, utc(NOW)).unwrap();
        assert!(window.info.live);
        assert_eq!(window.spans.last().unwrap().label, "Jun 10");
    }

    #[test]
    fn next_step_near_now_returns_to_live() {
        let window = plan_window(&preset(RangeKey::Days7, "2025-06-05"), Tz::UTC, utc(NOW)).unwrap();
        assert_eq!(window.info.next, WindowStep::Live);
        let hours = plan_window(&preset(RangeKey::Hours6, "2025-06-10T06:00"), Tz::UTC, utc(NOW)).unwrap();
        let expected = DateTime::parse_from_rfc3339("2025-06-10T12:00:00+00:00").unwrap();
        assert_eq!(hours.info.next, WindowStep::End(WindowEnd::Instant(expected)));
        assert_eq!(hours.info.previous_label, "previous 6 hours");
    }

    #[test]
    fn previous_step_of_hours_is_exact_instant() {
        let window = plan_window(&preset(RangeKey::Hours6, "2022-11-06T04:00"), Chicago, utc(NOW)).unwrap();
        let WindowStep::End(WindowEnd::Instant(previous_end)) = window.info.previous else {
            panic!("expected an instant, got {:?}", window.info.previous);
        };
        assert_eq!(previous_end.with_timezone(&Utc), window.spans[0].start);
        let before = plan_window(&UsageQuery { end: Some(WindowEnd::Instant(previous_end)), ..preset(RangeKey::Hours6, "2022-11-06T04:00") }, Chicago, utc(NOW)).unwrap();
        assert_eq!(before.spans.last().unwrap().end, window.spans[0].start);
    }

    #[test]
    fn future_end_is_rejected_with_value() {
        for end in ["2025-06-11", "2025-06-10T16:00", "2025-06-10T16:00+00:00"] {
            let error = plan_window(&preset(RangeKey::Days7, end), Tz::UTC, utc(NOW)).unwrap_err();
            assert!(matches!(error, AppError::BadRequest(_)), "{end}");
            assert!(error.to_string().contains(end), "{end}: {error}");
        }
    }

    #[test]
    fn custom_range_granularity_follows_length() {
        let two_days = CustomRange { from: day("2024-03-30"), to: day("2024-03-31") };
        let query = UsageQuery { custom: Some(two_days), ..Default::default() };
        let window = plan_window(&query, Berlin, utc(NOW)).unwrap();
        assert_eq!(window.granularity, Granularity::Hour);
        assert_eq!(window.spans.len(), 47, "the spring-forward day has 23 hours");
        assert_eq!(window.previous.len(), 48);
        assert_eq!(window.info.previous, WindowStep::Custom(CustomRange { from: day("2024-03-28"), to: day("2024-03-29") }));

        let three_days = CustomRange { from: day("2024-03-29"), to: day("2024-03-31") };
        let window = plan_window(&UsageQuery { custom: Some(three_days), ..Default::default() }, Berlin, utc(NOW)).unwrap();
        assert_eq!(window.granularity, Granularity::Day);
        assert_eq!(labels(&window), ["Mar 29", "Mar 30", "Mar 31"]);
        assert_eq!(window.info.label, "Mar 29 – Mar 31, 2024");
        assert_eq!(window.info.previous_label, "previous 3 days");
        assert_eq!(window.info.next, WindowStep::Custom(CustomRange { from: day("2024-04-01"), to: day("2024-04-03") }));
    }

    #[test]
    fn custom_range_in_future_is_rejected() {
        let future = CustomRange { from: day("2025-06-09"), to: day("2025-06-11") };
        let error = plan_window(&UsageQuery { custom: Some(future), ..Default::default() }, Tz::UTC, utc(NOW)).unwrap_err();
        assert!(error.to_string().contains("2025-06-11"), "{error}");
    }

    #[test]
    fn custom_next_is_clamped_to_today() {
        let custom = CustomRange { from: day("2025-06-01"), to: day("2025-06-05") };
        let window = plan_window(&UsageQuery { custom: Some(custom), ..Default::default() }, Tz::UTC, utc(NOW)).unwrap();
        assert_eq!(window.info.next, WindowStep::Custom(CustomRange { from: day("2025-06-06"), to: day("2025-06-10") }));
    }
}
