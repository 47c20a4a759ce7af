//! The `/usage` page: range and zone controls, four cards, the chart and
//! the per-model table.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use super::chart::{self, DrawnChart};
use super::format;
use super::table::ModelTable;
use super::{get_usage_summary, RangeKey, UsageQuery, UsageSummary, WindowInfo, WindowStep, ZoneSource};
use crate::error::AppError;
use crate::http_status::set_page_status;

/// The usage page. Its state lives in the query string (`range`, `tz`,
/// `sort`, `dir`), so every view can be shared, reloaded and used with
/// JavaScript off. An unknown value renders a 400 page naming it.
#[component]
pub fn UsagePage() -> impl IntoView {
    let query_map = use_query_map();
    let query = Memo::new(move |_| {
        query_map.with(|q| UsageQuery::from_params(|name| q.get_str(name)))
    });

    // Sorting and the comparison column are done in the page, so only the
    // window and the zone refetch.
    let summary = Resource::new(
        move || query.get().ok().map(|q| SummaryKey::of(&q)),
        |key| async move {
            match key {
                Some(key) => get_usage_summary(key.range, key.tz, key.end, key.from, key.to).await.map(Some),
                None => Ok(None),
            }
        },
    );

    // A new range or sort re-renders the controls and the table, so put
    // focus back on the select or header link the user was on.
    let last_focused = crate::focus::track_focus();
    Effect::new(move |_| {
        query.track();
        let _ = summary.get();
        crate::focus::restore_lost_focus(last_focused, |_| None);
    });

    let content = move || match query.get() {
        Err(error) => {
            set_page_status(error.status());
            view! { <BadQuery error/> }.into_any()
        }
        Ok(query) => view! {
            <Suspense fallback=|| view! { <p class="loading" role="status">"Loading usage…"</p> }>
                {move || {
                    let query = query.clone();
                    summary.get().map(move |result| match result {
                        Ok(Some(data)) => view! { <UsageBody data query/> }.into_any(),
                        Ok(None) => ().into_any(),
                        Err(error) => {
                            set_page_status(error.status());
                            let href = format!("/usage?{}", query.to_query_string());
                            view! { <LoadFailed error href retry=move || summary.refetch()/> }.into_any()
                        }
                    })
                }}
            </Suspense>
        }
        .into_any(),
    };

    view! {
        <Title text="Usage · Casola"/>
        <section class="page usage-page">
            <h1>"Usage"</h1>
            {content}
        </section>
    }
}

/// The server function's arguments for a query.
#[derive(Debug, Clone, PartialEq)]
struct SummaryKey {
    range: String,
    tz: String,
    end: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

impl SummaryKey {
    fn of(query: &UsageQuery) -> SummaryKey {
        let date = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
        SummaryKey {
            range: if query.custom.is_some() { "custom".to_string() } else { query.range.as_str().to_string() },
            tz: query.tz.clone().unwrap_or_default(),
            end: query.end.map(|e| e.as_param()),
            from: query.custom.map(|c| date(c.from)),
            to: query.custom.map(|c| date(c.to)),
        }
    }
}

/// Everything below the heading once the summary has loaded.
#[component]
fn UsageBody(data: UsageSummary, query: UsageQuery) -> impl IntoView {
    let export_href = crate::client::server_url(&format!("/usage/export.csv?{}", query.to_query_string()));
    let empty = data.totals.jobs == 0;
    let credit = data.data_credit.clone();

    view! {
        <Controls
            query=query.clone()
            org_timezone=data.org_timezone.clone()
            zone=data.tz.clone()
            zone_source=data.zone_source
        />
        <WindowNav window=data.window.clone() query=query.clone()/>
        <Cards data=data.clone()/>
        {if empty {
            view! { <EmptyState window=data.window.label.clone() live=data.window.live/> }.into_any()
        } else {
            view! {
                <section class="panel" aria-labelledby="chart-title">
                    <div class="panel-header">
                        <h2 id="chart-title">"Completed and failed jobs"</h2>
                        <a class="button secondary" href=export_href download="usage.csv">"Download CSV"</a>
                    </div>
                    <UsageChart data=data.clone()/>
                    <ChartData data=data.clone()/>
                </section>
                <section class="panel" aria-labelledby="models-title">
                    <h2 id="models-title">"By model"</h2>
                    <ModelTable rows=data.models.clone() query=query.clone() previous_label=data.window.previous_label.clone()/>
                </section>
            }
            .into_any()
        }}
        {credit.map(|credit| view! { <p class="data-credit">{credit}</p> })}
    }
}

/// The range and time zone selectors: a GET form, so it works without
/// JavaScript. With JavaScript a change submits it at once and the router
/// navigates without reloading the page.
#[component]
fn Controls(
    query: UsageQuery,
    org_timezone: String,
    /// The zone the summary used.
    zone: String,
    zone_source: ZoneSource,
) -> impl IntoView {
    let submit_on_change = |ev: leptos::ev::Event| {
        use wasm_bindgen::JsCast;
        if let Some(form) = event_target::<web_sys::HtmlSelectElement>(&ev).form() {
            let _ = form.unchecked_into::<web_sys::HtmlFormElement>().request_submit();
        }
    };

    let is_custom = query.custom.is_some();
    let range_options = RangeKey::ALL
        .into_iter()
        .map(|range| {
            let selected = !is_custom && range == query.range;
            view! { <option value=range.as_str() selected=selected>{range.label()}</option> }
        })
        .collect_view();
    let custom_option = is_custom.then(|| view! { <option value="custom" selected>"Custom range"</option> });
    let end = query.end.map(|e| e.as_param());
    let custom = query.custom;
    let date = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let (from_value, to_value) = match custom {
        Some(c) => (date(c.from), date(c.to)),
        None => (String::new(), String::new()),
    };
    let tz_value = query.tz.clone().unwrap_or_default();
    let all_models = query.all_models;

    let chosen = query.tz.clone().unwrap_or_default();
    // The automatic choice names the zone it resolved to. When the browser
    // reported no zone (JavaScript off), the label marks the organization's
    // zone as the one in use.
    let automatic = match zone_source {
        ZoneSource::Browser => format!("Your time zone ({zone})"),
        ZoneSource::Organization => format!("Automatic ({zone}, the organization's)"),
        ZoneSource::Requested => "Your time zone".to_string(),
    };
    let mut zones = vec![
        (String::new(), automatic),
        (org_timezone.clone(), format!("Organization ({org_timezone})")),
        ("UTC".to_string(), "UTC".to_string()),
    ];
    if !chosen.is_empty() && !zones.iter().any(|(value, _)| *value == chosen) {
        zones.push((chosen.clone(), chosen.clone()));
    }
    let mut seen = Vec::new();
    let zone_options = zones
        .into_iter()
        .filter(|(value, _)| {
            let fresh = !seen.contains(value);
            seen.push(value.clone());
            fresh
        })
        .map(|(value, label)| {
            let selected = value == chosen;
            view! { <option value=value selected=selected>{label}</option> }
        })
        .collect_view();

    let sort = (query.sort, query.dir);
    let custom_sort = sort != (super::SortKey::Jobs, super::SortDir::Desc);

    view! {
        <Form method="get" action="/usage" attr:class="controls">
            <div class="field">
                <label for="usage-range">"Time range"</label>
                <select id="usage-range" name="range" on:change=submit_on_change>
                    {range_options}
                    {custom_option}
                </select>
            </div>
            <div class="field">
                <label for="usage-tz">"Time zone"</label>
                <select id="usage-tz" name="tz" on:change=submit_on_change>{zone_options}</select>
            </div>
            {custom_sort.then(|| view! {
                <input type="hidden" name="sort" value=sort.0.as_str()/>
                <input type="hidden" name="dir" value=sort.1.as_str()/>
            })}
            {end.map(|end| view! { <input type="hidden" name="end" value=end/> })}
            {all_models.then(|| view! { <input type="hidden" name="models" value="all"/> })}
            {custom.map(|c| view! {
                <input type="hidden" name="from" value=date(c.from)/>
                <input type="hidden" name="to" value=date(c.to)/>
            })}
            <noscript>
                <button type="submit" class="button">"Apply"</button>
            </noscript>
        </Form>
        <Form method="get" action="/usage" attr:class="controls custom-range">
            <input type="hidden" name="range" value="custom"/>
            {(!tz_value.is_empty()).then(|| view! { <input type="hidden" name="tz" value=tz_value.clone()/> })}
            <div class="field">
                <label for="usage-from">"From"</label>
                <input id="usage-from" type="date" name="from" value=from_value required/>
            </div>
            <div class="field">
                <label for="usage-to">"To"</label>
                <input id="usage-to" type="date" name="to" value=to_value required/>
            </div>
            <button type="submit" class="button secondary">"Show custom range"</button>
        </Form>
    }
}

/// The window in words, with arrows to the previous and next windows of
/// the same length. Plain links, so they work with JavaScript off.
#[component]
fn WindowNav(window: WindowInfo, query: UsageQuery) -> impl IntoView {
    let link = |step: WindowStep| -> Option<String> {
        let target = match step {
            WindowStep::Disabled => return None,
            WindowStep::Live => UsageQuery { end: None, custom: None, ..query.clone() },
            WindowStep::End(end) => UsageQuery { end: Some(end), custom: None, ..query.clone() },
            WindowStep::Custom(custom) => UsageQuery { end: None, custom: Some(custom), ..query.clone() },
        };
        Some(format!("/usage?{}", target.to_query_string()))
    };
    let previous = link(window.previous);
    let next = link(window.next);
    let arrow = |href: Option<String>, text: &'static str, rel: &'static str| match href {
        Some(href) => view! { <a class="button secondary" href=href rel=rel>{text}</a> }.into_any(),
        None => view! { <span class="button secondary disabled" aria-disabled="true">{text}</span> }.into_any(),
    };

    view! {
        <nav class="window-nav" aria-label="Time window">
            {arrow(previous, "← Earlier", "prev")}
            <p class="window-label">
                {window.label.clone()}
                {(!window.live).then(|| view! { <span class="badge">"Past window"</span> })}
            </p>
            {arrow(next, "Later →", "next")}
        </nav>
    }
}

/// The four summary cards, each with its change against the previous
/// window of the same length.
#[component]
fn Cards(data: UsageSummary) -> impl IntoView {
    let totals = data.totals;
    let previous = data.previous_totals.unwrap_or_default();
    let versus = data.window.previous_label.clone();
    let change = move |current: i64, before: i64| {
        format::change(current, before).map(|text| {
            view! { <p class="card-change">{format!("{text} vs {versus}")}</p> }
        })
    };
    let jobs_change = change(totals.jobs as i64, previous.jobs as i64);
    let completed_change = change(totals.completed as i64, previous.completed as i64);
    let failed_change = change(totals.failed as i64, previous.failed as i64);
    let gpu_change = change(totals.gpu_ms, previous.gpu_ms);
    let success = format::success_rate(totals.success_rate());
    view! {
        <div class="cards">
            <div class="card" data-card="total">
                <h2>"Total Jobs"</h2>
                <p class="card-value">{format::count(totals.jobs)}</p>
                <p class="card-note">"All jobs submitted"</p>
                {jobs_change}
            </div>
            <div class="card" data-card="completed">
                <h2>"Completed"</h2>
                <p class="card-value">{format::count(totals.completed)}</p>
                <p class="card-note">{format!("Success rate {success}")}</p>
                {completed_change}
            </div>
            <div class="card" data-card="failed">
                <h2>"Failed"</h2>
                <p class="card-value">{format::count(totals.failed)}</p>
                <p class="card-note">"Jobs that ended with an error"</p>
                {failed_change}
            </div>
            <div class="card" data-card="compute">
                <h2>"Compute Time"</h2>
                <p class="card-value" title=format!("{} GPU-ms", totals.gpu_ms)>
                    {format::compute_time(totals.gpu_ms)}
                </p>
                <p class="card-note">"GPU count × run time"</p>
                {gpu_change}
            </div>
        </div>
    }
}

/// The chart: the SVG drawn by plotters, with a hit area over each bar
/// that shows the bucket's span and counts on hover or focus. The bars
/// share one tab stop (a roving tabindex): the arrow keys, Home and End
/// move focus between them, so the chart costs keyboard users one Tab
/// however many buckets it has. Without JavaScript only the first bar is
/// reachable by keyboard, and the data table below the chart has them all.
#[component]
fn UsageChart(data: UsageSummary) -> impl IntoView {
    let container = NodeRef::<leptos::html::Div>::new();
    let (width, set_width) = signal(chart::DEFAULT_WIDTH);
    let bucket_count = data.buckets.len();
    let active_bar = RwSignal::new(0_usize);

    // In the browser, redraw at the width the layout gives the chart.
    let measure = move || {
        if let Some(element) = container.get_untracked() {
            let measured = element.client_width();
            if measured > 0 {
                set_width.set(measured as u32);
            }
        }
    };
    Effect::new(move |_| {
        if container.get().is_some() {
            measure();
        }
    });
    let resize = window_event_listener(leptos::ev::resize, move |_| measure());
    on_cleanup(move || resize.remove());

    let summary_sentence = summary_sentence(&data);
    let data = StoredValue::new(data);
    let drawn = Memo::new(move |_| data.with_value(|d| chart::draw(d, width.get())));

    let hit_areas = move || {
        let drawn: DrawnChart = drawn.get();
        data.with_value(|d| {
            let count = d.buckets.len().max(1) as f64;
            let step = (drawn.plot_right - drawn.plot_left) / count;
            let percent_x = |x: f64| x / drawn.width as f64 * 100.0;
            let percent_y = |y: f64| y / drawn.height as f64 * 100.0;
            d.buckets
                .iter()
                .enumerate()
                .map(|(i, bucket)| {
                    let left = percent_x(drawn.plot_left + step * i as f64);
                    let style = format!(
                        "left:{left:.3}%;width:{:.3}%;top:{:.3}%;height:{:.3}%",
                        percent_x(step),
                        percent_y(drawn.plot_top),
                        percent_y(drawn.plot_bottom - drawn.plot_top),
                    );
                    let filling = if bucket.partial { " (still filling)" } else { "" };
                    let label = format!(
                        "{}{filling}: {} completed, {} failed",
                        bucket.span_label, bucket.completed, bucket.failed
                    );
                    let align_right = i as f64 >= count / 2.0;
                    let tabindex = move || if active_bar.get() == i { "0" } else { "-1" };
                    view! {
                        <div
                            class="bar-hit"
                            class:partial=bucket.partial
                            id=bar_id(i)
                            role="group"
                            tabindex=tabindex
                            style=style
                            aria-label=label
                            aria-describedby="chart-keys"
                            on:focus=move |_| active_bar.set(i)
                        >
                            <div class="tooltip" class:align-right=align_right role="tooltip">
                                <strong>{bucket.span_label.clone()}{filling}</strong>
                                <span><i class="swatch completed"></i>"Completed: "{format::count(bucket.completed)}</span>
                                <span><i class="swatch failed"></i>"Failed: "{format::count(bucket.failed)}</span>
                            </div>
                        </div>
                    }
                })
                .collect_view()
        })
    };

    let on_keydown = move |event: leptos::ev::KeyboardEvent| {
        let current = active_bar.get_untracked();
        let next = match event.key().as_str() {
            "ArrowRight" | "ArrowDown" => (current + 1).min(bucket_count.saturating_sub(1)),
            "ArrowLeft" | "ArrowUp" => current.saturating_sub(1),
            "Home" => 0,
            "End" => bucket_count.saturating_sub(1),
            _ => return,
        };
        event.prevent_default();
        active_bar.set(next);
        crate::focus::focus_by_id(&bar_id(next));
    };

    view! {
        <figure class="chart">
            <p id="chart-keys" class="visually-hidden">
                "Use the left and right arrow keys to move between bars, Home and End for the first and last."
            </p>
            <div class="chart-canvas" node_ref=container on:keydown=on_keydown>
                <div class="chart-svg" aria-hidden="true" inner_html=move || drawn.get().svg></div>
                {hit_areas}
            </div>
            <figcaption>
                <ul class="legend">
                    <li><i class="swatch completed"></i>"Completed"</li>
                    <li><i class="swatch failed"></i>"Failed (stacked on top)"</li>
                    <li><i class="swatch partial"></i>"Lighter bar: current period, still filling"</li>
                </ul>
                <p class="visually-hidden">{summary_sentence}</p>
            </figcaption>
        </figure>
    }
}

/// The element id of bar `index`'s hit area.
fn bar_id(index: usize) -> String {
    format!("chart-bar-{index}")
}

/// The chart's buckets as a table, behind a "Show data" disclosure that
/// works without JavaScript: the text alternative to the bars for screen
/// reader users and for anyone who wants the exact numbers.
#[component]
fn ChartData(data: UsageSummary) -> impl IntoView {
    let rows = data
        .buckets
        .iter()
        .map(|bucket| {
            let filling = if bucket.partial { " (still filling)" } else { "" };
            view! {
                <tr>
                    <th scope="row">{bucket.span_label.clone()}{filling}</th>
                    <td class="numeric">{format::count(bucket.completed)}</td>
                    <td class="numeric">{format::count(bucket.failed)}</td>
                </tr>
            }
        })
        .collect_view();

    view! {
        <details class="chart-data">
            <summary>"Show data as a table"</summary>
            <div class="table-scroll" role="region" aria-label="Jobs per period" tabindex="0">
                <table class="data-table">
                    <caption class="visually-hidden">"Completed and failed jobs per period"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Period"</th>
                            <th scope="col" class="numeric">"Completed"</th>
                            <th scope="col" class="numeric">"Failed"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </details>
    }
}

fn summary_sentence(data: &UsageSummary) -> String {
    let busiest = data.buckets.iter().max_by_key(|b| b.completed + b.failed);
    let mut sentence = format!(
        "{} buckets from {} to {}: {} completed and {} failed jobs in all.",
        data.buckets.len(),
        data.buckets.first().map(|b| b.label.as_str()).unwrap_or(""),
        data.buckets.last().map(|b| b.label.as_str()).unwrap_or(""),
        data.totals.completed,
        data.totals.failed,
    );
    if let Some(bucket) = busiest.filter(|b| b.completed + b.failed > 0) {
        sentence.push_str(&format!(
            " The busiest was {} with {} completed and {} failed.",
            bucket.span_label, bucket.completed, bucket.failed
        ));
    }
    sentence
}

/// Shown in place of the chart and table when the window has no jobs.
#[component]
fn EmptyState(
    /// The window in words, such as "Mar 25 – Mar 31, 2024".
    window: String,
    /// Whether the window ends now.
    live: bool,
) -> impl IntoView {
    let heading = if live { format!("No jobs yet in {window}") } else { format!("No jobs in {window}") };
    view! {
        <section class="panel empty-state" role="status">
            <h2>{heading}</h2>
            <p>
                "Jobs appear here as soon as the platform reports them. "
                "Try a longer time range, or check that your jobs run under this organization."
            </p>
        </section>
    }
}

/// A query parameter the page does not accept.
#[component]
fn BadQuery(error: AppError) -> impl IntoView {
    view! {
        <section class="panel error-state" role="alert">
            <h2>"This link has a value the usage page does not accept"</h2>
            <p class="error-message">{error.to_string()}</p>
            <a class="button" href="/usage">"Show the last 7 days"</a>
        </section>
    }
}

/// A load that failed, with a way to try again: a link to the same view
/// that, with JavaScript, refetches in place.
#[component]
fn LoadFailed(
    error: AppError,
    href: String,
    retry: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    let action = match &error {
        AppError::Unauthenticated => Some(("/login", "Sign in")),
        AppError::BadRequest(_) => Some(("/usage", "Show the last 7 days")),
        _ => None,
    };
    let heading = match &error {
        AppError::BadRequest(_) => "This link has a value the usage page does not accept",
        _ => "Usage could not be loaded",
    };
    view! {
        <section class="panel error-state" role="alert">
            <h2>{heading}</h2>
            <p class="error-message">{error.to_string()}</p>
            {if let Some((href, text)) = action {
                view! { <a class="button" href=href>{text}</a> }.into_any()
            } else {
                view! {
                    <a
                        class="button"
                        href=href
                        on:click=move |ev| {
                            ev.prevent_default();
                            retry();
                        }
                    >
                        "Retry"
                    </a>
                }
                .into_any()
            }}
        </section>
    }
}
