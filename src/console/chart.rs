//! The overview's chart, drawn on the server as SVG: accepted and done per minute over
//! the last hour. No script, no style attribute (the CSP allows neither): colours are
//! presentation attributes and the CSS classes of the embedded sheet.

use maud::{Markup, html};

use super::format::utc;
use crate::inbox::Minute;

const WIDTH: u32 = 600;
const HEIGHT: u32 = 160;
const LEFT: u32 = 36;
const BOTTOM: u32 = 20;

/// A line of `points` scaled to `max`, as an SVG `points` attribute.
fn polyline(values: impl Iterator<Item = u64>, count: usize, max: u64) -> String {
    let plot_w = f64::from(WIDTH - LEFT);
    let plot_h = f64::from(HEIGHT - BOTTOM - 8);
    let step = plot_w / (count.max(2) - 1) as f64;
    values
        .enumerate()
        .map(|(i, value)| {
            let x = f64::from(LEFT) + step * i as f64;
            let y = 8.0 + plot_h * (1.0 - value as f64 / max.max(1) as f64);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The chart of `minutes` (oldest first).
pub(crate) fn per_minute(minutes: &[Minute]) -> Markup {
    let max = minutes
        .iter()
        .map(|m| m.accepted.max(m.done))
        .max()
        .unwrap_or(0);
    let accepted = polyline(minutes.iter().map(|m| m.accepted), minutes.len(), max);
    let done = polyline(minutes.iter().map(|m| m.done), minutes.len(), max);
    let first = minutes.first().map(|m| utc(m.start_ms)).unwrap_or_default();
    let last = minutes.last().map(|m| utc(m.start_ms)).unwrap_or_default();
    let view_box = format!("0 0 {WIDTH} {HEIGHT}");
    let base = HEIGHT - BOTTOM;
    let total_accepted: u64 = minutes.iter().map(|m| m.accepted).sum();
    let total_done: u64 = minutes.iter().map(|m| m.done).sum();
    html! {
        svg class="chart" viewBox=(view_box) role="img" xmlns="http://www.w3.org/2000/svg"
            aria-label=(format!("Accepted ({total_accepted}) and done ({total_done}) per minute over the last hour")) {
            title { "Accepted and done per minute, last hour" }
            line x1=(LEFT) y1="8" x2=(LEFT) y2=(base) stroke="#999" {}
            line x1=(LEFT) y1=(base) x2=(WIDTH) y2=(base) stroke="#999" {}
            text x="2" y="14" font-size="11" fill="#555" { (max) }
            text x="2" y=(base) font-size="11" fill="#555" { "0" }
            text x=(LEFT) y=(HEIGHT - 4) font-size="11" fill="#555" { (first.get(11..16).unwrap_or("")) }
            text x=(WIDTH - 36) y=(HEIGHT - 4) font-size="11" fill="#555" { (last.get(11..16).unwrap_or("")) }
            polyline points=(accepted) fill="none" stroke="#2563eb" stroke-width="2" {}
            polyline points=(done) fill="none" stroke="#16a34a" stroke-width="2" stroke-dasharray="5 3" {}
        }
        p class="legend" {
            span class="key accepted" { "accepted" } " " (total_accepted) " · "
            span class="key done" { "done" } " " (total_done) " in the last hour (UTC)"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_is_svg_with_two_lines_and_no_script() {
        let minutes: Vec<Minute> = (0..60)
            .map(|i| Minute {
                start_ms: i * 60_000,
                accepted: u64::try_from(i).unwrap_or(0),
                done: 0,
            })
            .collect();
        let svg = per_minute(&minutes).into_string();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(!svg.contains("script") && !svg.contains("style="));
        assert!(
            svg.contains(">59<"),
            "the scale's top is the busiest minute"
        );
    }
}
