//! The comparison's summary: medians over rounds of each side's p50, p99
//! and QPS, and the table that sets them side by side with their ratios.
//! Runs that failed are absent from a side's reports; a side with none
//! shows "err".

use mio_grpc_bench::report::Report;
use mio_grpc_bench::table::Table;

/// One scenario's results: the reports of each side's successful runs.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// The scenario's label, e.g. `U64 1KiB`.
    pub scenario: String,
    /// Our reports.
    pub ours: Vec<Report>,
    /// tonic's reports.
    pub tonic: Vec<Report>,
}

/// The median of `values` (the mean of the middle two for an even count),
/// or `None` when there are none.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match values.len() {
        0 => None,
        n if n % 2 == 1 => values.get(mid).copied(),
        _ => Some((values.get(mid - 1)? + values.get(mid)?) / 2.0),
    }
}

/// The figures a row shows for one side: medians over its successful runs.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Figures {
    p50_us: f64,
    p99_us: f64,
    qps: f64,
}

impl Figures {
    fn median_of(reports: &[Report]) -> Option<Figures> {
        let of = |f: fn(&Report) -> f64| median(reports.iter().map(f).collect());
        Some(Figures {
            p50_us: of(|r| r.p50_us)?,
            p99_us: of(|r| r.p99_us)?,
            qps: of(|r| r.qps)?,
        })
    }
}

fn cell(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "err".into(), |v| format!("{v:.decimals$}"))
}

fn ratio(num: Option<f64>, den: Option<f64>) -> String {
    match (num, den) {
        (Some(n), Some(d)) if d > 0.0 => format!("{:.2}", n / d),
        _ => "err".into(),
    }
}

/// The summary: one row per scenario, ours beside tonic, with ratios that
/// read "how many times better ours is" (above 1 is a win for ours).
pub fn table(rows: &[Row], rounds: usize) -> Table {
    let mut t = Table::new(&[
        "scenario",
        "ours p50 µs",
        "tonic p50 µs",
        "tonic/ours",
        "ours p99 µs",
        "tonic p99 µs",
        "tonic/ours",
        "ours QPS",
        "tonic QPS",
        "ours/tonic",
        "runs ok (ours, tonic)",
    ]);
    for row in rows {
        let o = Figures::median_of(&row.ours);
        let t_ = Figures::median_of(&row.tonic);
        let p50 = (o.map(|f| f.p50_us), t_.map(|f| f.p50_us));
        let p99 = (o.map(|f| f.p99_us), t_.map(|f| f.p99_us));
        let qps = (o.map(|f| f.qps), t_.map(|f| f.qps));
        t.row(vec![
            row.scenario.clone(),
            cell(p50.0, 1),
            cell(p50.1, 1),
            ratio(p50.1, p50.0),
            cell(p99.0, 1),
            cell(p99.1, 1),
            ratio(p99.1, p99.0),
            cell(qps.0, 0),
            cell(qps.1, 0),
            ratio(qps.0, qps.1),
            format!("{}/{rounds}, {}/{rounds}", row.ours.len(), row.tonic.len()),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_is_the_middle_or_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![7.0]), Some(7.0));
        assert_eq!(median(vec![30.0, 10.0]), Some(20.0));
        assert_eq!(median(vec![5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 100.0]), Some(3.5));
    }

    #[test]
    fn figures_are_medians_over_rounds_each_on_its_own() {
        let report = |p50_us, p99_us, qps| Report {
            client: "tonic".into(),
            target: "127.0.0.1:1".into(),
            rpc: "unary".into(),
            concurrency: 1,
            connections: 1,
            req_size: 0,
            resp_size: 0,
            duration_s: 1.0,
            count: 1,
            errors: 0,
            qps,
            mean_us: p50_us,
            p50_us,
            p90_us: p99_us,
            p99_us,
            p999_us: p99_us,
            max_us: p99_us,
            per_call: None,
            percentiles: Vec::new(),
        };
        let reports = [
            report(10.0, 50.0, 900.0),
            report(30.0, 20.0, 1100.0),
            report(20.0, 40.0, 1000.0),
        ];
        assert_eq!(
            Figures::median_of(&reports),
            Some(Figures {
                p50_us: 20.0,
                p99_us: 40.0,
                qps: 1000.0
            })
        );
        assert_eq!(Figures::median_of(&[]), None);
    }

    #[test]
    fn failed_sides_show_err_and_ratios_read_as_ours_better_above_one() {
        assert_eq!(ratio(Some(30.0), Some(10.0)), "3.00");
        assert_eq!(ratio(None, Some(10.0)), "err");
        assert_eq!(ratio(Some(1.0), Some(0.0)), "err");
        assert_eq!(cell(None, 1), "err");
        assert_eq!(cell(Some(12.345), 1), "12.3");
    }
}
