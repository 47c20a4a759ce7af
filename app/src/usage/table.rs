//! The per-model table and its sort order.

use leptos::prelude::*;

use super::format;
use super::{Counts, ModelRow, SortDir, SortKey, UsageQuery};

/// Number of models the table lists before it folds the rest into one
/// row. With `models=all` in the URL it lists every model.
pub const TOP_MODELS: usize = 20;

/// The models past the first `TOP_MODELS`, summed into the table's last
/// row, so the rows still add up to the cards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldedModels {
    /// Number of models summed.
    pub models: usize,
    pub counts: Counts,
    /// Their counts in the previous window, for the comparison column.
    pub previous: Counts,
}

/// Splits sorted rows into the first `limit` and the sum of the rest.
/// Returns no sum when every row fits.
pub fn fold_models(mut rows: Vec<ModelRow>, limit: usize) -> (Vec<ModelRow>, Option<FoldedModels>) {
    if rows.len() <= limit {
        return (rows, None);
    }
    let rest = rows.split_off(limit);
    let mut folded = FoldedModels { models: rest.len(), counts: Counts::default(), previous: Counts::default() };
    for row in rest {
        add_counts(&mut folded.counts, &row.counts);
        add_counts(&mut folded.previous, &row.previous.unwrap_or_default());
    }
    (rows, Some(folded))
}

fn add_counts(total: &mut Counts, counts: &Counts) {
    total.jobs += counts.jobs;
    total.completed += counts.completed;
    total.failed += counts.failed;
    total.gpu_ms += counts.gpu_ms;
}

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
    let model_count = rows.len();
    let limit = if query.all_models { model_count } else { TOP_MODELS };
    let (rows, folded) = fold_models(rows, limit);

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
    let all_models_href =
        format!("/usage?{}", UsageQuery { all_models: !query.all_models, ..query.clone() }.to_query_string());
    let all_models_link = (model_count > TOP_MODELS).then(|| {
        let text = if query.all_models {
            format!("Show the top {TOP_MODELS} models")
        } else {
            format!("Show all {} models", format::count(model_count as u64))
        };
        view! { <a href=all_models_href.clone() class="toggle-models">{text}</a> }
    });

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
            let name = view! { <th scope="row">{row.model}</th> };
            view! { <tr>{count_cells(name, row.counts, row.previous.unwrap_or_default(), compare)}</tr> }
        })
        .collect_view();
    let folded_row = folded.map(|folded| {
        let noun = if folded.models == 1 { "model" } else { "models" };
        let name = view! {
            <th scope="row">
                <a href=all_models_href>{format!("{} more {noun}", format::count(folded.models as u64))}</a>
            </th>
        };
        view! { <tr class="folded-row">{count_cells(name, folded.counts, folded.previous, compare)}</tr> }
    });

    let compare_header = compare.then(|| {
        view! { <th scope="col" class="numeric">{format!("Jobs vs {previous_label}")}</th> }
    });

    view! {
        <p class="table-tools">
            <a href=toggle_href class="toggle-compare">{toggle_text}</a>
            {all_models_link}
        </p>
        <div class="table-scroll">
            <table class="model-table">
                <caption class="visually-hidden">"Usage by model"</caption>
                <thead>
                    <tr>{headers}{compare_header}</tr>
                </thead>
                <tbody>{body}{folded_row}</tbody>
            </table>
        </div>
    }
}

/// Renders one table row's cells: `name`, the counts, the success rate, the
/// compute time and, with `compare`, the change in jobs from `before`.
fn count_cells(name: impl IntoView, counts: Counts, before: Counts, compare: bool) -> impl IntoView {
    view! {
        {name}
        <td class="numeric">{format::count(counts.jobs)}</td>
        <td class="numeric">{format::count(counts.completed)}</td>
        <td class="numeric">{format::count(counts.failed)}</td>
        <td class="numeric">{format::success_rate(counts.success_rate())}</td>
        <td class="numeric" title=format!("{} GPU-ms", counts.gpu_ms)>
            {format::compute_time(counts.gpu_ms)}
        </td>
        {compare.then(|| {
            let text = format::change(counts.jobs as i64, before.jobs as i64).unwrap_or_else(|| "—".to_string());
            view! { <td class="numeric" title=format!("{} jobs before", before.jobs)>{text}</td> }
        })}
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

    #[test]
    fn fold_keeps_rows_that_fit() {
        let rows = vec![row("a", 1, 1, 0, 5), row("b", 2, 0, 2, 7)];
        let (shown, folded) = fold_models(rows.clone(), 2);
        assert_eq!(shown, rows);
        assert_eq!(folded, None);
    }

    #[test]
    fn fold_sums_the_rest() {
        let mut rows = vec![row("a", 9, 8, 1, 100), row("b", 5, 3, 1, 40), row("c", 2, 1, 1, 10)];
        rows[2].previous = Some(Counts { jobs: 4, completed: 4, failed: 0, gpu_ms: 1 });
        let (shown, folded) = fold_models(rows, 1);
        assert_eq!(names(&shown), ["a"]);
        let folded = folded.expect("two rows past the limit");
        assert_eq!(folded.models, 2);
        assert_eq!(folded.counts, Counts { jobs: 7, completed: 4, failed: 2, gpu_ms: 50 });
        assert_eq!(folded.previous, Counts { jobs: 4, completed: 4, failed: 0, gpu_ms: 1 });
    }

    // A model whose jobs are all running has no success rate.
    #[test]
    fn case_u6_all_running_model_shows_dash() {
        let running = row("m", 3, 0, 0, 0);
        assert_eq!(running.counts.success_rate(), None);
        assert_eq!(format::success_rate(running.counts.success_rate()), "—");
    }
}
