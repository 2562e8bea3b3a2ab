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
        // The work folder may stay, holding the tasks that completed, for the next run
        // to resume from; nothing else may.
        let left: Vec<_> = std::fs::read_dir(&parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".t.work")
            .collect();
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

/// Run `curate` with its data segment (heap) limited to `mb` MiB, so that a reader
/// that holds a bomb's record in memory fails instead of taking the machine.
fn curate_in(d: &Dir, mb: u64, args: &[&str]) -> std::process::Output {
    let bin = assert_cmd::cargo::cargo_bin("curate");
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -d {}; exec \"$0\" \"$@\"", mb * 1024))
        .arg(bin)
        .args(args)
        .current_dir(d.path())
        .output()
        .expect("curate runs")
}

/// A gzip file that decompresses to `head`, `mib` MiB of `fill`, then `tail`: gzip
/// members one after another, so a bomb of hundreds of MiB takes no time to make.
fn gzip_bomb(head: &str, fill: u8, mib: usize, tail: &str) -> Vec<u8> {
    use std::io::Write;
    let member = |bytes: &[u8]| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    };
    let chunk = member(&vec![fill; 1 << 20]);
    let mut out = member(head.as_bytes());
    for _ in 0..mib {
        out.extend_from_slice(&chunk);
    }
    out.extend_from_slice(&member(tail.as_bytes()));
    out
}

#[test]
fn csv_gzip_bomb_record_is_skipped_without_being_held() {
    let d = Dir::new();
    // One quoted field of 512 MiB (about 0.5 MB compressed), between two good rows.
    let gz = gzip_bomb(
        "instruction,output\n\"Say hi.\",\"Hi there, friend.\"\n\"Repeat.\",\"",
        b'a',
        512,
        "\"\n\"Add 2 and 3.\",\"2 + 3 = 5.\"\n",
    );
    assert!(gz.len() < 2 << 20);
    d.write("in.csv.gz", gz);
    d.recipe("[[source]]\nname = \"s\"\npath = \"in.csv.gz\"\nformat = \"instruction\"\nmax_record_bytes = 1000000\n");
    let started = std::time::Instant::now();
    let err = fails(&curate_in(&d, 200, &["recipe.toml"]));
    assert!(err.contains("in.csv.gz:2"), "{err}");
    assert!(err.contains("record is 536870924 bytes, over max_record_bytes = 1000000"), "{err}");

    d.recipe("[[source]]\nname = \"s\"\npath = \"in.csv.gz\"\nformat = \"instruction\"\nmax_record_bytes = 1000000\non_error = \"skip\"\n");
    ok(&curate_in(&d, 200, &["recipe.toml"]));
    assert_eq!(ledger(&d.out()), vec![("read.too_large".into(), "in.csv.gz".into(), 2)]);
    assert_eq!(report(&d.out())["totals"]["documents_kept"], 2, "the row after the bomb is read");
    assert!(started.elapsed().as_secs() < 120, "took {:?}", started.elapsed());
}

#[test]
fn json_array_gzip_bomb_element_is_skipped_without_being_held() {
    let d = Dir::new();
    let gz = gzip_bomb(
        "[{\"text\": \"first document here\"},\n {\"text\": \"",
        b'b',
        512,
        "\"},\n {\"text\": \"third document here\"}]\n",
    );
    d.write("in.json.gz", gz);
    d.recipe("[[source]]\nname = \"s\"\npath = \"in.json.gz\"\nformat = \"text\"\nmax_record_bytes = 1000000\non_error = \"skip\"\n");
    let started = std::time::Instant::now();
    ok(&curate_in(&d, 200, &["recipe.toml"]));
    assert_eq!(ledger(&d.out()), vec![("read.too_large".into(), "in.json.gz".into(), 2)]);
    assert_eq!(report(&d.out())["totals"]["documents_kept"], 2);
    assert!(started.elapsed().as_secs() < 120, "took {:?}", started.elapsed());
}

#[test]
fn bad_json_array_element_is_a_bad_record_not_a_lost_file() {
    let d = Dir::new();
    d.write("in.json", "[{\"text\": \"first document here\"}, {\"text\": oops}, {\"text\": \"third document\"}]");
    d.recipe("[[source]]\nname = \"s\"\npath = \"in.json\"\nformat = \"text\"\n");
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("in.json:2") && err.contains("invalid JSON"), "{err}");
    d.recipe("[[source]]\nname = \"s\"\npath = \"in.json\"\nformat = \"text\"\non_error = \"skip\"\n");
    ok(&d.curate(&["recipe.toml"]));
    assert_eq!(ledger(&d.out()), vec![("read.malformed".into(), "in.json".into(), 2)]);
    assert_eq!(report(&d.out())["totals"]["documents_kept"], 2);
}

#[test]
fn byte_order_mark_is_accepted_in_jsonl_and_json() {
    let d = Dir::new();
    d.write("in.jsonl", format!("\u{feff}{GOOD}\n{}\n", GOOD.replace("2 and 3", "4 and 5")));
    d.recipe(&jsonl_source(""));
    ok(&d.curate(&["recipe.toml"]));
    assert_eq!(report(&d.out())["totals"]["documents_kept"], 2);

    d.write("in.json", format!("\u{feff}[{GOOD}]"));
    d.recipe("[[source]]\nname = \"s\"\npath = \"in.json\"\nformat = \"instruction\"\n");
    ok(&d.curate(&["recipe.toml"]));
    assert_eq!(report(&d.out())["totals"]["documents_kept"], 1);
}

#[test]
fn parquet_binary_column_is_read_as_text() {
    use arrow_array::{ArrayRef, BinaryArray, RecordBatch};
    use std::sync::Arc;
    let d = Dir::new();
    let col: ArrayRef = Arc::new(BinaryArray::from(vec![
        b"ok text doc".as_slice(),
        b"caf\xe9 is not utf-8".as_slice(),
        b"another text doc".as_slice(),
    ]));
    let batch = RecordBatch::try_from_iter([("text", col)]).unwrap();
    let f = std::fs::File::create(d.join("in.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    d.recipe("[[source]]\nname = \"p\"\npath = \"in.parquet\"\nformat = \"text\"\n");
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("in.parquet:2") && err.contains("binary column `text` is not valid UTF-8"), "{err}");

    d.recipe("[[source]]\nname = \"p\"\npath = \"in.parquet\"\nformat = \"text\"\non_error = \"skip\"\n");
    ok(&d.curate(&["recipe.toml"]));
    assert_eq!(ledger(&d.out()), vec![("read.invalid_utf8".into(), "in.parquet".into(), 2)]);
    let texts = strings(&d.out().join("documents.parquet"), "text");
    assert!(texts.contains(&Some("ok text doc".to_string())), "{texts:?}");
    assert!(texts.contains(&Some("another text doc".to_string())), "{texts:?}");
}

#[test]
fn device_and_fifo_paths_are_refused_by_kind() {
    let d = Dir::new();
    d.recipe("[[source]]\nname = \"s\"\npath = \"/dev/zero\"\nformat = \"text\"\nreader = \"txt\"\n");
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("`/dev/zero` is a character device, not a regular file"), "{err}");

    let st = std::process::Command::new("mkfifo").arg(d.join("pipe.jsonl")).status().expect("mkfifo");
    assert!(st.success());
    d.recipe(&jsonl_source("").replace("in.jsonl", "pipe.jsonl"));
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("pipe.jsonl` is a FIFO (named pipe), not a regular file"), "{err}");

    // Inside a folder too: a FIFO there would block the run for ever.
    d.write("data/a.jsonl", format!("{GOOD}\n"));
    std::fs::rename(d.join("pipe.jsonl"), d.join("data/b.jsonl")).unwrap();
    d.recipe(&jsonl_source("").replace("in.jsonl", "data"));
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("b.jsonl` is a FIFO (named pipe), not a regular file"), "{err}");
}

#[test]
fn symlink_loop_in_a_folder_reads_each_file_once_and_warns() {
    let d = Dir::new();
    d.write("data/a.jsonl", format!("{GOOD}\n"));
    d.write("data/sub/b.jsonl", format!("{}\n", GOOD.replace("2 and 3", "4 and 5")));
    std::os::unix::fs::symlink("..", d.join("data/sub/up")).unwrap();
    std::os::unix::fs::symlink("a.jsonl", d.join("data/same.jsonl")).unwrap();
    d.recipe(&jsonl_source("").replace("in.jsonl", "data"));
    let o = d.curate(&["recipe.toml"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("warning: source `s`: folder `") && err.contains("sub/up` leads back to"), "{err}");
    let r = report(&d.out());
    let warned = r["warnings"].as_array().unwrap();
    assert!(warned.iter().any(|w| w.as_str().unwrap().contains("sub/up` leads back to")), "the report says so too: {warned:?}");
    assert!(std::fs::read_to_string(d.out().join("report.md")).unwrap().contains("## Warnings"));
    assert_eq!(r["totals"]["records_read"], 2, "each real file once");
    assert_eq!(r["drops"].as_object().map(|m| m.len()), Some(0), "nothing read twice: {}", r["drops"]);
}

#[test]
fn where_with_10000_and_terms_runs() {
    let d = Dir::new();
    d.write("in.jsonl", format!("{GOOD}\n"));
    let terms: Vec<String> = (0..10_000).map(|i| format!("instruction <> 'x{i}'")).collect();
    d.recipe(&jsonl_source(&format!("where = \"{}\"", terms.join(" AND "))));
    ok(&d.curate(&["recipe.toml"]));
    assert_eq!(report(&d.out())["totals"]["documents_kept"], 1);

    // Past the bound on its length: a located error, and the recipe line shown cut.
    let terms: Vec<String> = (0..30_000).map(|i| format!("instruction <> 'x{i}'")).collect();
    d.recipe(&jsonl_source(&format!("where = \"{}\"", terms.join(" AND "))));
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("recipe.toml:9:") && err.contains("more than 100000; for a long list of values use `IN (…)`"), "{err}");
    assert!(err.len() < 4000, "the 800 kB line is not printed whole: {} bytes", err.len());

    let sum = vec!["length(output)"; 200].join(" + ");
    d.recipe(&jsonl_source(&format!("where = \"{sum} > 0\"")));
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("recipe.toml:9:") && err.contains("source `s`: bad `where`"), "{err}");
    assert!(err.contains("nests more than 64 levels"), "{err}");
}

#[test]
fn weight_past_the_maximum_is_a_located_error() {
    let d = Dir::new();
    d.write("in.jsonl", format!("{GOOD}\n"));
    d.recipe(&jsonl_source("weight = 1e12"));
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("recipe.toml:9:1") && err.contains("`weight` must be at most 100"), "{err}");
}

#[test]
fn runaway_chat_template_is_ledgered_per_document() {
    let d = Dir::new();
    let tok = repo().join("recipes/tokenizer/tokenizer.json");
    std::fs::copy(&tok, d.join("tokenizer.json")).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("recipes/tokenizer/tokenizer_config.json")).unwrap()).unwrap();
    cfg["chat_template"] = serde_json::Value::String(
        "{% for m in messages %}{% if 'LOOP' in m['content'] %}{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}{% endif %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}".into(),
    );
    d.write("tokenizer_config.json", serde_json::to_vec(&cfg).unwrap());
    d.write("in.jsonl", format!("{GOOD}\n{}\n", GOOD.replace("Add 2 and 3.", "LOOP now.")));
    // One document of two fails on purpose: accept that share.
    d.recipe(&format!("[target]\ntokenizer = \"tokenizer.json\"\ntemplate = \"tokenizer\"\n\n[pack]\nmax_template_errors = 0.5\n\n{}", jsonl_source("")));
    let started = std::time::Instant::now();
    ok(&d.curate(&["recipe.toml"]));
    assert!(started.elapsed().as_secs() < 120, "took {:?}", started.elapsed());
    assert_eq!(ledger(&d.out()), vec![("tokenize.template".into(), "in.jsonl".into(), 2)]);
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
