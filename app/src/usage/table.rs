//! The per-model table and its sort order.

use leptos::prelude::*;

use super::format;
use super::{ModelRow, SortDir, SortKey, UsageQuery};

/// Sorts rows by `key` in `dir`. Ties always fall back to the model name,
/// A to Z, so the order is stable across reloads. Rows without a success
/// rate (no finished jobs) sort below every rate in both directions.
pub fn sort_models(rows: &mut [ModelRow], key: SortKey, dir: SortDir) {
    use std::cmp::Ordering;

    rows.sort_by(|a, b| {
        let primary = match key {
            SortKey::Model => a.model.cmp(&b.model),
            SortKey::Jobs => a.counts.jobs.cmp(&b.counts.jobs),
            SortKey::Completed => a.counts.completed.cmp(&b.counts.completed),
            SortKey::Failed => a.counts.failed.cmp(&b.counts.failed),
            SortKey::ComputeTime => a.counts.gpu_ms.cmp(&b.counts.gpu_ms),
            SortKey::SuccessRate => {
                match (a.counts.success_rate(), b.counts.success_rate()) {
                    (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                    // Keep rows without a rate last whatever the direction.
                    (Some(_), None) => return Ordering::Less,
                    (None, Some(_)) => return Ordering::Greater,
                    (None, None) => Ordering::Equal,
                }
            }
        };
        let primary = match dir {
            SortDir::Asc => primary,
            SortDir::Desc => primary.reverse(),
        };
        primary.then_with(|| a.model.cmp(&b.model))
    });
}

/// The per-model table. Each header links to the same page sorted by that
/// column, so sorting works with JavaScript off and shows in the URL.
#[component]
pub fn ModelTable(
    /// Rows in any order; the table sorts them by `query`.
    rows: Vec<ModelRow>,
    /// The page's state, for the sort, the comparison column and links.
    query: UsageQuery,
    /// The window compared with, such as "previous 7 days".
    previous_label: String,
) -> impl IntoView {
    let mut rows = rows;
    sort_models(&mut rows, query.sort, query.dir);
    let compare = query.compare;
    let toggle_href = format!(
        "/usage?{}",
        UsageQuery { compare: !compare, ..query.clone() }.to_query_string()
    );
    let toggle_text = if compare {
        "Hide the comparison".to_string()
    } else {
        format!("Compare jobs with the {previous_label}")
    };

    let headers = SortKey::ALL
        .into_iter()
        .map(|key| {
            let active = key == query.sort;
            let next_dir = if active { query.dir.reversed() } else { key.default_dir() };
            let href = format!(
                "/usage?{}",
                UsageQuery { sort: key, dir: next_dir, ..query.clone() }.to_query_string()
            );
            let aria_sort = match (active, query.dir) {
                (false, _) => "none",
                (true, SortDir::Asc) => "ascending",
                (true, SortDir::Desc) => "descending",
            };
            let arrow = match (active, query.dir) {
                (false, _) => "",
                (true, SortDir::Asc) => " ▲",
                (true, SortDir::Desc) => " ▼",
            };
            let numeric = key != SortKey::Model;
            view! {
                <th scope="col" aria-sort=aria_sort class:numeric=numeric>
                    <a href=href class="sort-link" id=format!("sort-{}", key.as_str()) data-sort=key.as_str()>
                        {key.label()}
                        <span aria-hidden="true">{arrow}</span>
                    </a>
                </th>
            }
        })
        .collect_view();

    let body = rows
        .into_iter()
        .map(|row| {
            let counts = row.counts;
            view! {
                <tr>
                    <th scope="row">{row.model}</th>
                    <td class="numeric">{format::count(counts.jobs)}</td>
                    <td class="numeric">{format::count(counts.completed)}</td>
                    <td class="numeric">{format::count(counts.failed)}</td>
                    <td class="numeric">{format::success_rate(counts.success_rate())}</td>
                    <td class="numeric" title=format!("{} GPU-ms", counts.gpu_ms)>
                        {format::compute_time(counts.gpu_ms)}
                    </td>
                    {compare.then(|| {
                        let before = row.previous.clone().unwrap_or_default();
                        let text = format::change(counts.jobs as i64, before.jobs as i64)
                            .unwrap_or_else(|| "—".to_string());
                        view! {
                            <td class="numeric" title=format!("{} jobs before", before.jobs)>{text}</td>
                        }
                    })}
                </tr>
            }
        })
        .collect_view();

    let compare_header = compare.then(|| {
        view! { <th scope="col" class="numeric">{format!("Jobs vs {previous_label}")}</th> }
    });

    view! {
        <p class="table-tools">
            <a href=toggle_href class="toggle-compare">{toggle_text}</a>
        </p>
        <div class="table-scroll">
            <table class="model-table">
                <caption class="visually-hidden">"Usage by model"</caption>
                <thead>
                    <tr>{headers}{compare_header}</tr>
                </thead>
                <tbody>{body}</tbody>
            </table>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::Counts;

    fn row(model: &str, jobs: u64, completed: u64, failed: u64, gpu_ms: i64) -> ModelRow {
        ModelRow { model: model.to_string(), counts: Counts { jobs, completed, failed, gpu_ms }, previous: None }
    }

    fn names(rows: &[ModelRow]) -> Vec<&str> {
        rows.iter().map(|r| r.model.as_str()).collect()
    }

    #[test]
    fn sort_by_jobs_desc_ties_by_name() {
        let mut rows = vec![row("b", 5, 0, 0, 0), row("a", 5, 0, 0, 0), row("c", 9, 0, 0, 0)];
        sort_models(&mut rows, SortKey::Jobs, SortDir::Desc);
        assert_eq!(names(&rows), ["c", "a", "b"]);
    }

    #[test]
    fn sort_reversed_keeps_name_ties_ascending() {
        let mut rows = vec![row("b", 5, 0, 0, 0), row("a", 5, 0, 0, 0), row("c", 1, 0, 0, 0)];
        sort_models(&mut rows, SortKey::Jobs, SortDir::Asc);
        assert_eq!(names(&rows), ["c", "a", "b"]);
    }

    #[test]
    fn sort_success_rate_puts_unfinished_last_both_ways() {
        let mut rows = vec![
            row("running-only", 3, 0, 0, 0),
            row("half", 4, 2, 2, 0),
            row("all", 2, 2, 0, 0),
        ];
        sort_models(&mut rows, SortKey::SuccessRate, SortDir::Desc);
        assert_eq!(names(&rows), ["all", "half", "running-only"]);
        sort_models(&mut rows, SortKey::SuccessRate, SortDir::Asc);
        assert_eq!(names(&rows), ["half", "all", "running-only"]);
    }

    #[test]
    fn sort_by_every_column() {
        let mut rows = vec![row("x", 1, 1, 3, 50), row("y", 2, 0, 1, 10)];
        sort_models(&mut rows, SortKey::Model, SortDir::Desc);
        assert_eq!(names(&rows), ["y", "x"]);
        sort_models(&mut rows, SortKey::Completed, SortDir::Desc);
        assert_eq!(names(&rows), ["x", "y"]);
        sort_models(&mut rows, SortKey::Failed, SortDir::Asc);
        assert_eq!(names(&rows), ["y", "x"]);
        sort_models(&mut rows, SortKey::ComputeTime, SortDir::Desc);
        assert_eq!(names(&rows), ["x", "y"]);
    }

    // A model whose jobs are all running has no success rate.
    #[test]
    fn case_u6_all_running_model_shows_dash() {
        let running = row("m", 3, 0, 0, 0);
        assert_eq!(running.counts.success_rate(), None);
        assert_eq!(format::success_rate(running.counts.success_rate()), "—");
    }
}
