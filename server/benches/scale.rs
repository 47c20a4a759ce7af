//! `make bench`: the usage summary, ingestion and HTTP load with one
//! organization of 10 million jobs, on SQLite and PostgreSQL, each figure
//! beside the plain way of doing the same. Writes BENCHMARKS.md.
//!
//! Settings (environment):
//! - `CASOLA_BENCH_JOBS`: jobs of the large organization (10,000,000).
//! - `CASOLA_BENCH_BACKENDS`: `sqlite,postgres` (both).
//! - `CASOLA_BENCH_POSTGRES_URL`: admin URL of a PostgreSQL cluster to
//!   create the benchmark database in; `scripts/bench.sh` starts one.
//! - `CASOLA_BENCH_DIR`: folder for the SQLite file and scratch files.
//! - `CASOLA_BENCH_SECONDS`: length of the HTTP load (30).
//! - `CASOLA_BENCH_OUT`: the report (BENCHMARKS.md).

use std::fmt::Write as _;

use app::db::Placeholders;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use app::usage::counts::CountSource;
use app::usage::ssr::window_summary_from;
use app::usage::window::plan_window;
use app::usage::{RangeKey, UsageQuery};
use casola_server::database::{self, Backend};
use casola_server::jobs::{upsert_jobs, JobRecord, JobStatus};
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::AnyPool;

const DAY_MS: i64 = 86_400_000;
const MODELS: usize = 50;
const SMALL_ORGS: usize = 100;
const SMALL_ORG_JOBS: usize = 1_000;
/// The zone of every summary: UTC+05:45, so day and hour buckets start at a
/// quarter hour and need the most pieces.
const ZONE: Tz = chrono_tz::Asia::Kathmandu;
const BATCH: usize = 1_000;
/// Batches per ingestion run, and runs per method.
const INGEST_BATCHES: usize = 100;
const INGEST_RUNS: usize = 3;
/// Concurrent HTTP clients sending batches.
const INGEST_CLIENTS: usize = 4;
/// Time between the submissions of consecutive jobs of an in-order run.
const INGEST_STEP_MS: i64 = 10;

/// The order in time of the jobs in an ingestion run's batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// Each batch contains the next 1,000 jobs in submission order, as a
    /// platform reports them, so new index entries go at the end.
    InOrder,
    /// Every batch spreads its jobs over the same 17 minutes, one second
    /// apart. Each batch then adds entries across the whole time index of
    /// its organization, which grows with every batch: the worst case.
    Interleaved,
}

impl Arrival {
    const ALL: [Arrival; 2] = [Arrival::InOrder, Arrival::Interleaved];

    fn name(self) -> &'static str {
        match self {
            Arrival::InOrder => "in-order",
            Arrival::Interleaved => "interleaved",
        }
    }

    /// Returns when job `job` of batch `batch` of run `run` was submitted,
    /// for runs that start at `start_ms`.
    fn submitted_ms(self, start_ms: i64, run: usize, batch: usize, job: usize) -> i64 {
        match self {
            Arrival::InOrder => start_ms + (((run * INGEST_BATCHES + batch) * BATCH + job) as i64) * INGEST_STEP_MS,
            Arrival::Interleaved => start_ms + job as i64 * 1_000,
        }
    }
}
const LOAD_EMAIL: &str = "load@example.com";
const PASSWORD: &str = "bench-password-not-secret";
/// The workspace folder; cargo runs benchmarks in the package's folder.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

struct Config {
    jobs: usize,
    backends: Vec<Backend>,
    postgres_url: Option<String>,
    dir: PathBuf,
    load_seconds: u64,
    out: PathBuf,
}

impl Config {
    fn from_env() -> Config {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let backends = var("CASOLA_BENCH_BACKENDS")
            .unwrap_or_else(|| "sqlite,postgres".to_string())
            .split(',')
            .map(|name| match name.trim() {
                "sqlite" => Backend::Sqlite,
                "postgres" => Backend::Postgres,
                other => panic!("CASOLA_BENCH_BACKENDS: unknown backend {other:?}; use sqlite, postgres or both"),
            })
            .collect();
        Config {
            jobs: var("CASOLA_BENCH_JOBS").map_or(10_000_000, |v| v.parse().expect("CASOLA_BENCH_JOBS is a count")),
            backends,
            postgres_url: var("CASOLA_BENCH_POSTGRES_URL"),
            dir: var("CASOLA_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from),
            load_seconds: var("CASOLA_BENCH_SECONDS").map_or(30, |v| v.parse().expect("CASOLA_BENCH_SECONDS is a number")),
            out: var("CASOLA_BENCH_OUT").map_or_else(|| Path::new(ROOT).join("BENCHMARKS.md"), PathBuf::from),
        }
    }
}

/// Median, minimum and maximum of some measurements.
#[derive(Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Spread {
        values.sort_by(f64::total_cmp);
        Spread { median: values[values.len() / 2], min: values[0], max: values[values.len() - 1] }
    }

    fn ms(self) -> String {
        format!("{:.2} ({:.2}–{:.2})", self.median, self.min, self.max)
    }

    fn rate(self) -> String {
        format!("{:.0} ({:.0}–{:.0})", self.median, self.min, self.max)
    }
}

struct SummaryRow {
    range: RangeKey,
    counts: Spread,
    jobs: Spread,
    jobs_in_window: u64,
}

struct LoadResult {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    errors: u64,
}

struct BackendReport {
    backend: Backend,
    version: String,
    generate_seconds: f64,
    summaries: Vec<SummaryRow>,
    /// Jobs per second through the API and with plain inserts, in the
    /// order of `Arrival::ALL`.
    ingest_http: Vec<Spread>,
    ingest_plain: Vec<Spread>,
    /// With the one-second summary cache, the default.
    load: LoadResult,
    /// With `CASOLA_USAGE_CACHE_MS=0`: every request reads the database.
    load_uncached: LoadResult,
    peak_memory_mb: f64,
}

#[tokio::main]
async fn main() {
    let config = Config::from_env();
    // The admin connection for PostgreSQL opens before `database::connect`.
    sqlx::any::install_default_drivers();
    std::fs::create_dir_all(&config.dir).expect("create the benchmark folder");
    let started = Instant::now();
    let mut reports = Vec::new();
    for &backend in &config.backends {
        reports.push(bench_backend(&config, backend).await);
    }
    let report = render(&config, &reports, started.elapsed());
    std::fs::write(&config.out, report).expect("write the report");
    println!("wrote {}", config.out.display());
}

async fn bench_backend(config: &Config, backend: Backend) -> BackendReport {
    let name = backend_name(backend);
    let url = match backend {
        Backend::Sqlite => {
            let path = config.dir.join("bench.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            format!("sqlite://{}?mode=rwc", path.display())
        }
        Backend::Postgres => fresh_postgres_database(config).await,
    };
    let pool = database::connect(&SecretString::from(url.clone())).await.expect("connect to the benchmark database");
    database::migrate(&pool, backend).await.expect("migrate the benchmark database");
    let version = server_version(&pool, backend).await;

    println!("[{name}] generating {} jobs", config.jobs);
    let now = Utc::now();
    let generated = Instant::now();
    let big = generate(&pool, config.jobs, now).await;
    let generate_seconds = generated.elapsed().as_secs_f64();
    println!("[{name}] generated in {generate_seconds:.0} s");
    if backend == Backend::Postgres {
        sqlx::query("ANALYZE").execute(&pool).await.expect("analyze");
    }

    let summaries = bench_summaries(&pool, big, now, name).await;

    let port = free_port();
    let mut server = start_server(&url, port, None).await;
    let base = format!("http://127.0.0.1:{port}");

    println!("[{name}] ingestion");
    let mut ingest_http = Vec::new();
    let mut ingest_plain = Vec::new();
    for arrival in Arrival::ALL {
        ingest_http.push(bench_ingest_http(&pool, &base, arrival).await);
        ingest_plain.push(bench_ingest_plain(&pool, arrival).await);
    }

    casola_server::accounts::create_user(&pool, LOAD_EMAIL, "Load", PASSWORD).await.unwrap();
    casola_server::accounts::add_member(&pool, "big", LOAD_EMAIL, app::auth::Role::Member).await.unwrap();
    println!("[{name}] HTTP load for {} s", config.load_seconds);
    let load = bench_load(config, &base).await;
    let peak_memory_mb = peak_memory_mb(server.id().expect("the server runs"));
    server.start_kill().expect("stop the server");
    let _ = server.wait().await;

    println!("[{name}] HTTP load for {} s without the summary cache", config.load_seconds);
    let port = free_port();
    let mut server = start_server(&url, port, Some("0")).await;
    let load_uncached = bench_load(config, &format!("http://127.0.0.1:{port}")).await;
    server.start_kill().expect("stop the server");
    let _ = server.wait().await;
    pool.close().await;

    BackendReport {
        backend,
        version,
        generate_seconds,
        summaries,
        ingest_http,
        ingest_plain,
        load,
        load_uncached,
        peak_memory_mb,
    }
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    }
}

async fn fresh_postgres_database(config: &Config) -> String {
    let admin_url = config
        .postgres_url
        .as_deref()
        .expect("CASOLA_BENCH_POSTGRES_URL is not set; run `make bench`, which starts a PostgreSQL cluster");
    let admin = AnyPool::connect(admin_url).await.expect("connect to the PostgreSQL cluster");
    sqlx::query("DROP DATABASE IF EXISTS casola_bench").execute(&admin).await.expect("drop the old database");
    sqlx::query("CREATE DATABASE casola_bench").execute(&admin).await.expect("create the database");
    admin.close().await;
    let (base, _) = admin_url.rsplit_once('/').expect("the URL ends with /DATABASE");
    format!("{base}/casola_bench")
}

async fn server_version(pool: &AnyPool, backend: Backend) -> String {
    let sql = match backend {
        Backend::Sqlite => "SELECT 'SQLite ' || sqlite_version()",
        Backend::Postgres => "SELECT 'PostgreSQL ' || current_setting('server_version')",
    };
    sqlx::query_scalar(sql).fetch_one(pool).await.expect("read the database version")
}

/// Stores the large organization's jobs over the 90 days before `now` and
/// the small organizations', through the product's write path. Returns the
/// large organization's id.
async fn generate(pool: &AnyPool, jobs: usize, now: DateTime<Utc>) -> i64 {
    let big = casola_server::accounts::create_org(pool, "big", "Big GPU Lab", "Asia/Kathmandu").await.unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let end_ms = now.timestamp_millis();
    let start_ms = end_ms - 90 * DAY_MS;
    let step = (90 * DAY_MS) as f64 / jobs as f64;

    let mut batch = Vec::with_capacity(10_000);
    for n in 0..jobs {
        let submitted = start_ms + (n as f64 * step) as i64;
        batch.push(job(&mut rng, format!("big-{n:08}"), submitted, end_ms));
        if batch.len() == 10_000 {
            upsert_jobs(pool, big, &batch).await.expect("store generated jobs");
            batch.clear();
        }
        if n > 0 && n % 1_000_000 == 0 {
            println!("  {n} jobs");
        }
    }
    upsert_jobs(pool, big, &batch).await.expect("store generated jobs");

    for org in 0..SMALL_ORGS {
        let id = casola_server::accounts::create_org(pool, &format!("small-{org}"), "Small Lab", "UTC").await.unwrap();
        let small: Vec<JobRecord> = (0..SMALL_ORG_JOBS)
            .map(|n| {
                let submitted = start_ms + rng.gen_range(0..90 * DAY_MS);
                job(&mut rng, format!("small-{n}"), submitted, end_ms)
            })
            .collect();
        upsert_jobs(pool, id, &small).await.expect("store generated jobs");
    }
    big
}

/// Makes one plausible job: a few models take most jobs, most jobs
/// complete, and the last ten minutes' jobs are still queued or running.
fn job(rng: &mut StdRng, job_id: String, submitted: i64, end_ms: i64) -> JobRecord {
    let model = (MODELS as f64 * rng.gen::<f64>().powi(2)) as usize;
    let started = submitted + rng.gen_range(0..60_000);
    let finished = started + rng.gen_range(10_000..7_200_000);
    let status = if submitted > end_ms - 600_000 {
        [JobStatus::Queued, JobStatus::Running][rng.gen_range(0..2)]
    } else {
        match rng.gen_range(0..100) {
            0..88 => JobStatus::Completed,
            88..96 => JobStatus::Failed,
            _ => JobStatus::Cancelled,
        }
    };
    let done = !matches!(status, JobStatus::Queued | JobStatus::Running);
    JobRecord {
        job_id,
        model: format!("model-{model:02}"),
        status,
        submitted_at: submitted,
        started_at: (status != JobStatus::Queued).then_some(started),
        finished_at: done.then_some(finished),
        gpu_count: [1, 1, 1, 2, 4, 8][rng.gen_range(0..6)],
        gpu_ms: None,
    }
}

/// Times the usage summary of every range through the function the server
/// function calls, from the counts and from the jobs table alone, and
/// checks that both give the same summary.
async fn bench_summaries(pool: &AnyPool, org_id: i64, now: DateTime<Utc>, name: &str) -> Vec<SummaryRow> {
    let mut rows = Vec::new();
    for range in RangeKey::ALL {
        let query = UsageQuery { range, ..Default::default() };
        let window = plan_window(&query, ZONE, now).unwrap();
        let time = |source: CountSource, runs: usize| {
            let window = &window;
            async move {
                let mut times = Vec::new();
                let mut last = None;
                for _ in 0..runs {
                    let started = Instant::now();
                    let summary = window_summary_from(pool, org_id, window, ZONE, now, source).await.unwrap();
                    times.push(started.elapsed().as_secs_f64() * 1_000.0);
                    last = Some(summary);
                }
                (Spread::of(times), last.unwrap())
            }
        };
        // One run of each first, so both start with warm caches.
        time(CountSource::Counts, 1).await;
        time(CountSource::Jobs, 1).await;
        let (counts, fast) = time(CountSource::Counts, 31).await;
        let (jobs, plain) = time(CountSource::Jobs, 5).await;
        assert_eq!(fast, plain, "{range:?}: the counts and the jobs table disagree");
        println!(
            "[{name}] {}: counts {} ms, jobs table {} ms, {} jobs",
            range.as_str(),
            counts.ms(),
            jobs.ms(),
            fast.totals.jobs
        );
        rows.push(SummaryRow { range, counts, jobs, jobs_in_window: fast.totals.jobs });
    }
    rows
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the release server on `port`, with `CASOLA_USAGE_CACHE_MS` set
/// to `cache_ms` if given.
async fn start_server(url: &str, port: u16, cache_ms: Option<&str>) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_casola"));
    if let Some(ms) = cache_ms {
        command.env("CASOLA_USAGE_CACHE_MS", ms);
    }
    let server = command
        .env("DATABASE_URL", url)
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("LEPTOS_OUTPUT_NAME", "casola")
        .env("LEPTOS_SITE_ROOT", format!("{ROOT}/target/site"))
        .env("LEPTOS_ENV", "PROD")
        .env("CASOLA_ENV", "development")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the casola binary");
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if client.get(format!("http://127.0.0.1:{port}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not become ready on port {port}");
}

/// Builds the JSON body of batch `batch` of run `run`: jobs submitted from
/// `start_ms` in the order of `arrival`, with their status at `end_ms`.
fn ingest_json(arrival: Arrival, run: usize, batch: usize, start_ms: i64, end_ms: i64) -> Value {
    let mut rng = StdRng::seed_from_u64(batch as u64);
    let jobs: Vec<Value> = (0..BATCH)
        .map(|i| {
            let submitted = arrival.submitted_ms(start_ms, run, batch, i);
            let record = job(&mut rng, format!("http-{run}-{batch}-{i}"), submitted, end_ms);
            let time = |ms: i64| {
                DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(SecondsFormat::Millis, true)
            };
            json!({
                "id": record.job_id,
                "model": record.model,
                "status": record.status.as_str(),
                "submitted_at": time(record.submitted_at),
                "started_at": record.started_at.map(time),
                "finished_at": record.finished_at.map(time),
                "gpu_count": record.gpu_count,
            })
        })
        .collect();
    json!({ "jobs": jobs })
}

/// Jobs per second through `POST /api/v1/jobs`, batches of 1,000 from
/// several clients at once, into an organization of its own.
async fn bench_ingest_http(pool: &AnyPool, base: &str, arrival: Arrival) -> Spread {
    let slug = format!("ingest-http-{}", arrival.name());
    casola_server::accounts::create_org(pool, &slug, "Ingest", "UTC").await.unwrap();
    let key = app::api_keys::ssr::create_key(pool, casola_org(pool, &slug).await, "bench").await.unwrap();
    let client = reqwest::Client::new();
    let end_ms = Utc::now().timestamp_millis();
    let start_ms = end_ms - 3_600_000;
    let mut rates = Vec::new();
    for run in 0..INGEST_RUNS {
        // Bodies are made before the clock starts; only sending is timed.
        let bodies: Vec<String> = (0..INGEST_BATCHES)
            .map(|b| ingest_json(arrival, run, b, start_ms, end_ms).to_string())
            .collect();
        let bodies = std::sync::Arc::new(bodies);
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let mut clients = Vec::new();
        for _ in 0..INGEST_CLIENTS {
            let (client, bodies, next, key) = (client.clone(), bodies.clone(), next.clone(), key.clone());
            let url = format!("{base}/api/v1/jobs");
            clients.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { break };
                    let response = client
                        .post(&url)
                        .bearer_auth(&key)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("send a batch");
                    assert_eq!(response.status(), 200, "batch {i}: {}", response.text().await.unwrap_or_default());
                }
            }));
        }
        for client in clients {
            client.await.unwrap();
        }
        rates.push((INGEST_BATCHES * BATCH) as f64 / started.elapsed().as_secs_f64());
    }
    Spread::of(rates)
}

async fn casola_org(pool: &AnyPool, slug: &str) -> i64 {
    app::api_keys::ssr::org_id_of(pool, slug).await.unwrap()
}

/// Jobs per second with plain multi-row inserts of 1,000 rows into the jobs
/// table, one transaction each, with no counts and no HTTP.
async fn bench_ingest_plain(pool: &AnyPool, arrival: Arrival) -> Spread {
    let slug = format!("ingest-plain-{}", arrival.name());
    let org_id = casola_server::accounts::create_org(pool, &slug, "Ingest", "UTC").await.unwrap();
    // The placeholders suited to the backend, as the product writes them.
    let conn = pool.acquire().await.unwrap();
    let mut params = Placeholders::for_connection(&conn);
    drop(conn);
    let tuples: Vec<String> = (0..BATCH).map(|_| params.tuple(10)).collect();
    let sql = format!(
        "INSERT INTO jobs (org_id, job_id, model, status, submitted_at, started_at, finished_at, \
         gpu_count, gpu_ms, updated_at) VALUES {}",
        tuples.join(", ")
    );
    let end_ms = Utc::now().timestamp_millis();
    let start_ms = end_ms - 3_600_000;
    let mut rates = Vec::new();
    for run in 0..INGEST_RUNS {
        let mut rng = StdRng::seed_from_u64(run as u64);
        let batches: Vec<Vec<JobRecord>> = (0..INGEST_BATCHES)
            .map(|b| {
                (0..BATCH)
                    .map(|i| job(&mut rng, format!("plain-{run}-{b}-{i}"), arrival.submitted_ms(start_ms, run, b, i), end_ms))
                    .collect()
            })
            .collect();
        let started = Instant::now();
        for batch in &batches {
            let mut query = sqlx::query(&sql);
            for job in batch {
                query = query
                    .bind(org_id)
                    .bind(job.job_id.as_str())
                    .bind(job.model.as_str())
                    .bind(job.status.as_str())
                    .bind(job.submitted_at)
                    .bind(job.started_at)
                    .bind(job.finished_at)
                    .bind(job.gpu_count)
                    .bind(job.effective_gpu_ms())
                    .bind(0_i64);
            }
            let mut tx = pool.begin().await.unwrap();
            query.execute(&mut *tx).await.expect("plain insert");
            tx.commit().await.unwrap();
        }
        rates.push((INGEST_BATCHES * BATCH) as f64 / started.elapsed().as_secs_f64());
    }
    Spread::of(rates)
}

/// Signs in as a member of the large organization and loads the usage
/// summary server function with wrk: 32 connections, mixed ranges.
async fn bench_load(config: &Config, base: &str) -> LoadResult {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    // The sign-in form's CSRF token comes from the `casola_csrf` cookie.
    let pre_session = app::auth::ssr::new_token();
    let response = client
        .post(format!("{base}/login"))
        .header("origin", base)
        .header("cookie", format!("{}={pre_session}", app::security::ssr::CSRF_COOKIE))
        .form(&[
            ("email", LOAD_EMAIL),
            ("password", PASSWORD),
            (app::security::CSRF_FIELD, &app::security::ssr::token_for(&pre_session)),
        ])
        .send()
        .await
        .expect("sign in");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("casola_session="))
        .and_then(|v| v.split(';').next())
        .expect("signing in sets the session cookie")
        .to_string();

    let session = cookie.split_once('=').map(|(_, value)| value).unwrap_or_default();
    let token = app::security::ssr::token_for(session);
    let script = config.dir.join("usage-load.lua");
    std::fs::write(&script, load_script(&cookie, &token, base)).expect("write the wrk script");
    let output = tokio::process::Command::new("wrk")
        .args(["-t2", "-c32", &format!("-d{}s", config.load_seconds), "--latency", "-s"])
        .arg(&script)
        .arg(format!("{base}/api/usage/summary"))
        .output()
        .await
        .expect("run wrk (Debian package wrk)");
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().find(|l| l.starts_with("BENCH ")).unwrap_or_else(|| panic!("wrk printed no result:\n{text}"));
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("wrk result has no {name}: {line}"))
    };
    LoadResult {
        requests_per_second: field("requests") / (field("duration_us") / 1e6),
        p50_ms: field("p50_us") / 1_000.0,
        p99_ms: field("p99_us") / 1_000.0,
        requests: field("requests") as u64,
        errors: field("errors") as u64,
    }
}

/// The wrk script: POSTs the usage server function with the six ranges in
/// turn and prints one parseable result line.
fn load_script(cookie: &str, csrf_token: &str, origin: &str) -> String {
    format!(
        r#"local ranges = {{"1h", "6h", "24h", "7d", "30d", "90d"}}
local n = 0
request = function()
  n = n + 1
  local body = "range=" .. ranges[(n % #ranges) + 1] .. "&tz=Asia%2FKathmandu"
  return wrk.format("POST", nil, {{
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = "{cookie}",
    ["Origin"] = "{origin}",
    ["{csrf_header}"] = "{csrf_token}",
  }}, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"#,
        csrf_header = app::security::CSRF_HEADER,
    )
}

/// Reads the server's peak resident memory, the kernel's high-water mark.
fn peak_memory_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read the server's memory");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kb / 1_024.0
}

/// Raw and gzip -9 sizes of a file, if it exists.
fn sizes(path: &Path) -> Option<(u64, u64)> {
    let raw = std::fs::metadata(path).ok()?.len();
    let gzip = std::process::Command::new("gzip").args(["-9", "-c"]).arg(path).output().ok()?;
    Some((raw, gzip.stdout.len() as u64))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find_map(|l| l.strip_prefix("model name")).map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_else(|| "unknown".to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<f64>().unwrap_or(0.0)))
        .map_or(0.0, |kb| kb / 1_048_576.0);
    format!("{cores} cores ({cpu}), {memory:.0} GiB memory")
}

/// Returns "met", or each summary target missed and by how much.
fn summary_verdict(p50_ms: f64, speedup: f64) -> String {
    let mut missed = Vec::new();
    if p50_ms > 20.0 {
        missed.push(format!("p50 {p50_ms:.1} ms"));
    }
    if speedup < 50.0 {
        missed.push(format!("{speedup:.0}× of 50×"));
    }
    if missed.is_empty() {
        "met".to_string()
    } else {
        format!("**missed**: {}", missed.join(", "))
    }
}

/// Returns "met" when `value` reaches `target`, else the share it fell short by.
fn shortfall(value: f64, target: f64) -> String {
    if value >= target {
        "met".to_string()
    } else {
        format!("**missed** by {:.0}%", (1.0 - value / target) * 100.0)
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

fn render(config: &Config, reports: &[BackendReport], elapsed: Duration) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# Benchmarks\n");
    let _ = writeln!(w, "Written by `make bench` on {}. Do not edit by hand.\n", Utc::now().format("%Y-%m-%d %H:%M UTC"));
    let _ = writeln!(w, "- Machine: {}", machine());
    let _ = writeln!(w, "- Command: `make bench` (`scripts/bench.sh`, which runs `cargo bench -p server --bench scale`); the measurements took {:.0} min after the build", elapsed.as_secs_f64() / 60.0);
    let _ = writeln!(
        w,
        "- Data: one organization with {} jobs over the last 90 days and {MODELS} models, plus {SMALL_ORGS} organizations of {SMALL_ORG_JOBS} jobs, stored through the product's write path",
        config.jobs
    );
    let _ = writeln!(w, "- Each figure: median (minimum–maximum).");
    let _ = writeln!(w, "- What limits each missed target: README.md, \"What limits the missed targets\".\n");

    for report in reports {
        let name = backend_name(report.backend);
        let _ = writeln!(w, "## {name}\n");
        let _ = writeln!(w, "{}. Generating the data took {:.0} s.\n", report.version, report.generate_seconds);
        let _ = writeln!(w, "### Usage summary\n");
        let _ = writeln!(
            w,
            "`window_summary_from`, the function behind the usage server function, in Asia/Kathmandu (UTC+05:45). \
             From the counts: 31 runs; from the jobs table alone (one GROUP BY per bucket and per window): 5 runs. \
             Both gave the same summary in every range.\n"
        );
        let _ = writeln!(w, "| range | jobs in window | counts, ms | jobs table, ms | speed-up | target (p50 ≤ 20 ms, ≥ 50×) |");
        let _ = writeln!(w, "|---|---:|---:|---:|---:|---|");
        for row in &report.summaries {
            let speedup = row.jobs.median / row.counts.median;
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {speedup:.0}× | {} |",
                row.range.as_str(),
                row.jobs_in_window,
                row.counts.ms(),
                row.jobs.ms(),
                summary_verdict(row.counts.median, speedup),
            );
        }
        let target = if report.backend == Backend::Sqlite { 100_000.0 } else { 50_000.0 };
        let _ = writeln!(w, "\n### Ingestion\n");
        let _ = writeln!(
            w,
            "{INGEST_RUNS} runs of {INGEST_BATCHES} batches of {BATCH} new jobs each, into an empty organization per row. \
             In order: each batch contains the next {BATCH} jobs, submitted {INGEST_STEP_MS} ms apart, as a platform reports them. \
             Interleaved: every batch spreads its jobs over the same 17 minutes, so each one adds entries across the whole \
             time index of its organization.\n"
        );
        let _ = writeln!(w, "| method | jobs | jobs per second | target (≥ {target:.0}/s) |");
        let _ = writeln!(w, "|---|---|---:|---|");
        for (i, arrival) in Arrival::ALL.into_iter().enumerate() {
            let _ = writeln!(
                w,
                "| `POST /api/v1/jobs`, {INGEST_CLIENTS} clients, JSON, validation, counts | {} | {} | {} |",
                arrival.name(),
                report.ingest_http[i].rate(),
                shortfall(report.ingest_http[i].median, target)
            );
            let _ = writeln!(
                w,
                "| plain multi-row INSERT into jobs, one client | {} | {} | |",
                arrival.name(),
                report.ingest_plain[i].rate()
            );
        }
        let _ = writeln!(w, "\n### HTTP load\n");
        let _ = writeln!(
            w,
            "wrk, 2 threads, 32 connections, {} s, POST `/api/usage/summary` signed in as one member, the six ranges in turn. \
             Run once with the default one-second summary cache (`app::usage::cache`) and once with `CASOLA_USAGE_CACHE_MS=0`, \
             where every request reads the database: the case of many organizations each loading its own page.\n",
            config.load_seconds
        );
        let _ = writeln!(w, "| summary cache | requests/s | p50 | p99 | requests | errors | target |");
        let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---|");
        for (cache, load) in [("1 s (default)", &report.load), ("off", &report.load_uncached)] {
            let _ = writeln!(
                w,
                "| {cache} | {:.0} | {:.1} ms | {:.1} ms | {} | {} | ≥ 1000/s: {}; p99 < 100 ms: {}; no errors: {} |",
                load.requests_per_second,
                load.p50_ms,
                load.p99_ms,
                load.requests,
                load.errors,
                shortfall(load.requests_per_second, 1_000.0),
                verdict(load.p99_ms < 100.0),
                verdict(load.errors == 0),
            );
        }
        let _ = writeln!(
            w,
            "\nPeak server memory (VmHWM) after ingestion and the load with the cache: {:.0} MB (target < 200 MB: {}).\n",
            report.peak_memory_mb,
            verdict(report.peak_memory_mb < 200.0),
        );
    }

    let _ = writeln!(w, "## Client size\n");
    let _ = writeln!(w, "The release build of `cargo leptos build --release`, gzip -9.\n");
    let _ = writeln!(w, "| file | bytes | gzipped |");
    let _ = writeln!(w, "|---|---:|---:|");
    for file in ["target/site/pkg/casola.wasm", "target/site/pkg/casola.js", "target/site/pkg/casola.css"] {
        match sizes(&Path::new(ROOT).join(file)) {
            Some((raw, gzip)) => {
                let _ = writeln!(w, "| `{file}` | {raw} | {gzip} |");
            }
            None => {
                let _ = writeln!(w, "| `{file}` | not built | |");
            }
        }
    }
    out
}
