//! `soak`'s picture: one panel per sampled figure against the minutes of the run, a line per
//! node (and, beside the stores, the blocks topic they copy), as an SVG file.

use super::pow_chart::ChartError;
use super::soak::{Sample, FIGURES};
use plotters::prelude::*;
use std::path::Path;

/// Draws `samples` into `path`.
pub fn write_svg(path: &Path, samples: &[Sample]) -> Result<(), ChartError> {
    draw(path, samples).map_err(|e| ChartError { path: path.display().to_string(), problem: e.to_string() })
}

fn draw(path: &Path, samples: &[Sample]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled("kafkachain soak: three nodes mining under a steady signed load", ("sans-serif", 20))?;
    let mut nodes: Vec<&str> = samples.iter().map(|s| s.node.as_str()).collect();
    nodes.dedup();
    nodes.sort_unstable();
    nodes.dedup();
    let minutes = samples.iter().map(|s| s.elapsed_s / 60.0).fold(1.0, f64::max);
    for (panel, (figure, read)) in root.split_evenly((3, 2)).iter().zip(FIGURES) {
        let top = samples.iter().filter_map(read).fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(panel)
            .caption(figure, ("sans-serif", 15))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..minutes, 0.0..top)?;
        chart.configure_mesh().x_desc("minutes").light_line_style(WHITE).draw()?;
        for (index, node) in nodes.iter().enumerate() {
            let color = Palette99::pick(index).to_rgba();
            let line = samples
                .iter()
                .filter(|s| s.node == *node)
                .filter_map(|s| read(s).map(|value| (s.elapsed_s / 60.0, value)));
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))?
                .label(*node)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        }
        if figure == "store_mib" {
            let first = nodes.first().copied().unwrap_or_default();
            let topic = samples
                .iter()
                .filter(|s| s.node == first)
                .filter_map(|s| s.blocks_topic_mib.map(|mib| (s.elapsed_s / 60.0, mib)));
            chart
                .draw_series(LineSeries::new(topic, BLACK.stroke_width(1)))?
                .label("blocks topic")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
        }
        chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).border_style(BLACK).draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_figure_gets_a_panel_with_a_line_per_node() {
        let samples: Vec<Sample> = (0..6)
            .flat_map(|i| {
                ["n1", "n2"].map(|node| Sample {
                    elapsed_s: i as f64 * 10.0,
                    node: node.into(),
                    rss_mib: 80.0 + i as f64,
                    open_files: 50,
                    threads: 30,
                    store_mib: 10.0 + i as f64,
                    blocks_topic_mib: Some(2.0 + i as f64 / 10.0),
                    mempool: 100,
                    height: i,
                    propagation_p99_ms: (i > 0).then_some(40),
                })
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("soak.svg");
        write_svg(&path, &samples).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for (figure, _) in FIGURES {
            assert!(svg.contains(figure), "a panel for {figure}");
        }
        let labelled = |label: &str| svg.lines().any(|line| line.trim() == label);
        assert!(labelled("blocks topic") && labelled("n1") && labelled("n2"), "{svg}");
    }
}
