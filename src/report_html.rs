//! `report.html`: the run report as one self-contained page (styles and SVG charts
//! inline; no scripts, fonts or anything fetched), rendered from `report.json`, and
//! `manifest.json` and `timings.json` when there are. The page shows only what those
//! files hold, so its numbers are theirs; since it shows the timings, it is, like
//! `timings.json`, not the same from run to run (the data files are). `curate report`
//! renders it again from an output folder.
//!
//! Every number the page takes from `report.json` that a reader may want to check
//! carries `data-k` (its path in `report.json`, keys joined by `/`) and `data-v` (the
//! value as JSON has it).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use minijinja::{Environment, Value as JValue, context};
use serde_json::Value;

use crate::report::thousands;
use crate::svg::{self, BarRow};

const TEMPLATE: &str = include_str!("report_html.j2");

/// Check that `report` has what the page needs, naming the first key that is missing
/// or of the wrong type.
fn check(report: &Value, file: &str) -> anyhow::Result<()> {
    let need_str = ["recipe/name", "recipe/file", "recipe/sha256", "curate_version"];
    let need_u64 = [
        "recipe/seed",
        "totals/records_read",
        "totals/documents_kept",
        "totals/chars_kept",
        "totals/ledger_entries",
        "totals/errors_skipped",
    ];
    let need_arr = ["funnel", "sources", "warnings"];
    let at = |k: &str| report.pointer(&format!("/{k}"));
    for k in need_str {
        if !at(k).is_some_and(Value::is_string) {
            bail!("`{file}`: `{}` is missing or not a string", k.replace('/', "."));
        }
    }
    for k in need_u64 {
        if !at(k).is_some_and(Value::is_u64) {
            bail!("`{file}`: `{}` is missing or not a whole number", k.replace('/', "."));
        }
    }
    for k in need_arr {
        if !at(k).is_some_and(Value::is_array) {
            bail!("`{file}`: `{k}` is missing or not a list");
        }
    }
    if !at("drops").is_some_and(Value::is_object) {
        bail!("`{file}`: `drops` is missing or not a table");
    }
    for (i, s) in report["sources"].as_array().into_iter().flatten().enumerate() {
        if !s["name"].is_string() {
            bail!("`{file}`: `sources[{i}].name` is missing or not a string");
        }
    }
    Ok(())
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// A funnel (the report's, or a source's) as bars of records in and out per stage.
fn funnel_rows(funnel: &Value) -> Vec<BarRow> {
    funnel
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| BarRow {
            label: r["stage"].as_str().unwrap_or("?").to_string(),
            values: vec![u(&r["records_in"]), u(&r["records_out"])],
            href: None,
        })
        .collect()
}

fn charts(report: &Value) -> JValue {
    let funnel = funnel_rows(&report["funnel"]);
    let mut drops: Vec<(&String, u64)> = report["drops"].as_object().into_iter().flatten().map(|(k, v)| (k, u(v))).collect();
    drops.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let drops: Vec<BarRow> =
        drops.into_iter().map(|(k, n)| BarRow { label: k.clone(), values: vec![n], href: Some(format!("#rule-{k}")) }).collect();
    let mix: Vec<BarRow> = report["shards"]["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| BarRow {
            label: s["source"].as_str().unwrap_or("?").to_string(),
            values: vec![u(&s["tokens_before"]), u(&s["train_tokens"])],
            href: None,
        })
        .collect();
    let hist = |v: &Value, unit: &str| -> Option<String> {
        let b: Vec<(u64, u64)> = v.as_array()?.iter().map(|b| (u(&b["from"]), u(&b["documents"]))).collect();
        (!b.is_empty()).then(|| svg::histogram(&b, unit))
    };
    let lengths: Vec<JValue> = report["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s.get("lengths").is_some())
        .map(|s| {
            let l = &s["lengths"];
            context! {
                name => s["name"].as_str().unwrap_or("?"),
                chars => hist(&l["chars"], "characters").map(JValue::from_safe_string),
                tokens => hist(&l["tokens"], "tokens").map(JValue::from_safe_string),
            }
        })
        .collect();
    // Each source's own funnel, for the page to show one source at a time.
    let source_funnels: Vec<JValue> = report["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, s)| s["role"] != "eval")
        .map(|(i, s)| {
            context! {
                index => i,
                name => s["name"].as_str().unwrap_or("?"),
                chart => JValue::from_safe_string(svg::hbars(&funnel_rows(&s["funnel"]), &["records in", "records out"])),
            }
        })
        .collect();
    let safe = |s: String| JValue::from_safe_string(s);
    context! {
        funnel => safe(svg::hbars(&funnel, &["records in", "records out"])),
        source_funnels => source_funnels,
        drops => (!drops.is_empty()).then(|| safe(svg::hbars(&drops, &["records"]))),
        mix => (!mix.is_empty()).then(|| safe(svg::hbars(&mix, &["tokens before", "train tokens after"]))),
        lengths => lengths,
    }
}

/// A JSON value as short text: strings as they are, lists joined with `, `, tables as
/// `key: value` pairs.
fn brief(v: &Value) -> String {
    match v {
        Value::Null => "–".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(brief).collect::<Vec<_>>().join(", "),
        Value::Object(o) => o.iter().map(|(k, v)| format!("{k}: {}", brief(v))).collect::<Vec<_>>().join("; "),
        other => other.to_string(),
    }
}

/// The stages' clocks as bars (milliseconds), CPU clocks and wall clocks labelled: they
/// measure different things and do not add up.
fn timing_bars(t: &Value) -> JValue {
    let rows: Vec<BarRow> = t["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| BarRow {
            label: format!("{} ({})", s["stage"].as_str().unwrap_or("?"), s["clock"].as_str().unwrap_or("?")),
            values: vec![(s["seconds"].as_f64().unwrap_or(0.0) * 1000.0).round() as u64],
            href: None,
        })
        .collect();
    if rows.is_empty() { JValue::from(()) } else { JValue::from_safe_string(svg::hbars(&rows, &["milliseconds"])) }
}

/// Render the page. `file` names the report for errors (e.g. `out/report.json`).
pub fn render(report: &Value, manifest: Option<&Value>, timings: Option<&Value>, file: &str) -> anyhow::Result<String> {
    check(report, file)?;
    let mut env = Environment::new();
    // Optional sections (no shards, no policy) read as empty rather than failing.
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    // Escape as HTML needs (`&`, `<`, `>`, quotes), leaving `/` in links readable.
    env.set_formatter(|out, _state, value| {
        let text = value.to_string();
        let text = if value.is_safe() { text } else { svg::escape(&text) };
        out.write_str(&text).map_err(minijinja::Error::from)
    });
    env.add_filter("thousands", |v: JValue| -> String {
        match u64::try_from(v.clone()) {
            Ok(n) => thousands(n),
            Err(_) => v.to_string(),
        }
    });
    env.add_filter("pct", |v: f64| -> String { format!("{:.2}%", v * 100.0) });
    env.add_filter("brief", |v: JValue| -> String {
        let j: Value = serde_json::to_value(&v).unwrap_or(Value::Null);
        brief(&j)
    });
    env.add_filter("json", |v: JValue| -> String { serde_json::to_string(&v).unwrap_or_default() });
    env.add_template("report.html", TEMPLATE).context("the report page template")?;
    let tmpl = env.get_template("report.html").context("the report page template")?;
    let dropped: u64 = report["drops"].as_object().into_iter().flatten().map(|(_, v)| u(v)).sum();
    let mut html = tmpl
        .render(context! {
            r => JValue::from(minijinja::value::Serde(report)),
            m => manifest.map(|m| JValue::from(minijinja::value::Serde(m))),
            charts => charts(report),
            dropped => dropped,
            t => timings.map(|t| JValue::from(minijinja::value::Serde(t))),
            timing_bars => timings.map(timing_bars),
        })
        .with_context(|| format!("rendering the page from `{file}`"))?;
    if !html.ends_with('\n') {
        html.push('\n');
    }
    Ok(html)
}

/// Render `OUT/report.html` again from `OUT/report.json` (and `OUT/manifest.json` when
/// present), and return its path.
pub fn rewrite(out: &Path) -> anyhow::Result<PathBuf> {
    let read = |name: &str| -> anyhow::Result<Option<Value>> {
        let path = out.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        };
        let v = serde_json::from_slice(&bytes).with_context(|| format!("`{}` is not valid JSON", path.display()))?;
        Ok(Some(v))
    };
    let report_path = out.join("report.json");
    let Some(report) = read("report.json")? else {
        bail!(
            "`{}` not found\nhint: `curate report` takes a build's output folder (the one holding report.json)",
            report_path.display()
        );
    };
    // The page is written into the folder: only into an output curate wrote, never
    // over a `report.html` of someone else's beside their own `report.json`.
    if let crate::output::Existing::Foreign(why) = crate::output::existing(out)? {
        bail!(
            "`{}` {why}\nhint: `curate report` writes report.html only into an output folder that curate wrote",
            out.display()
        );
    }
    let manifest = read("manifest.json")?;
    let timings = read("timings.json")?;
    let html = render(&report, manifest.as_ref(), timings.as_ref(), &report_path.display().to_string())?;
    let page = out.join("report.html");
    std::fs::write(&page, html).with_context(|| format!("cannot write `{}`", page.display()))?;
    Ok(page)
}

/// Open `page` with the desktop's opener: `open` on macOS, `xdg-open` elsewhere.
pub fn open(page: &Path) -> anyhow::Result<()> {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let status = std::process::Command::new(opener).arg(page).status();
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => bail!("`{opener} {}` failed ({s})", page.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("cannot open `{}`: `{opener}` was not found\nhint: open the file in a browser yourself", page.display())
        }
        Err(e) => Err(e).with_context(|| format!("cannot run `{opener}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Value {
        serde_json::json!({
            "curate_version": "0.1.0",
            "recipe": { "name": "t<x>", "file": "t.toml", "sha256": "ab", "seed": 1 },
            "totals": { "records_read": 10, "documents_kept": 7, "chars_kept": 70, "ledger_entries": 3, "errors_skipped": 0 },
            "funnel": [ { "stage": "read", "records_in": 10, "records_out": 9 } ],
            "drops": { "filter.empty": 3 },
            "sources": [ { "name": "a", "documents_kept": 7 } ],
            "warnings": [],
        })
    }

    #[test]
    fn renders_a_minimal_report_with_escaped_text() {
        let html = render(&minimal(), None, None, "report.json").unwrap();
        assert!(html.contains("t&lt;x&gt;"), "the recipe name is escaped");
        assert!(!html.contains("t<x>"));
        assert!(html.contains(r#"data-k="totals/records_read" data-v="10""#));
        assert!(html.contains(r##"href="#rule-filter.empty""##));
        assert!(html.contains(r#"id="summary""#));
    }

    #[test]
    fn missing_keys_are_named() {
        let mut r = minimal();
        r["totals"].as_object_mut().unwrap().remove("documents_kept");
        let e = render(&r, None, None, "out/report.json").unwrap_err().to_string();
        assert!(e.contains("`out/report.json`") && e.contains("totals.documents_kept"), "{e}");
        let mut r = minimal();
        r["sources"][0] = serde_json::json!({});
        let e = render(&r, None, None, "report.json").unwrap_err().to_string();
        assert!(e.contains("sources[0].name"), "{e}");
    }

    #[test]
    fn brief_flattens_json() {
        assert_eq!(brief(&serde_json::json!({"kind": "recipe", "key": "path"})), "key: path; kind: recipe");
        assert_eq!(brief(&serde_json::json!(["a", 1, null])), "a, 1, –");
    }
}
