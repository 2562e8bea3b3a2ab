//! Bad input: every case gets a clear error naming the file and row (or the recipe key),
//! exit code 2, no panic and no output folder; or, with `on_error = "skip"`, a ledger
//! entry per bad row and a count in the report.

mod common;
use common::*;

fn jsonl_source(extra: &str) -> String {
    format!("[[source]]\nname = \"s\"\npath = \"in.jsonl\"\nformat = \"instruction\"\n{extra}\n")
}

fn no_output_left(d: &Dir) {
    assert!(!d.out().exists(), "a failed run must not leave an output folder");
    let parent = d.join("out");
    if parent.exists() {
        let left: Vec<_> = std::fs::read_dir(&parent).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "staging folders left behind: {left:?}");
    }
}

const GOOD: &str = r#"{"instruction": "Add 2 and 3.", "input": "", "output": "2 + 3 = 5."}"#;

#[test]
fn malformed_jsonl_line_names_file_and_line() {
    let d = Dir::new();
    d.write("in.jsonl", format!("{GOOD}\n{{\"instruction\": \"x\", \"output\n{GOOD}\n"));
    d.recipe(&jsonl_source(""));
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("in.jsonl:2"), "{err}");
    assert!(err.contains("invalid JSON"), "{err}");
    assert!(err.contains("on_error = \"skip\""), "the error says how to go on: {err}");
    no_output_left(&d);
}

#[test]
fn malformed_line_is_ledgered_under_skip() {
    let d = Dir::new();
    d.write("in.jsonl", format!("{GOOD}\nnot json at all\n{}\n", GOOD.replace("2 and 3", "4 and 5")));
    d.recipe(&jsonl_source("on_error = \"skip\""));
    ok(&d.curate(&["recipe.toml"]));
    assert_eq!(ledger(&d.out()), vec![("read.malformed".into(), "in.jsonl".into(), 2)]);
    let r = report(&d.out());
    assert_eq!(r["totals"]["errors_skipped"], 1);
    assert_eq!(r["totals"]["documents_kept"], 2);
    assert_eq!(r["sources"][0]["drops"]["read.malformed"], 1);
}

#[test]
fn missing_mapped_field_names_the_field_and_row() {
    let d = Dir::new();
    d.write("in.jsonl", format!("{GOOD}\n{{\"instruction\": \"No answer here.\"}}\n"));
    d.recipe(&jsonl_source(""));
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("in.jsonl:2"), "{err}");
    assert!(err.contains("mapped field `output` is missing"), "{err}");

    d.recipe(&jsonl_source("on_error = \"skip\""));
    ok(&d.curate(&["recipe.toml"]));
    assert_eq!(ledger(&d.out()), vec![("map.missing_field".into(), "in.jsonl".into(), 2)]);
}

#[test]
fn invalid_utf8_names_the_row() {
    let d = Dir::new();
    let mut bytes = format!("{GOOD}\n").into_bytes();
    bytes.extend_from_slice(b"{\"instruction\": \"caf\xe9\", \"output\": \"x y z w\"}\n");
    d.write("in.jsonl", bytes);
    d.recipe(&jsonl_source(""));
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("in.jsonl:2"), "{err}");
    assert!(err.contains("not valid UTF-8"), "{err}");

    d.recipe(&jsonl_source("on_error = \"skip\""));
    ok(&d.curate(&["recipe.toml"]));
    assert_eq!(ledger(&d.out()), vec![("read.invalid_utf8".into(), "in.jsonl".into(), 2)]);
}

#[test]
fn a_100_mb_record_is_refused_without_reading_it_whole() {
    let d = Dir::new();
    let big = "a ".repeat(50 * 1024 * 1024);
    let line = format!("{{\"instruction\": \"Repeat.\", \"output\": \"{big}\"}}");
    assert!(line.len() > 100 * 1024 * 1024);
    d.write("in.jsonl", format!("{GOOD}\n{line}\n{}\n", GOOD.replace("2 and 3", "6 and 7")));
    drop(line);
    d.recipe(&jsonl_source(""));
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("in.jsonl:2"), "{err}");
    assert!(err.contains("over max_record_bytes"), "{err}");

    d.recipe(&jsonl_source("on_error = \"skip\""));
    ok(&d.curate(&["recipe.toml"]));
    assert_eq!(ledger(&d.out()), vec![("read.too_large".into(), "in.jsonl".into(), 2)]);
    assert_eq!(report(&d.out())["totals"]["documents_kept"], 2, "the rows after the big one are still read");

    // Raising the limit reads it, and a length filter then drops it with its size.
    d.recipe(&format!(
        "{}\n[filters]\nmax_chars = 1000000\n",
        jsonl_source("max_record_bytes = 200000000")
    ));
    ok(&d.curate(&["recipe.toml"]));
    assert_eq!(ledger(&d.out()), vec![("filter.max_chars".into(), "in.jsonl".into(), 2)]);
}

#[test]
fn truncated_parquet_is_an_error_naming_the_file() {
    let d = Dir::new();
    // A real Parquet file cut in half: its footer is gone.
    let full = d.join("full.parquet");
    write_parquet(&full, &["a", "b", "c"]);
    let bytes = std::fs::read(&full).unwrap();
    d.write("cut.parquet", &bytes[..bytes.len() / 2]);
    d.recipe("[[source]]\nname = \"p\"\npath = \"cut.parquet\"\nformat = \"text\"\non_error = \"skip\"\n");
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("cut.parquet"), "{err}");
    assert!(err.contains("not a readable Parquet file"), "{err}");
    no_output_left(&d);
}

#[test]
fn truncated_gzip_is_an_error_not_a_shorter_output() {
    let d = Dir::new();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    use std::io::Write;
    for i in 0..2000 {
        writeln!(enc, "{{\"instruction\": \"Add {i} and 1.\", \"output\": \"{}\"}}", i + 1).unwrap();
    }
    let gz = enc.finish().unwrap();
    d.write("in.jsonl.gz", &gz[..gz.len() - 40]);
    d.recipe("[[source]]\nname = \"s\"\npath = \"in.jsonl.gz\"\nformat = \"instruction\"\non_error = \"skip\"\n");
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("in.jsonl.gz"), "{err}");
    no_output_left(&d);
}

#[test]
fn truncated_json_array_is_an_error() {
    let d = Dir::new();
    d.write("in.json", r#"[{"text": "first document here"}, {"text": "second"#);
    d.recipe("[[source]]\nname = \"s\"\npath = \"in.json\"\nformat = \"text\"\non_error = \"skip\"\n");
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("in.json"), "{err}");
    assert!(err.contains("invalid JSON array"), "{err}");
}

#[test]
fn ragged_csv_row_names_the_row() {
    let d = Dir::new();
    d.write("in.csv", "instruction,output\n\"Say hi.\",\"Hi there, friend.\"\nonly one field\n");
    d.recipe("[[source]]\nname = \"s\"\npath = \"in.csv\"\nformat = \"instruction\"\n");
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("in.csv:2"), "{err}");
    assert!(err.contains("1 fields, the header has 2"), "{err}");
}

#[test]
fn empty_source_is_an_error() {
    let d = Dir::new();
    d.write("in.jsonl", "\n\n");
    d.recipe(&jsonl_source(""));
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("source `s` has no records"), "{err}");
    assert!(err.contains("in.jsonl"), "{err}");
    no_output_left(&d);
}

#[test]
fn missing_path_and_empty_glob_are_named() {
    let d = Dir::new();
    d.recipe(&jsonl_source("").replace("in.jsonl", "nope/in.jsonl"));
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("nope/in.jsonl") && err.contains("does not exist"), "{err}");

    d.recipe(&jsonl_source("").replace("in.jsonl", "shards/*.jsonl"));
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("shards/*.jsonl") && err.contains("matches no files"), "{err}");
}

#[test]
fn recipe_typo_names_line_column_and_nearest_key() {
    let d = Dir::new();
    d.write("in.jsonl", format!("{GOOD}\n"));
    d.recipe(&jsonl_source("on_eror = \"skip\"\n[filters]\nmax_chars = 10\nmin_chras = 2"));
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("recipe.toml:9:1: unknown key `on_eror` in `source[0]`"), "{err}");
    assert!(err.contains("did you mean `on_error`?"), "{err}");
    assert!(err.contains("recipe.toml:12:1: unknown key `min_chras` in `filters`"), "{err}");
    assert!(err.contains("did you mean `min_chars`?"), "{err}");
}

#[test]
fn missing_recipe_file_is_a_clear_error() {
    let d = Dir::new();
    let err = fails(&d.curate(&["nope.toml"]));
    assert!(err.contains("cannot read recipe `nope.toml`"), "{err}");
}

#[test]
fn where_over_a_column_the_data_lacks_is_an_error() {
    let d = Dir::new();
    d.write("in.jsonl", format!("{GOOD}\n"));
    d.recipe(&jsonl_source("where = \"soruce = 'x'\""));
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("soruce"), "{err}");
    assert!(err.contains("in.jsonl"), "{err}");
}

pub fn write_parquet(path: &std::path::Path, texts: &[&str]) {
    use arrow_array::{ArrayRef, RecordBatch, StringArray};
    use std::sync::Arc;
    let col: ArrayRef = Arc::new(StringArray::from(texts.to_vec()));
    let batch = RecordBatch::try_from_iter([("text", col)]).unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}
