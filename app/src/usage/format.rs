//! Number formats shared by the cards, the table, the tooltips and the CSV.

/// Formats GPU time for people: whole seconds under a minute ("42 s"),
/// tenths of a minute under an hour ("12.5 min"), tenths of an hour above
/// ("3.2 h"). The unit is chosen after rounding, so a value never shows as
/// "60 s" or "60.0 min": 59,950 ms is "1.0 min".
pub fn compute_time(gpu_ms: i64) -> String {
    let ms = gpu_ms.max(0) as f64;

    let seconds = (ms / 1_000.0).round();
    if seconds < 60.0 {
        return format!("{seconds:.0} s");
    }

    let minutes = round_tenth(ms / 60_000.0);
    if minutes < 60.0 {
        return format!("{minutes:.1} min");
    }

    let hours = round_tenth(ms / 3_600_000.0);
    format!("{} h", decimal_with_separators(hours))
}

/// Formats a success rate such as "87.5%", or "—" when no job finished.
/// Only an exact 100 % or 0 % shows as "100.0%" or "0.0%": a rate just
/// under or over them shows as "99.9%" or "0.1%", so a rounded figure never
/// hides a failure or a success.
pub fn success_rate(rate: Option<f64>) -> String {
    let Some(rate) = rate.filter(|r| r.is_finite()) else {
        return "—".to_string();
    };
    let percent = rate * 100.0;
    if percent >= 100.0 {
        return "100.0%".to_string();
    }
    if percent <= 0.0 {
        return "0.0%".to_string();
    }
    let shown = round_tenth(percent).clamp(0.1, 99.9);
    format!("{shown:.1}%")
}

/// Formats the change from `previous` to `current` as "+12 %", "−5 %" or
/// "No change", or `None` when `previous` is zero: a change from nothing has
/// no percentage.
pub fn change(current: i64, previous: i64) -> Option<String> {
    if previous <= 0 {
        return None;
    }
    let percent = ((current - previous) as f64 / previous as f64 * 100.0).round() as i64;
    Some(match percent {
        0 if current == previous => "No change".to_string(),
        // A change too small to show as a whole percent still has a sign.
        0 if current > previous => "+<1 %".to_string(),
        0 => "−<1 %".to_string(),
        p if p > 0 => format!("+{} %", group_thousands(&p.to_string())),
        p => format!("−{} %", group_thousands(&(-p).to_string())),
    })
}

/// Formats a count with thousands separators: 15000 is "15,000".
pub fn count(value: u64) -> String {
    group_thousands(&value.to_string())
}

fn round_tenth(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn decimal_with_separators(value: f64) -> String {
    let text = format!("{value:.1}");
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, "0"));
    format!("{}.{fraction}", group_thousands(whole))
}

fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_time_zero_is_zero_seconds() {
        assert_eq!(compute_time(0), "0 s");
    }

    #[test]
    fn compute_time_seconds_round_half_up() {
        assert_eq!(compute_time(42_000), "42 s");
        assert_eq!(compute_time(499), "0 s");
        assert_eq!(compute_time(500), "1 s");
        assert_eq!(compute_time(59_499), "59 s");
    }

    #[test]
    fn compute_time_never_shows_sixty_seconds() {
        assert_eq!(compute_time(59_500), "1.0 min");
        assert_eq!(compute_time(59_950), "1.0 min");
        assert_eq!(compute_time(60_000), "1.0 min");
    }

    #[test]
    fn compute_time_minutes() {
        assert_eq!(compute_time(750_000), "12.5 min");
        assert_eq!(compute_time(3_590_000), "59.8 min");
    }

    #[test]
    fn compute_time_never_shows_sixty_minutes() {
        assert_eq!(compute_time(3_597_000), "1.0 h");
        assert_eq!(compute_time(3_599_999), "1.0 h");
        assert_eq!(compute_time(3_600_000), "1.0 h");
    }

    #[test]
    fn compute_time_hours_near_unit_change() {
        assert_eq!(compute_time(7_179_000), "2.0 h");
        assert_eq!(compute_time(11_520_000), "3.2 h");
    }

    #[test]
    fn compute_time_large_hours_are_grouped() {
        assert_eq!(compute_time(3_600_000 * 269_123 + 1_800_000), "269,123.5 h");
    }

    #[test]
    fn compute_time_negative_is_zero() {
        assert_eq!(compute_time(-5), "0 s");
    }

    #[test]
    fn success_rate_without_finished_jobs_is_dash() {
        assert_eq!(success_rate(None), "—");
        assert_eq!(success_rate(Some(f64::NAN)), "—");
    }

    #[test]
    fn success_rate_edges() {
        assert_eq!(success_rate(Some(1.0)), "100.0%");
        assert_eq!(success_rate(Some(0.0)), "0.0%");
        assert_eq!(success_rate(Some(0.875)), "87.5%");
        assert_eq!(success_rate(Some(0.99999)), "99.9%");
        assert_eq!(success_rate(Some(0.00001)), "0.1%");
    }

    #[test]
    fn change_against_previous_window() {
        assert_eq!(change(112, 100).as_deref(), Some("+12 %"));
        assert_eq!(change(95, 100).as_deref(), Some("−5 %"));
        assert_eq!(change(100, 100).as_deref(), Some("No change"));
        assert_eq!(change(1_001, 1_000).as_deref(), Some("+<1 %"));
        assert_eq!(change(999, 1_000).as_deref(), Some("−<1 %"));
        assert_eq!(change(0, 40).as_deref(), Some("−100 %"));
        assert_eq!(change(5_000, 2).as_deref(), Some("+249,900 %"));
    }

    #[test]
    fn change_from_nothing_is_not_shown() {
        assert_eq!(change(10, 0), None);
        assert_eq!(change(0, 0), None);
    }

    #[test]
    fn count_groups_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(15_000), "15,000");
        assert_eq!(count(10_000_000), "10,000,000");
    }
}
