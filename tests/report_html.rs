//! `report.html`: written beside report.md by every build, self-contained, small, with
//! every section, and with the numbers of report.json; `curate report` writes the same
//! page again from the output folder.

mod common;
use common::*;

use regex::Regex;
use serde_json::Value;

fn quickstart(d: &Dir) -> std::path::PathBuf {
    let recipe = repo().join("recipes/quickstart.toml");
    let out = d.join("qs");
    ok(&d.curate(&[recipe.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]));
    out
}

/// The value at `a/b/0/c` in `v` (keys joined by `/`; rule ids hold dots, not slashes).
fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('/').try_fold(v, |v, k| match v {
        Value::Array(a) => a.get(k.parse::<usize>().ok()?),
        Value::Object(o) => o.get(k),
        _ => None,
    })
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

#[test]
fn the_quickstart_page_is_self_contained_complete_and_agrees_with_report_json() {
    let d = Dir::new();
    let out = quickstart(&d);
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html is written");
    let report: Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let timings: Value = serde_json::from_slice(&std::fs::read(out.join("timings.json")).unwrap()).unwrap();

    assert!(html.len() < 1_000_000, "report.html is {} bytes", html.len());
    assert!(html.starts_with("<!DOCTYPE html>"));

    // Self-contained: nothing is loaded from elsewhere. Links a reader may follow
    // (`<a href>`) may point anywhere.
    let load = Regex::new(r#"(?i)<(script|img|link|iframe|source|video|audio|embed|object)\b[^>]*>"#).unwrap();
    if let Some(m) = load.find(&html) {
        panic!("report.html loads a resource: {}", m.as_str());
    }
    assert!(!Regex::new(r"(?i)\bsrc\s*=").unwrap().is_match(&html), "no src= attribute");
    assert!(!html.contains("@import") && !html.contains("url("), "no style loads anything");

    for id in ["summary", "funnel", "drops", "ledger-samples", "token-mix", "lengths", "near-dup", "contamination", "compliance", "obligations", "timings", "files"] {
        assert!(html.contains(&format!(r#"id="{id}""#)), "section `{id}` is missing");
    }

    // Every number tagged with its report.json path equals report.json's.
    let tagged = Regex::new(r#"data-k="([^"]+)" data-v="([^"]*)""#).unwrap();
    let mut keys = Vec::new();
    for c in tagged.captures_iter(&html) {
        let (k, v) = (unescape(&c[1]), unescape(&c[2]));
        let want = match k.strip_prefix("timings/") {
            Some(t) => at(&timings, t).unwrap_or_else(|| panic!("`{t}` is not in timings.json")),
            None => at(&report, &k).unwrap_or_else(|| panic!("`{k}` is not in report.json")),
        };
        match want {
            Value::String(s) => assert_eq!(&v, s, "{k}"),
            Value::Number(n) if n.is_u64() => assert_eq!(v.parse::<u64>().ok(), n.as_u64(), "{k}"),
            Value::Number(n) => assert!((v.parse::<f64>().unwrap() - n.as_f64().unwrap()).abs() < 1e-9, "{k}: {v} vs {n}"),
            other => panic!("`{k}` is {other}"),
        }
        keys.push(k);
    }
    for k in ["totals/records_read", "totals/documents_kept", "totals/ledger_entries", "shards/train/efficiency", "compliance/verdict", "timings/wall_seconds"] {
        assert!(keys.iter().any(|x| x == k), "the page does not show `{k}`");
    }
    // Every rule has its count and a linked ledger sample with its first rows.
    let drops = report["drops"].as_object().unwrap();
    assert!(!drops.is_empty());
    for (rule, n) in drops {
        assert!(keys.contains(&format!("drops/{rule}")), "rule `{rule}` has no count in the page");
        assert!(html.contains(&format!(r##"href="#rule-{rule}""##)), "rule `{rule}` does not link to its sample");
        assert!(html.contains(&format!(r#"id="rule-{rule}""#)), "rule `{rule}` has no sample");
        let samples = report["ledger_samples"][rule].as_array().unwrap_or_else(|| panic!("no ledger sample for `{rule}`"));
        assert_eq!(samples.len() as u64, n.as_u64().unwrap().min(5), "`{rule}`: the first 5 rows, or all");
    }
    let sum: u64 = drops.values().map(|v| v.as_u64().unwrap()).sum();
    assert!(html.contains(&format!(r#"<span data-sum="drops">{sum}</span>"#)));
    // Every training source is in the summary, and eval sets are not among them but
    // named apart; contamination per benchmark and source is shown.
    for (i, s) in report["sources"].as_array().unwrap().iter().enumerate() {
        let shown = keys.contains(&format!("sources/{i}/documents_kept"));
        assert_eq!(shown, s["role"] == "train", "{}: role {}", s["name"], s["role"]);
    }
    assert!(html.contains("Eval sets, read to decontaminate") && html.contains("<code>arith-test</code> (24 items"), "eval sets apart");
    assert!(!html.contains(r#"<details id="funnel-arith-test">"#), "no funnel for an eval set");
    let funnel_read = at(&report, "funnel/0/records_in").unwrap().as_u64().unwrap();
    assert_eq!(funnel_read, report["totals"]["records_read"].as_u64().unwrap(), "the funnel starts with the training records read");
    assert_eq!(report["totals"]["eval_records_read"], 24);
    let mix = report["shards"]["sources"].as_array().unwrap();
    assert!(mix.iter().all(|s| s["source"] != "arith-test"), "the token mix lists training sources only");
    assert!(keys.iter().any(|k| k.starts_with("decontamination/contamination/")));
    // Citations are links.
    assert!(html.contains(r#"<a href="https://llm-efficiency-challenge.github.io/challenge">"#));
}

#[test]
fn report_json_has_bounded_length_histograms_and_ledger_samples_in_ledger_order() {
    let d = Dir::new();
    let out = quickstart(&d);
    let report: Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    for s in report["sources"].as_array().unwrap() {
        let Some(l) = s.get("lengths") else { continue };
        let chars: u64 = l["chars"].as_array().unwrap().iter().map(|b| b["documents"].as_u64().unwrap()).sum();
        assert_eq!(chars, s["documents_kept"].as_u64().unwrap(), "{}: one character length per kept document", s["name"]);
        for b in l["chars"].as_array().unwrap().iter().chain(l["tokens"].as_array().unwrap()) {
            let (from, to) = (b["from"].as_u64().unwrap(), b["to"].as_u64().unwrap());
            assert!(to == 1 && from == 0 || to == 2 * from, "power-of-two bucket {b}");
        }
    }
    // Samples are the ledger's first rows of each rule, in ledger order.
    let batches = read_parquet(&out.join("ledger.parquet"));
    let mut first: std::collections::BTreeMap<String, Vec<(String, u64)>> = Default::default();
    for b in &batches {
        let rule = b.column_by_name("rule").unwrap().as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
        let file = b.column_by_name("file").unwrap().as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
        let row = b.column_by_name("row").unwrap().as_any().downcast_ref::<arrow_array::UInt64Array>().unwrap();
        for i in 0..b.num_rows() {
            let v = first.entry(rule.value(i).to_string()).or_default();
            if v.len() < 5 {
                v.push((file.value(i).to_string(), row.value(i)));
            }
        }
    }
    let samples: std::collections::BTreeMap<String, Vec<(String, u64)>> = report["ledger_samples"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (k.clone(), v.as_array().unwrap().iter().map(|e| (e["file"].as_str().unwrap().to_string(), e["row"].as_u64().unwrap())).collect())
        })
        .collect();
    assert_eq!(samples, first);
}

#[test]
fn curate_report_writes_the_same_page_again_and_names_bad_input() {
    let d = Dir::new();
    let out = quickstart(&d);
    let built = std::fs::read(out.join("report.html")).unwrap();
    std::fs::remove_file(out.join("report.html")).unwrap();
    let o = d.curate(&["report", out.to_str().unwrap()]);
    ok(&o);
    assert_eq!(std::fs::read(out.join("report.html")).unwrap(), built, "the page depends only on report.json, manifest.json and timings.json");
    // The manifest does not hash the page, so rewriting it leaves the manifest true.
    let manifest: Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["files"].get("report.html").is_none());
    assert!(manifest["files"].get("report.json").is_some());

    let missing = d.join("empty");
    std::fs::create_dir_all(&missing).unwrap();
    let err = fails(&d.curate(&["report", missing.to_str().unwrap()]));
    assert!(err.contains("report.json") && err.contains("not found"), "{err}");

    // A folder curate did not write, holding a report.json and a page of its own: the
    // page is left as it is.
    let theirs = d.join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::copy(out.join("report.json"), theirs.join("report.json")).unwrap();
    std::fs::write(theirs.join("report.html"), "my own page").unwrap();
    let err = fails(&d.curate(&["report", theirs.to_str().unwrap()]));
    assert!(err.contains("curate did not write") && err.contains("only into an output folder"), "{err}");
    assert_eq!(std::fs::read_to_string(theirs.join("report.html")).unwrap(), "my own page");

    let mut report: Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    report["totals"].as_object_mut().unwrap().remove("records_read");
    std::fs::write(out.join("report.json"), serde_json::to_vec(&report).unwrap()).unwrap();
    let err = fails(&d.curate(&["report", out.to_str().unwrap()]));
    assert!(err.contains("report.json") && err.contains("totals.records_read"), "{err}");

    std::fs::write(out.join("report.json"), b"{not json").unwrap();
    let err = fails(&d.curate(&["report", out.to_str().unwrap()]));
    assert!(err.contains("report.json") && err.contains("not valid JSON"), "{err}");
}

/// The dataset card says what the build holds, what it was decontaminated against and
/// how to load it, with the numbers of report.json; NOTICE links each license's text
/// and says where the license was stated.
#[test]
fn the_dataset_card_and_notice_say_what_a_publisher_needs() {
    let d = Dir::new();
    let out = quickstart(&d);
    let r = report(&out);
    let card = std::fs::read_to_string(out.join("README.md")).unwrap();
    let contents = card.find("## Contents").expect("a Contents section");
    assert!(contents < card.find("## Sources").unwrap(), "the build's account comes before the source list");
    assert!(card.contains("Sample arithmetic, unit-conversion, chat and notes data"), "the recipe's description");
    let kept = r["totals"]["documents_kept"].as_u64().unwrap();
    assert!(card.contains(&format!("| documents (`documents.parquet`) | {kept} |")), "{card}");
    let seqs = r["shards"]["train"]["sequences"].as_u64().unwrap();
    assert!(card.contains(&format!("| training sequences | {seqs} |")), "{card}");
    let tokens = r["shards"]["train"]["tokens"].as_u64().unwrap();
    assert!(card.contains(&format!("| training tokens | {} |", curate::report::thousands(tokens))), "{card}");
    assert!(card.contains("| arith-test | arith-test | 24 | 4 |"), "the eval set with its overlaps: {card}");
    assert!(card.contains("load_dataset(\"parquet\", data_files=\"documents.parquet\""), "{card}");
    let notice = std::fs::read_to_string(out.join("NOTICE")).unwrap();
    assert!(notice.contains("License text: https://spdx.org/licenses/Apache-2.0.html"), "{notice}");
    assert!(!notice.contains("recipe assertion"), "{notice}");
}

#[test]
fn notice_says_what_was_changed() {
    let d = Dir::new();
    let out = quickstart(&d);
    let notice = std::fs::read_to_string(out.join("NOTICE")).unwrap();
    let changes = &notice[notice.find("Changes made").expect("a Changes made section")..];
    for s in ["normalised", "PII redaction", "exact duplicates were removed", "near-duplicates were removed", "tokenized", "ledger.parquet"] {
        assert!(changes.contains(s), "`{s}` missing: {changes}");
    }
}
