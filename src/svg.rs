//! Small inline SVG charts for `report.html`: horizontal bars (one or more series per
//! row, e.g. the funnel's records in and out) and a histogram. The output is plain
//! text with no scripts, fonts or external references, and the same input gives the
//! same bytes.

use std::fmt::Write as _;

/// Series colours, in order; the page's legend uses the same.
pub const COLORS: [&str; 3] = ["#3b6ea5", "#e0a040", "#7aa974"];

/// One row of a bar chart: a label, one value per series, and an optional link target
/// for the label (e.g. `#rule-filter.empty`).
pub struct BarRow {
    pub label: String,
    pub values: Vec<u64>,
    pub href: Option<String>,
}

/// Escape text for SVG/XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn thousands(n: u64) -> String {
    crate::report::thousands(n)
}

const LABEL_W: u32 = 190;
const BAR_W: u32 = 420;
const WIDTH: u32 = LABEL_W + BAR_W + 90;
const BAR_H: u32 = 14;

/// Horizontal bars, all scaled to the largest value; `series` names the values of
/// each row (a legend is drawn when there are several).
pub fn hbars(rows: &[BarRow], series: &[&str]) -> String {
    let n = series.len().max(1) as u32;
    let row_h = n * BAR_H + 8;
    let legend_h = if series.len() > 1 { 20 } else { 0 };
    let height = legend_h + row_h * rows.len() as u32 + 4;
    let max = rows.iter().flat_map(|r| r.values.iter().copied()).max().unwrap_or(0).max(1);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img">"#
    );
    if series.len() > 1 {
        let mut x = LABEL_W;
        for (i, s) in series.iter().enumerate() {
            let _ = write!(
                out,
                r#"<rect x="{x}" y="4" width="10" height="10" fill="{}"/><text x="{}" y="13">{}</text>"#,
                COLORS[i % COLORS.len()],
                x + 14,
                escape(s)
            );
            x += 24 + 7 * s.chars().count() as u32;
        }
    }
    for (ri, r) in rows.iter().enumerate() {
        let y0 = legend_h + ri as u32 * row_h + 4;
        let label = escape(&r.label);
        let ty = y0 + (n * BAR_H) / 2 + 4;
        match &r.href {
            Some(h) => {
                let _ = write!(out, r#"<a href="{}"><text x="{}" y="{ty}" text-anchor="end" class="link">{label}</text></a>"#, escape(h), LABEL_W - 8);
            }
            None => {
                let _ = write!(out, r#"<text x="{}" y="{ty}" text-anchor="end">{label}</text>"#, LABEL_W - 8);
            }
        }
        for (si, &v) in r.values.iter().enumerate() {
            let y = y0 + si as u32 * BAR_H;
            let w = ((v as f64 / max as f64) * BAR_W as f64).round() as u32;
            let w = if v > 0 { w.max(1) } else { 0 };
            let name = series.get(si).copied().unwrap_or("");
            let _ = write!(
                out,
                r#"<rect x="{LABEL_W}" y="{y}" width="{w}" height="{}" fill="{}"><title>{label} {}: {}</title></rect><text x="{}" y="{}" class="num">{}</text>"#,
                BAR_H - 2,
                COLORS[si % COLORS.len()],
                escape(name),
                thousands(v),
                LABEL_W + w + 4,
                y + BAR_H - 4,
                thousands(v)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// A histogram: one column per bucket, labelled with the bucket's lower edge.
pub fn histogram(buckets: &[(u64, u64)], unit: &str) -> String {
    const W: u32 = 340;
    const H: u32 = 150;
    const TOP: u32 = 16;
    const PLOT_H: u32 = 100;
    let max = buckets.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let n = buckets.len().max(1) as u32;
    let col = (W - 20) / n;
    let mut out = String::new();
    let _ = write!(out, r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart hist" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img">"#);
    for (i, &(from, count)) in buckets.iter().enumerate() {
        let x = 10 + i as u32 * col;
        let h = ((count as f64 / max as f64) * PLOT_H as f64).round() as u32;
        let h = if count > 0 { h.max(1) } else { 0 };
        let y = TOP + PLOT_H - h;
        let _ = write!(
            out,
            r#"<rect x="{}" y="{y}" width="{}" height="{h}" fill="{}"><title>{} {} and more: {} documents</title></rect>"#,
            x + 1,
            col.saturating_sub(2).max(1),
            COLORS[0],
            thousands(from),
            escape(unit),
            thousands(count)
        );
        if count > 0 {
            let _ = write!(out, r#"<text x="{}" y="{}" text-anchor="middle" class="num">{}</text>"#, x + col / 2, y - 2, thousands(count));
        }
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle" class="axis">{}</text>"#,
            x + col / 2,
            TOP + PLOT_H + 12,
            short(from)
        );
    }
    let _ = write!(out, r#"<text x="{}" y="{}" text-anchor="middle" class="axis">{} (bucket lower edge)</text>"#, W / 2, H - 6, escape(unit));
    out.push_str("</svg>");
    out
}

/// `1536` as `1.5k`, `2097152` as `2.1M`: short axis labels.
fn short(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => trim(n as f64 / 1e3, "k"),
        1_000_000..1_000_000_000 => trim(n as f64 / 1e6, "M"),
        _ => trim(n as f64 / 1e9, "G"),
    }
}

fn trim(v: f64, suffix: &str) -> String {
    let s = format!("{v:.1}");
    format!("{}{suffix}", s.strip_suffix(".0").unwrap_or(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widths(svg: &str) -> Vec<u32> {
        svg.split("<rect ")
            .skip(1)
            .filter(|r| r.contains("<title>"))
            .map(|r| {
                let w = r.split("width=\"").nth(1).unwrap();
                w[..w.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn bars_scale_to_the_largest_value_and_link_labels() {
        let rows = vec![
            BarRow { label: "a<b".into(), values: vec![100], href: Some("#rule-a".into()) },
            BarRow { label: "c".into(), values: vec![25], href: None },
            BarRow { label: "d".into(), values: vec![0], href: None },
        ];
        let svg = hbars(&rows, &["records"]);
        assert_eq!(widths(&svg), vec![BAR_W, BAR_W / 4, 0]);
        assert!(svg.contains(r##"<a href="#rule-a">"##));
        assert!(svg.contains("a&lt;b"));
        assert!(!svg.contains("a<b"));
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
    }

    #[test]
    fn several_series_get_a_legend_and_one_bar_each() {
        let rows = vec![BarRow { label: "read".into(), values: vec![10, 8], href: None }];
        let svg = hbars(&rows, &["in", "out"]);
        assert_eq!(widths(&svg), vec![BAR_W, BAR_W * 8 / 10]);
        assert!(svg.contains(">in</text>") && svg.contains(">out</text>"));
    }

    #[test]
    fn histogram_columns_follow_counts() {
        let svg = histogram(&[(0, 0), (1, 5), (2, 10), (1536, 1)], "chars");
        assert_eq!(widths(&svg).len(), 4);
        let heights: Vec<u32> = svg
            .split("<rect ")
            .skip(1)
            .map(|r| {
                let h = r.split("height=\"").nth(1).unwrap();
                h[..h.find('"').unwrap()].parse().unwrap()
            })
            .collect();
        assert_eq!(heights, vec![0, 50, 100, 10]);
        assert!(svg.contains(">1.5k</text>"));
        assert_eq!(short(2_000_000), "2M");
    }
}
