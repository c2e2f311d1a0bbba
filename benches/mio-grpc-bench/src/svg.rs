//! A hand-written SVG latency-percentile plot: one line per run, the
//! percentile on a log scale of 1 / (1 − p) (50, 90, 99, 99.9, … , max)
//! across, latency in µs on a log scale up.

use std::fmt::Write as _;

/// One line of the plot: a label and its `[percentile, µs]` points.
#[derive(Clone, Debug)]
pub struct Series {
    /// The legend text.
    pub label: String,
    /// Points in increasing percentile order.
    pub points: Vec<(f64, f64)>,
    /// Draw dashed (e.g. the TCP floor).
    pub dashed: bool,
}

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 520.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 250.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
/// Where "max" (p = 100) sits on the percentile axis: one decade past
/// 99.999.
const MAX_X: f64 = 6.0;
const COLOURS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// The percentile's position: −log10(1 − p/100), with 100 at [`MAX_X`].
fn px(p: f64) -> f64 {
    if p >= 100.0 {
        MAX_X
    } else {
        (-(1.0 - p / 100.0).log10()).min(MAX_X - 0.5)
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The SVG document for `series` under `title`.
///
/// ```
/// use mio_grpc_bench::svg::{percentile_plot, Series};
/// let svg = percentile_plot("demo", &[Series {
///     label: "U1 0 B".into(),
///     points: vec![(50.0, 10.0), (99.0, 14.0), (100.0, 40.0)],
///     dashed: false,
/// }]);
/// assert!(svg.starts_with("<svg"));
/// ```
pub fn percentile_plot(title: &str, series: &[Series]) -> String {
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().map(|&(_, v)| v))
        .filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo > hi { (1.0, 10.0) } else { (lo, hi) };
    let y0 = lo.log10().floor();
    let y1 = (hi.log10().ceil()).max(y0 + 1.0);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_of = |p: f64| LEFT + (px(p) - px(50.0)) / (MAX_X - px(50.0)) * plot_w;
    let y_of = |v: f64| TOP + plot_h - (v.max(1e-9).log10() - y0) / (y1 - y0) * plot_h;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        escape(title)
    );
    // Y grid: 1, 2, 5 per decade.
    let mut decade = y0;
    while decade <= y1 {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powf(decade);
            if v.log10() > y1 + 1e-9 {
                continue;
            }
            let y = y_of(v);
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + plot_w,
                LEFT - 6.0,
                y + 4.0,
                v
            );
        }
        decade += 1.0;
    }
    // X grid.
    for (p, label) in [
        (50.0, "p50"),
        (90.0, "p90"),
        (99.0, "p99"),
        (99.9, "p99.9"),
        (99.99, "p99.99"),
        (99.999, "p99.999"),
        (100.0, "max"),
    ] {
        let x = x_of(p);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{label}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0
        );
    }
    let _ = writeln!(
        out,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="18" y="{}" transform="rotate(-90 18 {})" text-anchor="middle">latency (µs, log)</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">percentile</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 10.0
    );
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = s
            .points
            .iter()
            .filter(|(p, v)| *p >= 50.0 && v.is_finite() && *v > 0.0)
            .map(|&(p, v)| format!("{:.1},{:.1}", x_of(p), y_of(v)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{}"/>"#,
            points.join(" ")
        );
        let ly = TOP + 10.0 + i as f64 * 20.0;
        let lx = LEFT + plot_w + 15.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            lx + 24.0,
            lx + 30.0,
            ly + 4.0,
            escape(&s.label)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plot_has_one_line_per_series_in_order_and_escapes_labels() {
        let svg = percentile_plot(
            "t <1>",
            &[
                Series {
                    label: "a & b".into(),
                    points: vec![(50.0, 10.0), (99.0, 20.0), (100.0, 80.0)],
                    dashed: false,
                },
                Series {
                    label: "floor".into(),
                    points: vec![(50.0, 5.0), (100.0, 9.0)],
                    dashed: true,
                },
            ],
        );
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a &amp; b") && svg.contains("t &lt;1&gt;"));
        assert_eq!(
            svg.matches("stroke-dasharray").count(),
            2,
            "line and legend"
        );
        // Higher latency is higher up (smaller y).
        let first = svg.split("points=\"").nth(1).unwrap();
        let ys: Vec<f64> = first
            .split('"')
            .next()
            .unwrap()
            .split(' ')
            .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        assert!(ys[0] > ys[1] && ys[1] > ys[2], "{ys:?}");
    }

    #[test]
    fn percentile_axis_is_monotonic_and_max_is_last() {
        let ps = [50.0, 90.0, 99.0, 99.9, 99.99, 99.999, 100.0];
        for w in ps.windows(2) {
            assert!(px(w[0]) < px(w[1]), "{w:?}");
        }
    }
}
