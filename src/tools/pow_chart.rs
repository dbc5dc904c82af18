//! `bench-pow --svg`: the sweep's rate against the thread count, beside linear scaling from one
//! thread, as an SVG file people can put next to their numbers.

use super::bench_pow::{CpuInfo, PowBenchReport};
use plotters::prelude::*;
use std::path::Path;

/// Why the chart could not be drawn or written (plotters reports its errors as text).
#[derive(Debug, thiserror::Error)]
#[error("drawing {path}: {problem}")]
pub struct ChartError {
    /// The SVG file.
    pub path: String,
    /// What plotters reported.
    pub problem: String,
}

/// Draws `reports` (one per thread count, the first the baseline) for `cpu` into `path`.
pub fn write_svg(path: &Path, cpu: &CpuInfo, reports: &[PowBenchReport]) -> Result<(), ChartError> {
    let fail = |problem: String| ChartError { path: path.display().to_string(), problem };
    draw(path, cpu, reports).map_err(|e| fail(e.to_string()))
}

fn draw(path: &Path, cpu: &CpuInfo, reports: &[PowBenchReport]) -> Result<(), Box<dyn std::error::Error>> {
    let millions = |rate: f64| rate / 1e6;
    let measured: Vec<(f64, f64)> = reports.iter().map(|r| (r.threads as f64, millions(r.trials_per_sec))).collect();
    let per_thread = reports.first().map_or(0.0, |first| millions(first.trials_per_sec) / first.threads as f64);
    let max_threads = reports.iter().map(|r| r.threads).max().unwrap_or(1) as f64;
    let linear: Vec<(f64, f64)> = measured.iter().map(|(threads, _)| (*threads, per_thread * threads)).collect();
    let top = measured.iter().chain(&linear).map(|(_, rate)| *rate).fold(1.0, f64::max) * 1.1;
    let kernel = reports.first().map_or("", |r| r.kernel.as_str());

    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("kafkachain bench-pow: {kernel} on {}", cpu.model), ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.5..max_threads + 0.5, 0.0..top)?;
    chart.configure_mesh().x_desc("threads").y_desc("million nonces per second").draw()?;
    chart
        .draw_series(LineSeries::new(linear, RED.mix(0.6)))?
        .label("linear from one thread")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.mix(0.6)));
    chart
        .draw_series(LineSeries::new(measured.clone(), &BLUE))?
        .label("measured")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart.draw_series(measured.iter().map(|point| Circle::new(*point, 4, BLUE.filled())))?;
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::bench_pow::sample_report;
    use super::*;

    #[test]
    fn the_chart_is_an_svg_with_a_point_per_thread_count() {
        let report = |threads: usize, rate: f64| sample_report(threads, rate, 1.0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pow.svg");
        let cpu = CpuInfo { model: "test cpu".into(), flags: vec![], cores: 2 };
        write_svg(&path, &cpu, &[report(1, 20e6), report(2, 39e6)]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert_eq!(svg.matches("<circle").count(), 2, "one point per thread count");
        assert!(svg.contains("test cpu") && svg.contains("threads"));
        let missing = write_svg(&dir.path().join("no/such/dir/pow.svg"), &cpu, &[report(1, 1.0)]);
        assert!(missing.is_err());
    }
}
