//! The usage page's query parameters: `range`, `tz`, `sort` and `dir`.

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

/// The usage page's state as it appears in the URL. `tz` is `None` when the
/// URL names no zone, so the page uses the browser's zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    pub range: RangeKey,
    pub tz: Option<String>,
    pub sort: SortKey,
    pub dir: SortDir,
}

impl Default for UsageQuery {
    fn default() -> Self {
        UsageQuery {
            range: RangeKey::Days7,
            tz: None,
            sort: SortKey::Jobs,
            dir: SortDir::Desc,
        }
    }
}

impl UsageQuery {
    /// Reads the query parameters, defaulting the missing ones. An unknown
    /// value is an error; the time zone is checked by the server.
    pub fn from_params(
        range: Option<&str>,
        tz: Option<&str>,
        sort: Option<&str>,
        dir: Option<&str>,
    ) -> Result<UsageQuery, AppError> {
        let mut query = UsageQuery::default();
        if let Some(range) = range.filter(|v| !v.is_empty()) {
            query.range = RangeKey::parse(range)?;
        }
        if let Some(tz) = tz.filter(|v| !v.is_empty()) {
            query.tz = Some(tz.to_string());
        }
        if let Some(sort) = sort.filter(|v| !v.is_empty()) {
            query.sort = SortKey::parse(sort)?;
            query.dir = query.sort.default_dir();
        }
        if let Some(dir) = dir.filter(|v| !v.is_empty()) {
            query.dir = SortDir::parse(dir)?;
        }
        Ok(query)
    }

    /// Builds the query string for this state, leaving out defaults.
    pub fn to_query_string(&self) -> String {
        let mut pairs = vec![format!("range={}", self.range.as_str())];
        if let Some(tz) = &self.tz {
            pairs.push(format!("tz={}", encode_component(tz)));
        }
        if self.sort != SortKey::Jobs || self.dir != SortDir::Desc {
            pairs.push(format!("sort={}", self.sort.as_str()));
            pairs.push(format!("dir={}", self.dir.as_str()));
        }
        pairs.join("&")
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

    #[test]
    fn range_parse_rejects_unknown_with_list() {
        let err = RangeKey::parse("2w").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("\"2w\""), "{message}");
        assert!(message.contains("1h, 6h, 24h, 7d, 30d, 90d"), "{message}");
    }

    #[test]
    fn query_defaults_to_seven_days_by_jobs() {
        let query = UsageQuery::from_params(None, None, None, None).unwrap();
        assert_eq!(query, UsageQuery::default());
        assert_eq!(query.to_query_string(), "range=7d");
    }

    #[test]
    fn query_round_trips_through_string() {
        let query = UsageQuery::from_params(
            Some("24h"),
            Some("Etc/GMT+5"),
            Some("model"),
            Some("desc"),
        )
        .unwrap();
        assert_eq!(query.to_query_string(), "range=24h&tz=Etc/GMT%2B5&sort=model&dir=desc");
    }

    #[test]
    fn query_sort_without_dir_uses_column_default() {
        let query = UsageQuery::from_params(None, None, Some("model"), None).unwrap();
        assert_eq!(query.dir, SortDir::Asc);
    }

    #[test]
    fn query_rejects_bad_sort_and_dir() {
        let sort = UsageQuery::from_params(None, None, Some("price"), None).unwrap_err();
        assert!(sort.to_string().contains("\"price\""));
        assert!(sort.to_string().contains("success_rate"));
        let dir = UsageQuery::from_params(None, None, None, Some("up")).unwrap_err();
        assert!(dir.to_string().contains("\"up\""));
        assert!(dir.to_string().contains("asc, desc"));
    }
}
