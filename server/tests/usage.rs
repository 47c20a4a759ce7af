//! The usage page, its server function and the CSV export over HTTP, on
//! SQLite and PostgreSQL.

mod common;

use app::auth::Role;
use app::usage::{RangeKey, UsageSummary};
use casola_server::database::Backend;
use casola_server::jobs::JobStatus;
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use common::{location, spawn_app, TestApp};

fn local(zone: Tz, text: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap();
    zone.from_local_datetime(&naive).earliest().unwrap().with_timezone(&Utc)
}

async fn summary(app: &TestApp, client: &common::Browser, range: &str, tz: &str) -> reqwest::Response {
    client
        .post(app.url("/api/usage/summary"))
        .form(&[("range", range), ("tz", tz)])
        .send()
        .await
        .expect("call the usage server function")
}

async fn summary_json(app: &TestApp, client: &common::Browser, range: &str, tz: &str) -> UsageSummary {
    let response = summary(app, client, range, tz).await;
    assert_eq!(response.status(), 200, "summary {range} {tz}");
    response.json().await.expect("summary JSON")
}

fn assert_agree(summary: &UsageSummary) {
    let bars_completed: u64 = summary.buckets.iter().map(|b| b.completed).sum();
    let bars_failed: u64 = summary.buckets.iter().map(|b| b.failed).sum();
    let bars_total: u64 = summary.buckets.iter().map(|b| b.total).sum();
    let rows_jobs: u64 = summary.models.iter().map(|m| m.counts.jobs).sum();
    let rows_completed: u64 = summary.models.iter().map(|m| m.counts.completed).sum();
    let rows_failed: u64 = summary.models.iter().map(|m| m.counts.failed).sum();
    let rows_gpu: i64 = summary.models.iter().map(|m| m.counts.gpu_ms).sum();
    assert_eq!(bars_total, summary.totals.jobs, "bars vs Total Jobs");
    assert_eq!(bars_completed, summary.totals.completed, "bars vs Completed");
    assert_eq!(bars_failed, summary.totals.failed, "bars vs Failed");
    assert_eq!(rows_jobs, summary.totals.jobs, "table vs Total Jobs");
    assert_eq!(rows_completed, summary.totals.completed, "table vs Completed");
    assert_eq!(rows_failed, summary.totals.failed, "table vs Failed");
    assert_eq!(rows_gpu, summary.totals.gpu_ms, "table vs Compute Time");
}

async fn signed_out_page_redirects_to_login(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.client().get(app.url("/usage?range=1h")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/login?next=/usage%3Frange%3D1h");
}

async fn signed_out_server_function_is_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = summary(&app, &app.client(), "7d", "UTC").await;
    assert_eq!(response.status(), 401);
}

// Through the database and HTTP, cards, chart and table agree: 100 jobs, 70 completed, 25 failed, 5 running.
async fn every_range_agrees_across_cards_chart_table(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let base = Utc::now().timestamp_millis() - 50 * 60_000;
    let times = |n: i64, offset: i64| (0..n).map(|i| base + (i * 37 + offset) * 1_000).collect::<Vec<_>>();
    app.add_jobs(org, "llama", JobStatus::Completed, &times(40, 0)).await;
    app.add_jobs(org, "mistral", JobStatus::Completed, &times(30, 7)).await;
    app.add_jobs(org, "llama", JobStatus::Failed, &times(25, 13)).await;
    app.add_jobs(org, "sdxl", JobStatus::Running, &times(5, 19)).await;
    let client = app.signed_in("owner@acme.test").await;

    for range in RangeKey::ALL {
        for tz in ["UTC", "Asia/Kathmandu", "America/Chicago"] {
            let data = summary_json(&app, &client, range.as_str(), tz).await;
            assert_eq!(data.totals.jobs, 100, "{range:?} {tz}");
            assert_eq!(data.totals.completed, 70, "{range:?} {tz}");
            assert_eq!(data.totals.failed, 25, "{range:?} {tz}");
            assert_eq!(data.buckets.len() as u32, range.bucket_count(), "{range:?} {tz}");
            assert_agree(&data);
        }
    }
}

async fn bad_parameters_are_400_naming_value(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let client = app.signed_in("owner@acme.test").await;

    let response = summary(&app, &client, "2w", "UTC").await;
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    assert!(body.contains("2w"), "{body}");
    assert!(body.contains("1h, 6h, 24h, 7d, 30d, 90d"), "{body}");

    let response = summary(&app, &client, "7d", "Mars/Olympus").await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("Mars/Olympus"));

    for (query, named) in [
        ("range=2w", "2w"),
        ("sort=price", "price"),
        ("dir=sideways", "sideways"),
        ("tz=Mars%2FOlympus", "Mars/Olympus"),
    ] {
        let response = client.get(app.url(&format!("/usage?{query}"))).send().await.unwrap();
        assert_eq!(response.status(), 400, "page with {query}");
        let page = response.text().await.unwrap();
        assert!(page.contains(named), "page with {query} names {named}");
    }
}

async fn usage_page_renders_cards_and_table(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let now = Utc::now().timestamp_millis();
    app.add_jobs(org, "llama-70b", JobStatus::Completed, &[now - 3_600_000, now - 7_200_000]).await;
    app.add_jobs(org, "llama-70b", JobStatus::Failed, &[now - 3_600_000]).await;
    let client = app.signed_in("owner@acme.test").await;

    let response = client.get(app.url("/usage?range=24h&tz=UTC")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    for text in ["Total Jobs", "Completed", "Failed", "Compute Time", "llama-70b", "66.7%", "<svg"] {
        assert!(page.contains(text), "page lacks {text}");
    }
}

// A range with no jobs shows the empty state and no table.
async fn empty_organization_shows_empty_state(backend: Backend) {
    let app = spawn_app(backend).await;
    app.org_with_user("fresh", "owner@fresh.test", Role::Owner).await;
    let client = app.signed_in("owner@fresh.test").await;

    let page = client.get(app.url("/usage?range=90d")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("No jobs yet in"), "empty state missing");
    assert!(!page.contains("model-table"), "an empty range has no table");

    let data = summary_json(&app, &client, "90d", "UTC").await;
    assert_eq!(data.totals.jobs, 0);
    assert!(data.models.is_empty());
    assert!(data.buckets.iter().all(|b| b.total == 0));
}

async fn other_organization_sees_none_of_the_data(backend: Backend) {
    let app = spawn_app(backend).await;
    let acme = app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    app.org_with_user("rival", "spy@rival.test", Role::Owner).await;
    let now = Utc::now().timestamp_millis();
    app.add_jobs(acme, "secret-model", JobStatus::Completed, &[now - 60_000]).await;
    let spy = app.signed_in("spy@rival.test").await;

    let data = summary_json(&app, &spy, "24h", "UTC").await;
    assert_eq!(data.totals.jobs, 0);

    let switch = spy.post(app.url("/orgs/switch")).form(&[("org", "acme")]).send().await.unwrap();
    assert_eq!(switch.status(), 403);
    let data = summary_json(&app, &spy, "24h", "UTC").await;
    assert_eq!(data.totals.jobs, 0, "a refused switch changes nothing");

    let csv = spy.get(app.url("/usage/export.csv?range=24h&tz=UTC")).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    assert!(!csv.text().await.unwrap().contains("secret-model"));
}

async fn switching_organization_changes_the_data(backend: Backend) {
    let app = spawn_app(backend).await;
    let acme = app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    app.org_with_user("zeta", "owner@acme.test", Role::Member).await;
    app.add_jobs(acme, "m", JobStatus::Completed, &[Utc::now().timestamp_millis() - 60_000]).await;
    let client = app.signed_in("owner@acme.test").await;

    assert_eq!(summary_json(&app, &client, "24h", "UTC").await.totals.jobs, 1, "first org by name");
    let switch = client.post(app.url("/orgs/switch")).form(&[("org", "zeta")]).send().await.unwrap();
    assert_eq!(switch.status(), 303);
    assert_eq!(summary_json(&app, &client, "24h", "UTC").await.totals.jobs, 0);
}

async fn csv_export_rows_add_up(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let now = Utc::now().timestamp_millis();
    app.add_jobs(org, "a", JobStatus::Completed, &[now - 3_600_000, now - 2 * 86_400_000]).await;
    app.add_jobs(org, "b", JobStatus::Failed, &[now - 3_600_000]).await;
    let client = app.signed_in("owner@acme.test").await;

    let response = client.get(app.url("/usage/export.csv?range=7d&tz=UTC")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(response.headers()["content-disposition"].to_str().unwrap().contains("casola-usage-acme-7d.csv"));
    let text = response.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "bucket_start,bucket_end,time_zone,model,jobs,completed,failed,gpu_ms"
    );
    let rows: Vec<Vec<String>> = lines.map(|l| l.split(',').map(str::to_string).collect()).collect();
    let jobs: u64 = rows.iter().map(|r| r[4].parse::<u64>().unwrap()).sum();
    let failed: u64 = rows.iter().map(|r| r[6].parse::<u64>().unwrap()).sum();
    assert_eq!(jobs, 3);
    assert_eq!(failed, 1);

    let bad = client.get(app.url("/usage/export.csv?range=1y")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("1y"));
}

async fn explicit_zone_ignores_browser_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    app.add_jobs(org, "m", JobStatus::Completed, &[Utc::now().timestamp_millis() - 60_000]).await;
    let client = app.signed_in("owner@acme.test").await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str("casola_tz=Pacific/Auckland; Path=/", &app.base.parse().unwrap());
    let auckland = app.sign_in_with(app.client_with_jar(jar), "owner@acme.test").await;

    let plain = summary_json(&app, &client, "7d", "Europe/Berlin").await;
    let with_cookie = summary_json(&app, &auckland, "7d", "Europe/Berlin").await;
    assert_eq!(plain.buckets, with_cookie.buckets);
    assert_eq!(with_cookie.tz, "Europe/Berlin");

    let from_cookie = summary_json(&app, &auckland, "7d", "").await;
    assert_eq!(from_cookie.tz, "Pacific/Auckland", "no tz in the URL: the browser's zone");
    let from_org = summary_json(&app, &client, "7d", "").await;
    assert_eq!(from_org.tz, "UTC", "no cookie either: the organization's zone");
}

// Against the database: a week over the start of daylight saving time.
async fn case_u1_toronto_dst_week_from_database(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let zone = chrono_tz::America::Toronto;
    let times: Vec<i64> = (7..=13)
        .map(|day| local(zone, &format!("2024-03-{day:02} 12:00:00")).timestamp_millis())
        .collect();
    app.add_jobs(org, "m", JobStatus::Completed, &times).await;

    let now = local(zone, "2024-03-13 18:00:00");
    let data = app::usage::ssr::usage_summary(&app.pool, org, RangeKey::Days7, zone, now).await.unwrap();

    let labels: Vec<_> = data.buckets.iter().map(|b| b.label.as_str()).collect();
    assert_eq!(labels, ["Mar 7", "Mar 8", "Mar 9", "Mar 10", "Mar 11", "Mar 12", "Mar 13"]);
    assert!(data.buckets.iter().all(|b| b.total == 1 && b.completed == 1));
    assert!(data.buckets.last().unwrap().partial);
}

// Against the database: a job at 23:59:59 and one at midnight.
async fn case_u3_half_open_days_from_database(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let late = local(Tz::UTC, "2025-04-30 23:59:59").timestamp_millis();
    let midnight = local(Tz::UTC, "2025-05-01 00:00:00").timestamp_millis();
    app.add_jobs(org, "m", JobStatus::Completed, &[late, midnight]).await;

    let now = local(Tz::UTC, "2025-05-02 08:00:00");
    for range in [RangeKey::Days7, RangeKey::Days30, RangeKey::Days90] {
        let data = app::usage::ssr::usage_summary(&app.pool, org, range, Tz::UTC, now).await.unwrap();
        let on = |label: &str| data.buckets.iter().find(|b| b.label == label).map(|b| b.total);
        assert_eq!(on("Apr 30"), Some(1), "{range:?}");
        assert_eq!(on("May 1"), Some(1), "{range:?}");
        assert_eq!(data.totals.jobs, 2, "{range:?}");
        assert_agree(&data);
    }
}

// Against the database: today's bar contains today's job and is filling.
async fn case_u2_today_in_daily_view_from_database(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    app.add_jobs(org, "m", JobStatus::Completed, &[local(Tz::UTC, "2025-06-10 09:00:00").timestamp_millis()]).await;

    let now = local(Tz::UTC, "2025-06-10 15:20:00");
    let data = app::usage::ssr::usage_summary(&app.pool, org, RangeKey::Days7, Tz::UTC, now).await.unwrap();
    let last = data.buckets.last().unwrap();
    assert_eq!(last.label, "Jun 10");
    assert_eq!(last.total, 1);
    assert!(last.partial);
}

// The fall-back hour is two buckets, each counting its own jobs.
async fn fall_back_hour_counts_each_half(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
    let zone = chrono_tz::America::Chicago;
    let first = local(zone, "2022-11-06 01:30:00"); // CDT, the earlier 01:30
    let second = first + Duration::hours(1); // CST, the later 01:30
    app.add_jobs(org, "m", JobStatus::Completed, &[first.timestamp_millis()]).await;
    app.add_jobs(org, "m", JobStatus::Failed, &[second.timestamp_millis()]).await;

    let now = local(zone, "2022-11-06 04:10:00");
    let data = app::usage::ssr::usage_summary(&app.pool, org, RangeKey::Hours6, zone, now).await.unwrap();
    let ones: Vec<_> = data.buckets.iter().filter(|b| b.label == "01:00").collect();
    assert_eq!(ones.len(), 2);
    assert_eq!((ones[0].completed, ones[0].failed), (1, 0));
    assert_eq!((ones[1].completed, ones[1].failed), (0, 1));
}

/// Pages keep loading while other routers are built in the same process,
/// as these tests do. Building a router must not stall the resources of
/// the pages rendered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_load_while_routers_are_built() {
    common::within_time_limit(async {
        let app = spawn_app(Backend::Sqlite).await;
        app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
        let client = app.signed_in("owner@acme.test").await;

        let state = app::state::AppState {
            pool: app.pool.clone(),
            secure_cookies: false,
            stripe: None,
            usage_cache: std::sync::Arc::new(app::usage::cache::SummaryCache::new(
                casola_server::settings::DEFAULT_USAGE_CACHE_MAX_AGE,
            )),
        };
        let options = leptos::config::LeptosOptions::builder().output_name("casola").build();
        let building = tokio::task::spawn_blocking(move || {
            for _ in 0..300 {
                drop(casola_server::router::build_router(state.clone(), options.clone()));
            }
        });

        for i in 0..60 {
            let page = client
                .get(app.url("/usage?range=7d&tz=UTC"))
                .timeout(std::time::Duration::from_secs(10))
                .send()
                .await
                .unwrap_or_else(|error| panic!("page load {i}: {error}"));
            assert_eq!(page.status(), 200, "page load {i}");
        }
        building.await.expect("build the routers");
    })
    .await;
}

on_both_databases!(
    signed_out_page_redirects_to_login,
    signed_out_server_function_is_401,
    every_range_agrees_across_cards_chart_table,
    bad_parameters_are_400_naming_value,
    usage_page_renders_cards_and_table,
    empty_organization_shows_empty_state,
    other_organization_sees_none_of_the_data,
    switching_organization_changes_the_data,
    csv_export_rows_add_up,
    explicit_zone_ignores_browser_cookie,
    case_u1_toronto_dst_week_from_database,
    case_u3_half_open_days_from_database,
    case_u2_today_in_daily_view_from_database,
    fall_back_hour_counts_each_half,
);

mod windows {
    use super::*;

    async fn window_summary(
        app: &TestApp,
        client: &common::Browser,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        client.post(app.url("/api/usage/summary")).form(form).send().await.unwrap()
    }

    // A past week through `end`, compared with the week before it.
    async fn past_window_with_comparison(backend: Backend) {
        let app = spawn_app(backend).await;
        let org = app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
        let zone = chrono_tz::America::Chicago;
        let at = |text: &str| local(zone, text).timestamp_millis();
        // The week of the fall-back change: 3 completed, 1 failed.
        app.add_jobs(org, "m", JobStatus::Completed, &[at("2022-11-06 01:30:00"), at("2022-11-01 12:00:00"), at("2022-11-06 23:59:59")]).await;
        app.add_jobs(org, "m", JobStatus::Failed, &[at("2022-10-31 00:00:00")]).await;
        // The week before: 2 completed. A job after the window: not counted.
        app.add_jobs(org, "m", JobStatus::Completed, &[at("2022-10-24 08:00:00"), at("2022-10-30 23:00:00")]).await;
        app.add_jobs(org, "m", JobStatus::Completed, &[at("2022-11-07 00:00:00")]).await;
        let client = app.signed_in("owner@acme.test").await;

        let response = window_summary(&app, &client, &[("range", "7d"), ("tz", "America/Chicago"), ("end", "2022-11-06")]).await;
        assert_eq!(response.status(), 200);
        let data: UsageSummary = response.json().await.unwrap();

        assert_eq!(data.totals.jobs, 4);
        assert_eq!(data.totals.completed, 3);
        assert_eq!(data.totals.failed, 1);
        let previous = data.previous_totals.clone().unwrap();
        assert_eq!(previous.jobs, 2);
        assert_eq!(app::usage::format::change(data.totals.jobs as i64, previous.jobs as i64).as_deref(), Some("+100 %"));
        assert_eq!(data.models[0].previous.as_ref().unwrap().jobs, 2);
        assert!(data.buckets.iter().all(|b| !b.partial), "a past window has no partial bucket");
        assert!(!data.window.live);
        assert_eq!(data.window.label, "Oct 31 – Nov 6, 2022");
        assert_eq!(data.buckets.last().unwrap().total, 2, "Nov 6 holds both of its jobs");
    }

    async fn custom_range_over_berlin_spring_forward(backend: Backend) {
        let app = spawn_app(backend).await;
        let org = app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
        let zone = chrono_tz::Europe::Berlin;
        app.add_jobs(org, "m", JobStatus::Completed, &[local(zone, "2024-03-31 03:00:00").timestamp_millis()]).await;
        app.add_jobs(org, "m", JobStatus::Failed, &[local(zone, "2024-03-31 01:59:59").timestamp_millis()]).await;
        let client = app.signed_in("owner@acme.test").await;

        let form = [("range", "custom"), ("tz", "Europe/Berlin"), ("from", "2024-03-31"), ("to", "2024-03-31")];
        let data: UsageSummary = window_summary(&app, &client, &form).await.json().await.unwrap();
        let labels: Vec<_> = data.buckets.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels.len(), 23);
        assert_eq!(&labels[..4], ["00:00", "01:00", "03:00", "04:00"]);
        assert_eq!((data.buckets[1].failed, data.buckets[2].completed), (1, 1));
    }

    async fn bad_window_parameters_are_400(backend: Backend) {
        let app = spawn_app(backend).await;
        app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
        let client = app.signed_in("owner@acme.test").await;
        let tomorrow = (Utc::now() + Duration::days(2)).format("%Y-%m-%d").to_string();

        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![("range", "7d"), ("end", tomorrow.as_str())], tomorrow.as_str()),
            (vec![("range", "7d"), ("end", "next week")], "next week"),
            (vec![("range", "custom"), ("from", "2024-03-10"), ("to", "2024-03-01")], "after it ends"),
            (vec![("range", "custom"), ("from", "2023-01-01"), ("to", "2024-06-01")], "the maximum is 366"),
            (vec![("range", "custom"), ("from", "March"), ("to", "2024-06-01")], "Invalid from"),
        ];
        for (pairs, named) in cases {
            let mut form = pairs.clone();
            form.push(("tz", "UTC"));
            let response = window_summary(&app, &client, &form).await;
            assert_eq!(response.status(), 400, "{pairs:?}");
            assert!(response.text().await.unwrap().contains(named), "{pairs:?} names {named}");

            let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", v.replace(' ', "%20"))).collect();
            let query = query.join("&");
            let page = client.get(app.url(&format!("/usage?{query}"))).send().await.unwrap();
            assert_eq!(page.status(), 400, "page {query}");
            let csv = client.get(app.url(&format!("/usage/export.csv?{query}"))).send().await.unwrap();
            assert_eq!(csv.status(), 400, "csv {query}");
        }
    }

    async fn csv_export_carries_window(backend: Backend) {
        let app = spawn_app(backend).await;
        let org = app.org_with_user("acme", "owner@acme.test", Role::Owner).await;
        app.add_jobs(org, "m", JobStatus::Completed, &[local(Tz::UTC, "2024-03-05 10:00:00").timestamp_millis()]).await;
        let client = app.signed_in("owner@acme.test").await;

        let response = client
            .get(app.url("/usage/export.csv?range=custom&from=2024-03-01&to=2024-03-07&tz=UTC"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-disposition"].to_str().unwrap().contains("2024-03-01-to-2024-03-07"));
        let text = response.text().await.unwrap();
        assert!(text.contains("2024-03-05T00:00:00+00:00,2024-03-06T00:00:00+00:00,UTC,m,1,1,0"), "{text}");
    }

    on_both_databases!(
        past_window_with_comparison,
        custom_range_over_berlin_spring_forward,
        bad_window_parameters_are_400,
        csv_export_carries_window,
    );
}
