//! The body of `POST /api/v1/jobs`, parsed and validated without a server,
//! so that fuzz targets and property tests call it directly.
//!
//! The body is `{"jobs": [record, …]}` with at most `MAX_BATCH_RECORDS`
//! records. A record has `id` (the platform's job id), `model`, `status`,
//! `submitted_at`, optional `started_at` and `finished_at` (RFC 3339),
//! `gpu_count` and optional `gpu_ms`.

use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};

/// A job's status. It only moves forward: queued, running, then one of the
/// final states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Option<JobStatus> {
        [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }
}

/// One job as the platform reports it. Times are milliseconds since the
/// Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub job_id: String,
    pub model: String,
    pub status: JobStatus,
    pub submitted_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub gpu_count: i64,
    /// GPU time when known; else derived from the run time once finished.
    pub gpu_ms: Option<i64>,
}

impl JobRecord {
    /// Returns the GPU time to store: the reported value, or GPU count ×
    /// run time for a job with both start and finish times.
    pub fn effective_gpu_ms(&self) -> Option<i64> {
        self.gpu_ms.or_else(|| match (self.started_at, self.finished_at) {
            (Some(start), Some(finish)) if finish >= start => Some(self.gpu_count * (finish - start)),
            _ => None,
        })
    }
}

impl JobStatus {
    /// Position in the order statuses move in; the final states share one.
    pub fn rank(self) -> u8 {
        match self {
            JobStatus::Queued => 0,
            JobStatus::Running => 1,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled => 2,
        }
    }
}

/// Records accepted in one request.
pub const MAX_BATCH_RECORDS: usize = 10_000;
/// Maximum body size: 10,000 records of about 400 bytes each, with room.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Maximum length of a job id or model name, in characters.
const MAX_TEXT_LEN: usize = 200;
/// Maximum GPU count one job may report.
const MAX_GPU_COUNT: i64 = 4_096;
/// How far in the future a submission time may lie, for clock skew.
const MAX_CLOCK_SKEW_MS: i64 = 5 * 60_000;

const FIELDS: [&str; 8] =
    ["id", "model", "status", "submitted_at", "started_at", "finished_at", "gpu_count", "gpu_ms"];

/// One problem with one record of a rejected batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordError {
    pub index: usize,
    pub field: String,
    pub message: String,
}

/// Why a request body was rejected: the status, a message for the client,
/// and for invalid records, every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRejection {
    pub status: StatusCode,
    pub message: String,
    pub errors: Option<Vec<RecordError>>,
}

impl BatchRejection {
    fn bad_request(message: String) -> BatchRejection {
        BatchRejection { status: StatusCode::BAD_REQUEST, message, errors: None }
    }

    pub fn too_large() -> BatchRejection {
        BatchRejection {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "The body exceeds {MAX_BODY_BYTES} bytes. Send at most {MAX_BATCH_RECORDS} records per request."
            ),
            errors: None,
        }
    }
}

/// Parses and validates a request body: a JSON object with a `jobs` array
/// of at most `MAX_BATCH_RECORDS` records, each valid at `now`.
pub fn parse_batch(bytes: &[u8], now: DateTime<Utc>) -> Result<Vec<JobRecord>, BatchRejection> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(BatchRejection::too_large());
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|error| BatchRejection::bad_request(format!("The body is not valid JSON: {error}.")))?;
    let Some(jobs) = value.get("jobs").and_then(Value::as_array) else {
        return Err(BatchRejection::bad_request(
            "The body must be a JSON object with a `jobs` array: {\"jobs\": [ … ]}.".to_string(),
        ));
    };
    if jobs.len() > MAX_BATCH_RECORDS {
        return Err(BatchRejection {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("The batch has {} records; the maximum is {MAX_BATCH_RECORDS}. Split it.", jobs.len()),
            errors: None,
        });
    }

    parse_records(jobs, now).map_err(|errors| {
        let message = format!(
            "{} of {} records are invalid; nothing was stored. Fix them and send the batch again.",
            errors.iter().map(|e| e.index).collect::<std::collections::BTreeSet<_>>().len(),
            jobs.len(),
        );
        BatchRejection { status: StatusCode::UNPROCESSABLE_ENTITY, message, errors: Some(errors) }
    })
}

/// Validates every record, returning them all or every problem found.
pub fn parse_records(jobs: &[Value], now: DateTime<Utc>) -> Result<Vec<JobRecord>, Vec<RecordError>> {
    let mut records = Vec::with_capacity(jobs.len());
    let mut errors = Vec::new();
    for (index, job) in jobs.iter().enumerate() {
        match parse_record(index, job, now) {
            Ok(record) => records.push(record),
            Err(mut record_errors) => errors.append(&mut record_errors),
        }
    }
    if errors.is_empty() {
        Ok(records)
    } else {
        Err(errors)
    }
}

fn parse_record(index: usize, job: &Value, now: DateTime<Utc>) -> Result<JobRecord, Vec<RecordError>> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, message: String| {
        errors.push(RecordError { index, field: field.to_string(), message });
    };
    let Some(fields) = job.as_object() else {
        fail("", "must be a JSON object".to_string());
        return Err(errors);
    };

    for name in fields.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        fail(name, format!("unknown field; accepted fields: {}", FIELDS.join(", ")));
    }

    let id = text_field(fields, "id", &mut fail);
    let model = text_field(fields, "model", &mut fail);
    let status = match fields.get("status") {
        None | Some(Value::Null) => {
            fail("status", "missing".to_string());
            None
        }
        Some(value) => {
            let parsed = value.as_str().and_then(JobStatus::parse);
            if parsed.is_none() {
                fail(
                    "status",
                    format!("must be one of queued, running, completed, failed, cancelled; got {}", shorten(value)),
                );
            }
            parsed
        }
    };
    let submitted_at = time_field(fields, "submitted_at", true, &mut fail);
    let started_at = time_field(fields, "started_at", false, &mut fail);
    let finished_at = time_field(fields, "finished_at", false, &mut fail);
    let gpu_count = integer_field(fields, "gpu_count", true, 0, MAX_GPU_COUNT, &mut fail);
    let gpu_ms = integer_field(fields, "gpu_ms", false, 0, i64::MAX, &mut fail);

    if let Some(submitted) = submitted_at {
        if submitted > now.timestamp_millis() + MAX_CLOCK_SKEW_MS {
            fail("submitted_at", "is in the future; send the time the job was submitted".to_string());
        }
        if started_at.is_some_and(|started| started < submitted) {
            fail("started_at", "must not be before submitted_at".to_string());
        }
    }
    if let (Some(finished), Some(earliest)) = (finished_at, started_at.or(submitted_at)) {
        if finished < earliest {
            fail("finished_at", "must not be before started_at or submitted_at".to_string());
        }
    }
    match status {
        Some(JobStatus::Completed | JobStatus::Failed) if finished_at.is_none() => {
            fail("finished_at", "is required when status is completed or failed".to_string());
        }
        Some(JobStatus::Queued | JobStatus::Running) if finished_at.is_some() => {
            fail("finished_at", "must be absent while status is queued or running".to_string());
        }
        _ => {}
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    // Every field below was checked above; a missing one added an error.
    match (id, model, status, submitted_at, gpu_count) {
        (Some(job_id), Some(model), Some(status), Some(submitted_at), Some(gpu_count)) => Ok(JobRecord {
            job_id,
            model,
            status,
            submitted_at,
            started_at,
            finished_at,
            gpu_count,
            gpu_ms,
        }),
        _ => Err(vec![RecordError { index, field: String::new(), message: "incomplete record".to_string() }]),
    }
}

fn text_field(fields: &Map<String, Value>, name: &str, fail: &mut impl FnMut(&str, String)) -> Option<String> {
    match fields.get(name) {
        None | Some(Value::Null) => {
            fail(name, "missing".to_string());
            None
        }
        Some(Value::String(text))
            if !text.trim().is_empty() && text.chars().count() <= MAX_TEXT_LEN && !text.chars().any(char::is_control) =>
        {
            Some(text.clone())
        }
        Some(other) => {
            fail(name, format!("must be a string of 1 to {MAX_TEXT_LEN} printable characters; got {}", shorten(other)));
            None
        }
    }
}

fn time_field(
    fields: &Map<String, Value>,
    name: &str,
    required: bool,
    fail: &mut impl FnMut(&str, String),
) -> Option<i64> {
    match fields.get(name) {
        None | Some(Value::Null) => {
            if required {
                fail(name, "missing".to_string());
            }
            None
        }
        Some(value) => {
            let parsed = value.as_str().and_then(|text| DateTime::parse_from_rfc3339(text).ok());
            if parsed.is_none() {
                fail(
                    name,
                    format!("must be an RFC 3339 date-time such as 2026-12-04T10:00:00Z; got {}", shorten(value)),
                );
            }
            parsed.map(|t| t.timestamp_millis())
        }
    }
}

fn integer_field(
    fields: &Map<String, Value>,
    name: &str,
    required: bool,
    min: i64,
    max: i64,
    fail: &mut impl FnMut(&str, String),
) -> Option<i64> {
    match fields.get(name) {
        None | Some(Value::Null) => {
            if required {
                fail(name, "missing".to_string());
            }
            None
        }
        Some(value) => {
            let parsed = value.as_i64().filter(|n| (min..=max).contains(n));
            if parsed.is_none() {
                let range = if max == i64::MAX { format!("at least {min}") } else { format!("from {min} to {max}") };
                fail(name, format!("must be a whole number {range}; got {}", shorten(value)));
            }
            parsed
        }
    }
}

/// Returns a value as JSON text, cut to 60 characters for error messages.
fn shorten(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 60 {
        return text;
    }
    format!("{}…", text.chars().take(60).collect::<String>())
}

/// Checks the parser's contract on one arbitrary body and panics when it
/// is broken: no panic inside, a 4xx with a message for every rejection,
/// and consistent times in every accepted record. The fuzz target and the
/// tests call it.
pub fn check_any_body(data: &[u8]) {
    let now = DateTime::from_timestamp(1_800_000_000, 0).expect("a valid fixed time");
    match parse_batch(data, now) {
        Err(rejection) => {
            assert!(rejection.status.is_client_error(), "not a 4xx: {rejection:?}");
            assert!(!rejection.message.is_empty(), "no message: {rejection:?}");
        }
        Ok(records) => {
            assert!(records.len() <= MAX_BATCH_RECORDS);
            for record in records {
                let earliest = record.started_at.unwrap_or(record.submitted_at);
                assert!(record.started_at.is_none_or(|started| started >= record.submitted_at), "{record:?}");
                assert!(record.finished_at.is_none_or(|finished| finished >= earliest), "{record:?}");
                assert!((0..=MAX_GPU_COUNT).contains(&record.gpu_count), "{record:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-04T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn valid() -> Value {
        json!({
            "id": "job-1",
            "model": "llama-3-70b",
            "status": "completed",
            "submitted_at": "2026-12-04T10:00:00Z",
            "started_at": "2026-12-04T11:01:00+01:00",
            "finished_at": "2026-12-04T10:30:00Z",
            "gpu_count": 8,
            "gpu_ms": 1_000
        })
    }

    fn errors_of(job: Value) -> Vec<(String, String)> {
        parse_records(&[job], now())
            .unwrap_err()
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    #[test]
    fn valid_record_parses_with_offsets() {
        let records = parse_records(&[valid()], now()).unwrap();
        assert_eq!(records[0].job_id, "job-1");
        assert_eq!(records[0].status, JobStatus::Completed);
        assert_eq!(records[0].submitted_at, 1_796_378_400_000);
    }

    #[test]
    fn started_before_submitted_is_rejected() {
        // 10:01+01:00 is 09:01Z, before the 10:00Z submission.
        let mut job = valid();
        job["started_at"] = json!("2026-12-04T10:01:00+01:00");
        let errors = errors_of(job);
        assert_eq!(errors, [("started_at".to_string(), "must not be before submitted_at".to_string())]);
    }

    #[test]
    fn every_bad_field_is_reported() {
        let job = json!({
            "id": "",
            "status": "done",
            "submitted_at": "yesterday",
            "gpu_count": -1,
            "color": "red"
        });
        let fields: Vec<String> = errors_of(job).into_iter().map(|(field, _)| field).collect();
        for field in ["color", "id", "model", "status", "submitted_at", "gpu_count"] {
            assert!(fields.contains(&field.to_string()), "{field} missing from {fields:?}");
        }
    }

    #[test]
    fn status_and_finish_time_must_match() {
        let mut running = valid();
        running["status"] = json!("running");
        running["started_at"] = json!("2026-12-04T10:01:00Z");
        assert_eq!(errors_of(running)[0].0, "finished_at");

        let mut completed = valid();
        completed["started_at"] = json!("2026-12-04T10:01:00Z");
        completed.as_object_mut().unwrap().remove("finished_at");
        assert_eq!(errors_of(completed)[0].1, "is required when status is completed or failed");
    }

    #[test]
    fn future_submission_is_rejected() {
        let mut job = valid();
        job["submitted_at"] = json!("2026-12-05T10:00:00Z");
        job["started_at"] = json!(null);
        job["finished_at"] = json!("2026-12-05T11:00:00Z");
        assert!(errors_of(job).iter().any(|(field, _)| field == "submitted_at"));
    }

    #[test]
    fn errors_name_the_record_index() {
        let good = valid();
        let bad = json!("not an object");
        let errors = parse_records(&[good.clone(), bad, good], now()).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].index, 1);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Generates any JSON value, nested up to three levels.
        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(Value::from),
                ".{0,80}".prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 32, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::btree_map(".{0,12}", inner, 0..6)
                        .prop_map(|fields| Value::Object(fields.into_iter().collect())),
                ]
            })
        }

        /// Generates a valid record submitted within the last day before `now()`.
        fn valid_record() -> impl Strategy<Value = Value> {
            let statuses = prop_oneof![Just("queued"), Just("running"), Just("completed"), Just("failed"), Just("cancelled")];
            ("[a-zA-Z0-9_-]{1,40}", "[ -~]{0,39}[!-~]", statuses, 60_000i64..86_400_000, 0i64..60_000, 1i64..=4_096)
                .prop_map(|(id, model, status, ago_ms, run_ms, gpu_count)| {
                    let submitted = now() - chrono::Duration::milliseconds(ago_ms);
                    let finished = submitted + chrono::Duration::milliseconds(run_ms);
                    let mut record = json!({
                        "id": id,
                        "model": model,
                        "status": status,
                        "submitted_at": submitted.to_rfc3339(),
                        "gpu_count": gpu_count,
                    });
                    if matches!(status, "completed" | "failed") {
                        record["finished_at"] = json!(finished.to_rfc3339());
                    }
                    record
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_bytes_pass_the_fuzz_check(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
                check_any_body(&bytes);
            }

            #[test]
            fn any_json_is_parsed_or_rejected_with_4xx(value in json_value()) {
                let wrapped = json!({ "jobs": [value.clone()] });
                for body in [value, wrapped] {
                    if let Err(rejection) = parse_batch(body.to_string().as_bytes(), now()) {
                        prop_assert!(rejection.status.is_client_error(), "{rejection:?}");
                        for error in rejection.errors.unwrap_or_default() {
                            prop_assert!(!error.message.is_empty());
                        }
                    }
                }
            }

            #[test]
            fn valid_batches_are_accepted_whole(records in prop::collection::vec(valid_record(), 1..20)) {
                let body = json!({ "jobs": records.clone() }).to_string();
                let parsed = parse_batch(body.as_bytes(), now());
                prop_assert!(parsed.is_ok(), "{parsed:?}");
                prop_assert_eq!(parsed.unwrap().len(), records.len());
            }

            #[test]
            fn wrong_type_is_reported_on_its_field(
                record in valid_record(),
                field in prop::sample::select(vec!["id", "model", "status", "submitted_at", "gpu_count"]),
                replacement in json_value(),
            ) {
                let wrong_type = match field {
                    "gpu_count" => replacement.as_i64().is_none(),
                    _ => !replacement.is_string(),
                };
                prop_assume!(wrong_type);
                let mut record = record;
                record[field] = replacement.clone();

                let errors = parse_records(&[record], now()).unwrap_err();
                let on_field: Vec<&RecordError> = errors.iter().filter(|e| e.field == field).collect();
                prop_assert_eq!(on_field.len(), 1, "{:?}", errors);
                let expected = if replacement.is_null() { "missing".to_string() } else { shorten(&replacement) };
                prop_assert!(on_field[0].message.contains(&expected), "{} does not name {}", on_field[0].message, expected);
            }
        }
    }
}

