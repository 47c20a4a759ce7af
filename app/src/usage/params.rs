//! The usage page's query parameters: `range`, `tz`, `sort` and `dir`.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// A time range selectable in the dropdown, ending now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RangeKey {
    Hour1,
    Hours6,
    Hours24,
    Days7,
    Days30,
    Days90,
}

impl RangeKey {
    pub const ALL: [RangeKey; 6] = [
        RangeKey::Hour1,
        RangeKey::Hours6,
        RangeKey::Hours24,
        RangeKey::Days7,
        RangeKey::Days30,
        RangeKey::Days90,
    ];

    /// The value used in URLs, such as `24h`.
    pub fn as_str(self) -> &'static str {
        match self {
            RangeKey::Hour1 => "1h",
            RangeKey::Hours6 => "6h",
            RangeKey::Hours24 => "24h",
            RangeKey::Days7 => "7d",
            RangeKey::Days30 => "30d",
            RangeKey::Days90 => "90d",
        }
    }

    /// The label in the dropdown.
    pub fn label(self) -> &'static str {
        match self {
            RangeKey::Hour1 => "Last hour",
            RangeKey::Hours6 => "Last 6 hours",
            RangeKey::Hours24 => "Last 24 hours",
            RangeKey::Days7 => "Last 7 days",
            RangeKey::Days30 => "Last 30 days",
            RangeKey::Days90 => "Last 90 days",
        }
    }

    /// Number of buckets the chart draws, the last one still filling.
    pub fn bucket_count(self) -> u32 {
        match self {
            RangeKey::Hour1 => 60,
            RangeKey::Hours6 => 6,
            RangeKey::Hours24 => 24,
            RangeKey::Days7 => 7,
            RangeKey::Days30 => 30,
            RangeKey::Days90 => 90,
        }
    }

    pub fn granularity(self) -> super::Granularity {
        use super::Granularity;
        match self {
            RangeKey::Hour1 => Granularity::Minute,
            RangeKey::Hours6 | RangeKey::Hours24 => Granularity::Hour,
            RangeKey::Days7 | RangeKey::Days30 | RangeKey::Days90 => Granularity::Day,
        }
    }

    /// Parses a URL value, rejecting anything else with the accepted list.
    pub fn parse(value: &str) -> Result<RangeKey, AppError> {
        RangeKey::ALL
            .into_iter()
            .find(|range| range.as_str() == value)
            .ok_or_else(|| {
                AppError::BadRequest(format!(
                    "Unknown range \"{value}\". Accepted ranges: {}.",
                    accepted(RangeKey::ALL.iter().map(|r| r.as_str()))
                ))
            })
    }
}

/// A column of the per-model table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortKey {
    Model,
    Jobs,
    Completed,
    Failed,
    SuccessRate,
    ComputeTime,
}

impl SortKey {
    pub const ALL: [SortKey; 6] = [
        SortKey::Model,
        SortKey::Jobs,
        SortKey::Completed,
        SortKey::Failed,
        SortKey::SuccessRate,
        SortKey::ComputeTime,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Model => "model",
            SortKey::Jobs => "jobs",
            SortKey::Completed => "completed",
            SortKey::Failed => "failed",
            SortKey::SuccessRate => "success_rate",
            SortKey::ComputeTime => "compute_time",
        }
    }

    /// The column header.
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Model => "Model",
            SortKey::Jobs => "Jobs",
            SortKey::Completed => "Completed",
            SortKey::Failed => "Failed",
            SortKey::SuccessRate => "Success Rate",
            SortKey::ComputeTime => "Compute Time",
        }
    }

    /// The direction a first click sorts in: names A to Z, numbers largest
    /// first.
    pub fn default_dir(self) -> SortDir {
        match self {
            SortKey::Model => SortDir::Asc,
            _ => SortDir::Desc,
        }
    }

    pub fn parse(value: &str) -> Result<SortKey, AppError> {
        SortKey::ALL
            .into_iter()
            .find(|key| key.as_str() == value)
            .ok_or_else(|| {
                AppError::BadRequest(format!(
                    "Unknown sort column \"{value}\". Accepted columns: {}.",
                    accepted(SortKey::ALL.iter().map(|k| k.as_str()))
                ))
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortDir {
    Asc,
    Desc,
}

impl SortDir {
    pub fn as_str(self) -> &'static str {
        match self {
            SortDir::Asc => "asc",
            SortDir::Desc => "desc",
        }
    }

    pub fn reversed(self) -> SortDir {
        match self {
            SortDir::Asc => SortDir::Desc,
            SortDir::Desc => SortDir::Asc,
        }
    }

    pub fn parse(value: &str) -> Result<SortDir, AppError> {
        match value {
            "asc" => Ok(SortDir::Asc),
            "desc" => Ok(SortDir::Desc),
            _ => Err(AppError::BadRequest(format!(
                "Unknown sort direction \"{value}\". Accepted directions: asc, desc."
            ))),
        }
    }
}

/// The end of a window, as the `end` parameter gives it in the chosen zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WindowEnd {
    /// `2024-03-31`: the window ends with that local day.
    Date(NaiveDate),
    /// `2024-03-31T05:00`: the window ends at that local time, rounded up to
    /// a bucket edge. A time in a repeated hour means its first occurrence.
    LocalTime(NaiveDateTime),
    /// `2024-03-31T05:00+02:00`: an exact instant, as the page's own
    /// previous and next links write it.
    Instant(DateTime<FixedOffset>),
}

impl WindowEnd {
    /// Parses the `end` parameter, naming the accepted forms when it fails.
    pub fn parse(value: &str) -> Result<WindowEnd, AppError> {
        if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            return Ok(WindowEnd::Date(date));
        }
        if let Ok(time) = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M") {
            return Ok(WindowEnd::LocalTime(time));
        }
        if let Ok(instant) = DateTime::parse_from_str(value, "%Y-%m-%dT%H:%M%:z") {
            return Ok(WindowEnd::Instant(instant));
        }
        Err(AppError::BadRequest(format!(
            "Invalid end \"{value}\". Use a date such as 2024-03-31, or a date and time \
             such as 2024-03-31T05:00, in the chosen time zone."
        )))
    }

    /// Returns the form the URL carries.
    pub fn as_param(&self) -> String {
        match self {
            WindowEnd::Date(date) => date.format("%Y-%m-%d").to_string(),
            WindowEnd::LocalTime(time) => time.format("%Y-%m-%dT%H:%M").to_string(),
            WindowEnd::Instant(instant) => instant.format("%Y-%m-%dT%H:%M%:z").to_string(),
        }
    }
}

/// Maximum length of a custom range, in days.
pub const MAX_CUSTOM_DAYS: i64 = 366;

/// A custom range: whole local days from `from` to `to`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl CustomRange {
    /// Checks the `from` and `to` parameters: dates, in order, at most
    /// `MAX_CUSTOM_DAYS` days.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<CustomRange, AppError> {
        let date = |name: &str, value: Option<&str>| match value.filter(|v| !v.is_empty()) {
            None => Err(AppError::BadRequest(format!(
                "A custom range needs `{name}`, a date such as 2024-03-01."
            ))),
            Some(value) => NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
                AppError::BadRequest(format!(
                    "Invalid {name} \"{value}\". Use a date such as 2024-03-01."
                ))
            }),
        };
        let range = CustomRange { from: date("from", from)?, to: date("to", to)? };
        if range.from > range.to {
            return Err(AppError::BadRequest(format!(
                "The custom range starts ({}) after it ends ({}). Swap the dates.",
                range.from, range.to
            )));
        }
        if range.days() > MAX_CUSTOM_DAYS {
            return Err(AppError::BadRequest(format!(
                "The custom range from {} to {} has {} days; the maximum is {MAX_CUSTOM_DAYS}.",
                range.from,
                range.to,
                range.days()
            )));
        }
        Ok(range)
    }

    /// Number of days in the range, both ends included.
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }
}

/// The usage page's state as it appears in the URL. `tz` is `None` when the
/// URL names no zone, so the page uses the browser's zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    /// The preset range; ignored while `custom` is set.
    pub range: RangeKey,
    pub tz: Option<String>,
    pub sort: SortKey,
    pub dir: SortDir,
    /// The end of a preset range; `None` means now.
    pub end: Option<WindowEnd>,
    /// Set by `range=custom` with `from` and `to`.
    pub custom: Option<CustomRange>,
    /// Whether the table shows the change against the previous window.
    pub compare: bool,
    /// Whether the table lists every model (`models=all`) rather than the
    /// first `TOP_MODELS` and one row for the rest.
    pub all_models: bool,
}

impl Default for UsageQuery {
    fn default() -> Self {
        UsageQuery {
            range: RangeKey::Days7,
            tz: None,
            sort: SortKey::Jobs,
            dir: SortDir::Desc,
            end: None,
            custom: None,
            compare: false,
            all_models: false,
        }
    }
}

impl UsageQuery {
    /// Reads the query parameters through `param`, defaulting the missing
    /// ones. An unknown value is an error; the time zone, and whether `end`
    /// lies in the future, are checked by the server, which has the zone.
    pub fn from_params<'a>(param: impl Fn(&str) -> Option<&'a str>) -> Result<UsageQuery, AppError> {
        let get = |name: &str| param(name).filter(|v| !v.is_empty());
        let mut query = UsageQuery::default();

        match get("range") {
            Some("custom") => query.custom = Some(CustomRange::parse(get("from"), get("to"))?),
            Some(range) => query.range = RangeKey::parse(range).map_err(|_| {
                AppError::BadRequest(format!(
                    "Unknown range \"{range}\". Accepted ranges: {}, custom.",
                    accepted(RangeKey::ALL.iter().map(|r| r.as_str()))
                ))
            })?,
            None => {}
        }
        // `from` and `to` count only with range=custom, and `end` only
        // without it, so a form can carry all of them while switching.
        if let Some(end) = get("end").filter(|_| query.custom.is_none()) {
            query.end = Some(WindowEnd::parse(end)?);
        }
        if let Some(tz) = get("tz") {
            query.tz = Some(tz.to_string());
        }
        if let Some(sort) = get("sort") {
            query.sort = SortKey::parse(sort)?;
            query.dir = query.sort.default_dir();
        }
        if let Some(dir) = get("dir") {
            query.dir = SortDir::parse(dir)?;
        }
        query.compare = switch("compare", get("compare"), ["0", "1"])?;
        query.all_models = switch("models", get("models"), ["top", "all"])?;
        Ok(query)
    }

    /// Builds the query string for this state, leaving out defaults.
    pub fn to_query_string(&self) -> String {
        let mut pairs = Vec::new();
        match &self.custom {
            Some(custom) => {
                pairs.push("range=custom".to_string());
                pairs.push(format!("from={}", custom.from.format("%Y-%m-%d")));
                pairs.push(format!("to={}", custom.to.format("%Y-%m-%d")));
            }
            None => pairs.push(format!("range={}", self.range.as_str())),
        }
        if let Some(end) = &self.end {
            pairs.push(format!("end={}", encode_component(&end.as_param())));
        }
        if let Some(tz) = &self.tz {
            pairs.push(format!("tz={}", encode_component(tz)));
        }
        if self.sort != SortKey::Jobs || self.dir != SortDir::Desc {
            pairs.push(format!("sort={}", self.sort.as_str()));
            pairs.push(format!("dir={}", self.dir.as_str()));
        }
        if self.compare {
            pairs.push("compare=1".to_string());
        }
        if self.all_models {
            pairs.push("models=all".to_string());
        }
        pairs.join("&")
    }
}

/// Parses the parameter `name` that takes one of two `values`: false for
/// the first, which is also the default, and true for the second.
fn switch(name: &str, value: Option<&str>, values: [&str; 2]) -> Result<bool, AppError> {
    match value {
        None => Ok(false),
        Some(value) if value == values[0] => Ok(false),
        Some(value) if value == values[1] => Ok(true),
        Some(other) => Err(AppError::BadRequest(format!(
            "Invalid {name} \"{other}\". Accepted values: {}, {}.",
            values[0], values[1]
        ))),
    }
}

fn accepted<'a>(values: impl Iterator<Item = &'a str>) -> String {
    values.collect::<Vec<_>>().join(", ")
}

/// Percent-encodes a query value. Zone names only need `+` and a few
/// others escaped, but any string is handled.
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&'static str, &'static str)]) -> Result<UsageQuery, AppError> {
        let pairs = pairs.to_vec();
        UsageQuery::from_params(move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v))
    }

    #[test]
    fn end_accepts_date_local_time_and_instant() {
        let date = params(&[("end", "2024-03-31")]).unwrap();
        assert_eq!(date.end, Some(WindowEnd::Date(NaiveDate::from_ymd_opt(2024, 3, 31).unwrap())));
        let local = params(&[("range", "24h"), ("end", "2022-11-06T01:30")]).unwrap();
        assert!(matches!(local.end, Some(WindowEnd::LocalTime(_))));
        let instant = params(&[("range", "6h"), ("end", "2022-11-06T01:00-06:00")]).unwrap();
        assert_eq!(instant.end.unwrap().as_param(), "2022-11-06T01:00-06:00");
        assert_eq!(instant.to_query_string(), "range=6h&end=2022-11-06T01%3A00-06%3A00");
    }

    #[test]
    fn end_rejects_unparseable_value() {
        let error = params(&[("end", "last tuesday")]).unwrap_err().to_string();
        assert!(error.contains("\"last tuesday\""), "{error}");
        assert!(error.contains("2024-03-31T05:00"), "{error}");
    }

    #[test]
    fn custom_range_round_trips() {
        let query = params(&[("range", "custom"), ("from", "2024-03-01"), ("to", "2024-03-31")]).unwrap();
        assert_eq!(query.custom.unwrap().days(), 31);
        assert_eq!(query.to_query_string(), "range=custom&from=2024-03-01&to=2024-03-31");
    }

    #[test]
    fn custom_range_rejects_bad_input() {
        let cases = [
            (vec![("range", "custom"), ("from", "2024-03-31"), ("to", "2024-03-01")], "after it ends"),
            (vec![("range", "custom"), ("from", "2023-01-01"), ("to", "2024-03-01")], "the maximum is 366"),
            (vec![("range", "custom"), ("from", "2024-02-30"), ("to", "2024-03-01")], "\"2024-02-30\""),
            (vec![("range", "custom"), ("to", "2024-03-01")], "needs `from`"),
            (vec![("compare", "yes")], "\"yes\""),
            (vec![("models", "50")], "\"50\""),
        ];
        for (pairs, expected) in cases {
            let pairs: Vec<(&'static str, &'static str)> = pairs;
            let error = params(&pairs).unwrap_err().to_string();
            assert!(error.contains(expected), "{pairs:?}: {error}");
        }
    }

    #[test]
    fn window_parameters_apply_only_to_their_kind() {
        let preset = params(&[("range", "7d"), ("from", "junk"), ("to", "2024-03-02")]).unwrap();
        assert_eq!(preset.custom, None);
        let custom =
            params(&[("range", "custom"), ("from", "2024-03-01"), ("to", "2024-03-02"), ("end", "junk")]).unwrap();
        assert_eq!(custom.end, None);
    }

    #[test]
    fn custom_range_of_366_days_is_accepted() {
        let query = params(&[("range", "custom"), ("from", "2024-01-01"), ("to", "2024-12-31")]).unwrap();
        assert_eq!(query.custom.unwrap().days(), 366);
    }

    #[test]
    fn range_parse_rejects_unknown_with_list() {
        let err = RangeKey::parse("2w").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("\"2w\""), "{message}");
        assert!(message.contains("1h, 6h, 24h, 7d, 30d, 90d"), "{message}");
    }

    #[test]
    fn query_defaults_to_seven_days_by_jobs() {
        let query = UsageQuery::from_params(|_| None).unwrap();
        assert_eq!(query, UsageQuery::default());
        assert_eq!(query.to_query_string(), "range=7d");
    }

    #[test]
    fn query_round_trips_through_string() {
        let query = params(&[("range", "24h"), ("tz", "Etc/GMT+5"), ("sort", "model"), ("dir", "desc")]).unwrap();
        assert_eq!(query.to_query_string(), "range=24h&tz=Etc/GMT%2B5&sort=model&dir=desc");
    }

    #[test]
    fn query_all_models_round_trips() {
        let query = params(&[("range", "30d"), ("models", "all")]).unwrap();
        assert!(query.all_models);
        assert_eq!(query.to_query_string(), "range=30d&models=all");
    }

    #[test]
    fn query_sort_without_dir_uses_column_default() {
        let query = params(&[("sort", "model")]).unwrap();
        assert_eq!(query.dir, SortDir::Asc);
    }

    #[test]
    fn query_rejects_bad_sort_and_dir() {
        let sort = params(&[("sort", "price")]).unwrap_err();
        assert!(sort.to_string().contains("\"price\""));
        assert!(sort.to_string().contains("success_rate"));
        let dir = params(&[("dir", "up")]).unwrap_err();
        assert!(dir.to_string().contains("\"up\""));
        assert!(dir.to_string().contains("asc, desc"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => ".{1,40}",
                1 => prop::sample::select(vec!["7d", "custom", "asc", "jobs", "1", "all", "2026-01-01", "2026-01-01T10:00"])
                    .prop_map(str::to_string),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn bad_value_is_named(
                name in prop::sample::select(vec!["range", "end", "sort", "dir", "compare", "models"]),
                value in value(),
            ) {
                let result = UsageQuery::from_params(|key| (key == name).then_some(value.as_str()));
                match result {
                    Ok(_) => {}
                    Err(AppError::BadRequest(message)) => {
                        prop_assert!(message.contains(value.as_str()), "{name}={value:?}: {message}");
                    }
                    Err(other) => prop_assert!(false, "{name}={value:?}: not a 400: {other:?}"),
                }
            }

            #[test]
            fn bad_custom_dates_are_named(from in value(), to in value()) {
                let result = UsageQuery::from_params(|key| match key {
                    "range" => Some("custom"),
                    "from" => Some(from.as_str()),
                    "to" => Some(to.as_str()),
                    _ => None,
                });
                match result {
                    Ok(query) => prop_assert!(query.custom.is_some()),
                    Err(AppError::BadRequest(message)) => prop_assert!(
                        message.contains(from.as_str()) || message.contains(to.as_str()),
                        "from={from:?} to={to:?}: {message}"
                    ),
                    Err(other) => prop_assert!(false, "not a 400: {other:?}"),
                }
            }

            #[test]
            fn parsed_query_round_trips(values in prop::collection::vec(prop::option::of(value()), 7)) {
                let names = ["range", "end", "sort", "dir", "compare", "models", "tz"];
                let pairs: Vec<(&str, String)> =
                    names.iter().zip(&values).filter_map(|(n, v)| v.clone().map(|v| (*n, v))).collect();
                let Ok(query) = UsageQuery::from_params(|key| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str()))
                else {
                    return Ok(());
                };
                let text = query.to_query_string();
                let decoded: Vec<(String, String)> = text
                    .split('&')
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                        (name.to_string(), decode_component(value))
                    })
                    .collect();
                let again = UsageQuery::from_params(|key| decoded.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()));
                prop_assert_eq!(again, Ok(query), "through {}", text);
            }
        }

        /// Decodes `%XX` escapes, the inverse of `encode_component`.
        fn decode_component(text: &str) -> String {
            let bytes = text.as_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' && i + 2 < bytes.len() {
                    if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                }
                out.push(bytes[i]);
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        }
    }
}

