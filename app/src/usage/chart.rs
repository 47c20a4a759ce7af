//! The stacked bar chart, drawn with plotters to an SVG string. The server
//! draws it for the first paint and the browser redraws it at the width the
//! page gives it.

use plotters::prelude::*;

use super::{Granularity, UsageSummary};

/// Width the server draws at, before the browser has measured the real width.
pub const DEFAULT_WIDTH: u32 = 960;
/// Height of the chart in pixels at every width.
pub const HEIGHT: u32 = 300;

/// Completed jobs: blue. Failed jobs: orange. The pair stays apart under
/// the common kinds of colour blindness, and position (completed always
/// below failed) separates them too.
pub const COMPLETED_COLOR: RGBColor = RGBColor(0x25, 0x63, 0xeb);
pub const FAILED_COLOR: RGBColor = RGBColor(0xea, 0x58, 0x0c);
const AXIS_COLOR: RGBColor = RGBColor(0x6b, 0x72, 0x80);
const GRID_COLOR: RGBColor = RGBColor(0xe5, 0xe7, 0xeb);

/// A drawn chart and where its plotting area sits, in SVG pixels, so the
/// page can lay focusable hit areas over the bars.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawnChart {
    pub svg: String,
    pub width: u32,
    pub height: u32,
    pub plot_left: f64,
    pub plot_right: f64,
    pub plot_top: f64,
    pub plot_bottom: f64,
}

/// Draws `summary` as stacked bars, completed below failed, at `width`
/// pixels. The bucket that is still filling is drawn translucent.
pub fn draw(summary: &UsageSummary, width: u32) -> DrawnChart {
    let width = width.clamp(320, 4096);
    let mut svg = String::new();
    let mut plot = (0.0, width as f64, 0.0, HEIGHT as f64);

    {
        let root = SVGBackend::with_string(&mut svg, (width, HEIGHT)).into_drawing_area();
        match draw_into(&root, summary, width) {
            Ok(area) => plot = area,
            Err(error) => tracing::warn!(%error, "usage chart could not be drawn"),
        }
        // The SVG backend writes to a String, so presenting has no I/O to fail.
        let _ = root.present();
    }

    DrawnChart {
        svg,
        width,
        height: HEIGHT,
        plot_left: plot.0,
        plot_right: plot.1,
        plot_top: plot.2,
        plot_bottom: plot.3,
    }
}

type PlotArea = (f64, f64, f64, f64);

fn draw_into(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    summary: &UsageSummary,
    width: u32,
) -> Result<PlotArea, String> {
    let count = summary.buckets.len().max(1) as i32;
    let tallest = summary
        .buckets
        .iter()
        .map(|b| b.completed + b.failed)
        .max()
        .unwrap_or(0);
    let y_max = nice_ceiling(tallest);

    let mut chart = ChartBuilder::on(root)
        .margin_top(12)
        .margin_right(16)
        .margin_left(8)
        .margin_bottom(4)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0..count, 0..y_max as i64)
        .map_err(|e| e.to_string())?;

    let label_step = label_step(summary.buckets.len(), width);
    let labels: Vec<&str> = summary.buckets.iter().map(|b| b.label.as_str()).collect();
    let x_formatter = |index: &i32| -> String {
        let i = *index as usize;
        if i % label_step == 0 {
            labels.get(i).map(|s| s.to_string()).unwrap_or_default()
        } else {
            String::new()
        }
    };
    let y_formatter = |value: &i64| value.to_string();
    // plotters writes SVG font sizes divided by 1.24, so 15 here is about 12 px.
    let text = ("sans-serif", 15).into_font().color(&AXIS_COLOR);

    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(GRID_COLOR)
        .light_line_style(TRANSPARENT)
        .axis_style(AXIS_COLOR)
        .x_labels(count as usize + 1)
        .y_labels(5)
        .x_label_formatter(&x_formatter)
        .y_label_formatter(&y_formatter)
        .x_label_style(text.clone())
        .y_label_style(text.clone())
        .x_desc(axis_title(summary))
        .y_desc("Jobs")
        .axis_desc_style(text)
        .draw()
        .map_err(|e| e.to_string())?;

    for (i, bucket) in summary.buckets.iter().enumerate() {
        let x = i as i32;
        // NOTE: at 0.45 the still-filling bar is below the 3:1 contrast
        // WCAG 2.2 requires of graphics on white, so the tooltip and the
        // data table say "still filling" in words.
        let alpha = if bucket.partial { 0.45 } else { 1.0 };
        let completed = bucket.completed as i64;
        let failed = bucket.failed as i64;
        if completed > 0 {
            chart
                .draw_series(std::iter::once(bar(x, 0, completed, COMPLETED_COLOR.mix(alpha))))
                .map_err(|e| e.to_string())?;
        }
        if failed > 0 {
            let top = completed + failed;
            chart
                .draw_series(std::iter::once(bar(x, completed, top, FAILED_COLOR.mix(alpha))))
                .map_err(|e| e.to_string())?;
        }
    }

    let (x_range, y_range) = chart.plotting_area().get_pixel_range();
    Ok((
        x_range.start as f64,
        x_range.end as f64,
        y_range.start as f64,
        y_range.end as f64,
    ))
}

/// A bar for bucket `x` from `low` to `high`, with a one-pixel gap on each
/// side so neighbouring bars stay apart.
fn bar(x: i32, low: i64, high: i64, color: RGBAColor) -> Rectangle<(i32, i64)> {
    let mut rectangle = Rectangle::new([(x, low), (x + 1, high)], color.filled());
    rectangle.set_margin(0, 0, 1, 1);
    rectangle
}

fn axis_title(summary: &UsageSummary) -> String {
    let unit = match summary.granularity {
        Granularity::Minute => "Minute",
        Granularity::Hour => "Hour",
        Granularity::Day => "Day",
    };
    format!("{unit} ({})", summary.tz)
}

/// Returns how many buckets apart the x labels are, so that they do not
/// overlap: about one label per 70 pixels.
pub fn label_step(buckets: usize, width: u32) -> usize {
    let room = (width as usize / 70).max(2);
    let step = buckets.div_ceil(room).max(1);
    // Keep to steps that line up with the clock or the calendar.
    [1, 2, 3, 5, 6, 10, 15, 20, 30]
        .into_iter()
        .find(|&s| s >= step)
        .unwrap_or(step)
}

/// Returns the y axis top: at least 1, and a little above the tallest bar
/// so that it never touches the frame.
fn nice_ceiling(tallest: u64) -> u64 {
    if tallest == 0 {
        return 1;
    }
    let padded = tallest + tallest.div_ceil(10);
    let magnitude = 10u64.pow(padded.ilog10().saturating_sub(1));
    padded.div_ceil(magnitude) * magnitude
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sRGB channel (0 to 255) to linear light (0 to 1).
    fn linear(channel: u8) -> f64 {
        let c = channel as f64 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    }

    fn linear_rgb(color: RGBColor) -> [f64; 3] {
        [linear(color.0), linear(color.1), linear(color.2)]
    }

    /// WCAG 2.2 relative luminance of a linear RGB colour.
    fn luminance(rgb: [f64; 3]) -> f64 {
        0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
    }

    /// WCAG 2.2 contrast ratio between two linear RGB colours.
    fn contrast(a: [f64; 3], b: [f64; 3]) -> f64 {
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    /// Machado, Oliveira and Fernandes (2009) matrices for full-severity
    /// protanopia, deuteranopia and tritanopia, applied to linear RGB.
    const COLOUR_BLINDNESS: [(&str, [[f64; 3]; 3]); 3] = [
        ("protanopia", [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]]),
        ("deuteranopia", [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]]),
        ("tritanopia", [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]]),
    ];

    fn simulate(matrix: [[f64; 3]; 3], rgb: [f64; 3]) -> [f64; 3] {
        matrix.map(|row| (row[0] * rgb[0] + row[1] * rgb[1] + row[2] * rgb[2]).clamp(0.0, 1.0))
    }

    /// CIELAB (D65) of a linear RGB colour.
    fn lab(rgb: [f64; 3]) -> [f64; 3] {
        let x = (0.4124 * rgb[0] + 0.3576 * rgb[1] + 0.1805 * rgb[2]) / 0.95047;
        let y = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
        let z = (0.0193 * rgb[0] + 0.1192 * rgb[1] + 0.9505 * rgb[2]) / 1.08883;
        let f = |t: f64| if t > 0.008856 { t.cbrt() } else { 7.787 * t + 16.0 / 116.0 };
        [116.0 * f(y) - 16.0, 500.0 * (f(x) - f(y)), 200.0 * (f(y) - f(z))]
    }

    /// CIE76 colour difference. About 2.3 is just noticeable.
    fn delta_e(a: [f64; 3], b: [f64; 3]) -> f64 {
        let (a, b) = (lab(a), lab(b));
        ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
    }

    /// The smallest difference between two colours as seen with normal
    /// vision and under each simulated colour blindness.
    fn smallest_difference(a: RGBColor, b: RGBColor) -> f64 {
        let (a, b) = (linear_rgb(a), linear_rgb(b));
        COLOUR_BLINDNESS
            .iter()
            .map(|(_, matrix)| delta_e(simulate(*matrix, a), simulate(*matrix, b)))
            .fold(delta_e(a, b), f64::min)
    }

    /// A difference this large reads as two distinct colours at a glance.
    const DISTINCT: f64 = 40.0;

    #[test]
    fn palette_stays_apart_under_colour_blindness() {
        let difference = smallest_difference(COMPLETED_COLOR, FAILED_COLOR);
        assert!(difference > DISTINCT, "completed and failed differ by only {difference:.1}");
    }

    #[test]
    fn colour_blindness_check_rejects_red_and_green() {
        let green = RGBColor(0x16, 0xa3, 0x4a);
        let red = RGBColor(0xdc, 0x26, 0x26);
        assert!(smallest_difference(green, red) < DISTINCT);
    }

    #[test]
    fn bar_colours_contrast_with_background() {
        let white = [1.0, 1.0, 1.0];
        // WCAG 2.2 requires 3:1 for graphics that carry meaning (1.4.11).
        assert!(contrast(linear_rgb(COMPLETED_COLOR), white) >= 3.0);
        assert!(contrast(linear_rgb(FAILED_COLOR), white) >= 3.0);
    }

    #[test]
    fn axis_text_contrast_meets_aa() {
        let white = [1.0, 1.0, 1.0];
        assert!(contrast(linear_rgb(AXIS_COLOR), white) >= 4.5);
    }

    #[test]
    fn label_step_fits_width() {
        assert_eq!(label_step(7, 960), 1);
        assert_eq!(label_step(60, 960), 5);
        assert_eq!(label_step(60, 360), 15);
        assert_eq!(label_step(90, 960), 10);
        assert_eq!(label_step(24, 960), 2);
    }

    #[test]
    fn nice_ceiling_is_above_tallest() {
        assert_eq!(nice_ceiling(0), 1);
        assert!(nice_ceiling(1) >= 2);
        for tallest in [1, 7, 9, 10, 99, 100, 1234, 98_765] {
            assert!(nice_ceiling(tallest) > tallest, "{tallest}");
        }
    }
}
