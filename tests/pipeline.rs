//! End-to-end runs of the binary: the quickstart against what its generator planted,
//! every reader, selection, precedence, determinism across thread counts.

mod common;
use common::*;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;

fn planted_rule(kind: &str) -> &'static str {
    match kind {
        "ai_phrase" => "filter.drop_regex",
        "empty" => "filter.empty",
        "exact_duplicate_of" => "dedup.exact",
        "malformed" => "read.malformed",
        "missing_field" => "map.missing_field",
        "short" => "filter.min_chars",
        other => panic!("unknown planted kind {other}"),
    }
}

/// The quickstart drops exactly the records its generator planted, each for the
/// planted reason, and each duplicate points at the planted original.
#[test]
fn quickstart_drops_exactly_what_was_planted() {
    let d = Dir::new();
    let recipe = repo().join("recipes/quickstart.toml");
    let out = d.join("qs");
    ok(&d.curate(&[recipe.to_str().unwrap(), "--out", out.to_str().unwrap()]));

    let planted: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("recipes/data/PLANTED.json")).unwrap()).unwrap();
    let mut want = BTreeSet::new();
    let mut want_dup_of = HashMap::new();
    // Items of the eval set copied into arith.jsonl are found in training.
    for p in planted["eval"]["planted"].as_array().unwrap() {
        let of = &p["of"];
        want.insert(("decontam.ngram".to_string(), format!("data/{}", of["file"].as_str().unwrap()), of["row"].as_u64().unwrap()));
    }
    for (file, info) in planted["files"].as_object().unwrap() {
        for p in info["planted"].as_array().unwrap() {
            let (f, row) = match p.get("file") {
                Some(f) => (format!("data/{}", f.as_str().unwrap()), 1),
                None => (format!("data/{file}"), p["row"].as_u64().unwrap()),
            };
            want.insert((planted_rule(p["kind"].as_str().unwrap()).to_string(), f.clone(), row));
            if let Some(of) = p.get("of") {
                let of_file = match of.get("row") {
                    Some(_) => format!("data/{}", of["file"].as_str().unwrap()),
                    None => format!("data/{}", of["file"].as_str().unwrap()),
                };
                let of_row = of.get("row").and_then(|r| r.as_u64()).unwrap_or(1);
                want_dup_of.insert((f, row), (of_file, of_row));
            }
        }
    }
    // Mixing (the notes source has weight 0.5) ledgers the notes it leaves out; the
    // rest of the ledger is exactly what was planted.
    let all = ledger(&out);
    let (mixed, got): (Vec<_>, Vec<_>) = all.into_iter().partition(|(rule, _, _)| rule.starts_with("mix."));
    let got: BTreeSet<_> = got.into_iter().collect();
    assert_eq!(got, want, "ledger differs from PLANTED.json");
    assert!(mixed.iter().all(|(r, f, _)| r == "mix.weight" && f.starts_with("data/notes/")), "{mixed:?}");

    // duplicate_of names the planted original's document id.
    let docs = out.join("documents.parquet");
    let ids: HashMap<(String, u64), String> = strings(&docs, "file")
        .into_iter()
        .zip(u64s(&docs, "row"))
        .zip(strings(&docs, "id"))
        .map(|((f, r), id)| ((f.unwrap(), r), id.unwrap()))
        .collect();
    let l = out.join("ledger.parquet");
    let rows: Vec<_> = strings(&l, "file")
        .into_iter()
        .zip(u64s(&l, "row"))
        .zip(strings(&l, "duplicate_of"))
        .collect();
    let mut checked = 0;
    for ((f, r), dup) in rows {
        let Some(dup) = dup else { continue };
        let of = &want_dup_of[&(f.clone().unwrap(), r)];
        assert_eq!(Some(&dup), ids.get(of), "{f:?}:{r} should duplicate {of:?}");
        checked += 1;
    }
    assert_eq!(checked, 22);

    let report = report(&out);
    assert_eq!(report["totals"]["documents_kept"], 710);
    assert_eq!(report["decontamination"]["contamination"]["arith-test"]["arith"], 4);
    assert_eq!(report["near_dedup"]["rejected_pairs"], report["near_dedup"]["candidate_pairs"], "no sample pair is a near-duplicate");
    assert_eq!(report["totals"]["errors_skipped"], 3);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("**710 documents kept**"), "{md}");
    assert!(md.contains("## Decontamination"), "{md}");
}

#[test]
fn run_subcommand_and_bare_recipe_are_the_same() {
    let d = Dir::new();
    d.write("in.jsonl", "{\"text\": \"hello world, a document\"}\n");
    d.recipe("[[source]]\nname = \"s\"\npath = \"in.jsonl\"\nformat = \"text\"\n");
    ok(&d.curate(&["recipe.toml", "--out", "a"]));
    ok(&d.curate(&["run", "recipe.toml", "--out", "b"]));
    for f in ["documents.parquet", "ledger.parquet", "report.json", "report.md"] {
        assert_eq!(std::fs::read(d.join("a").join(f)).unwrap(), std::fs::read(d.join("b").join(f)).unwrap(), "{f}");
    }
    let o = d.curate(&["-q", "recipe.toml"]);
    ok(&o);
    assert!(stderr(&o).is_empty(), "--quiet prints nothing: {}", stderr(&o));
}

/// Enough records for many batches, with duplicates across batches and sources, bad
/// rows, filtered rows and instances, so that parallel scheduling would show.
fn busy_inputs(d: &Dir) {
    let mut a = String::new();
    for i in 0..7000u32 {
        match i % 97 {
            0 => a.push_str("{broken\n"),
            1 => a.push_str(&format!("{{\"instruction\": \"Row {}\", \"output\": \"\"}}\n", i)),
            _ => a.push_str(&format!(
                "{{\"instruction\": \"What is {} plus {}?\", \"input\": \"\", \"output\": \"It is {}.\"}}\n",
                i % 1500,
                7,
                i % 1500 + 7
            )),
        }
    }
    d.write("a.jsonl", a);
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    for i in 0..3000u32 {
        writeln!(
            enc,
            "{{\"instruction\": \"What is {} plus 7?\", \"instances\": [{{\"input\": \"\", \"output\": \"It is {}.\"}}, {{\"input\": \"show work\", \"output\": \"{} + 7 = {}\"}}]}}",
            i, i + 7, i, i + 7
        )
        .unwrap();
    }
    d.write("b.jsonl.zst", enc.finish().unwrap());
    d.recipe(
        r#"[[source]]
name = "a"
path = "a.jsonl"
format = "instruction"
on_error = "skip"

[[source]]
name = "b"
path = "b.jsonl.zst"
format = "instruction"
fields = { instances = "instances" }

[filters]
min_chars = 12
"#,
    );
}

#[test]
fn outputs_are_byte_identical_for_any_thread_count() {
    let d = Dir::new();
    busy_inputs(&d);
    ok(&d.curate(&["recipe.toml", "--threads", "1", "--out", "t1"]));
    ok(&d.curate(&["recipe.toml", "--threads", "2", "--out", "t2"]));
    ok(&d.curate(&["recipe.toml", "--threads", "5", "--out", "t5"]));
    let r = report(&d.join("t1"));
    assert!(r["totals"]["ledger_entries"].as_u64().unwrap() > 1000, "the input exercises the ledger: {r}");
    for f in ["documents.parquet", "ledger.parquet", "report.json", "report.md"] {
        let one = std::fs::read(d.join("t1").join(f)).unwrap();
        assert_eq!(one, std::fs::read(d.join("t2").join(f)).unwrap(), "{f} differs between 1 and 2 threads");
        assert_eq!(one, std::fs::read(d.join("t5").join(f)).unwrap(), "{f} differs between 1 and 5 threads");
    }
}

#[test]
fn every_reader_and_compression() {
    let d = Dir::new();
    d.write("j/a.jsonl", "{\"body\": \"jsonl one document\"}\n");
    d.write("j/b.json", "[{\"body\": \"json array document\"}, {\"body\": \"json array second\"}]");
    d.write("j/c.json", "{\"body\": \"json lines under a .json name\"}\n");
    d.write("j/d.csv", "body,other\n\"csv, with a comma\",1\n");
    d.write("j/e.tsv", "body\tother\ntsv document here\t2\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"{\"body\": \"gzipped jsonl document\"}\n").unwrap();
    d.write("j/f.jsonl.gz", gz.finish().unwrap());
    d.write("j/g.jsonl.zst", zstd::encode_all(&b"{\"body\": \"zstd jsonl document\"}\n"[..], 3).unwrap());
    bad_input_parquet(&d.join("j/h.parquet"));
    d.recipe("[[source]]\nname = \"all\"\npath = \"j\"\nformat = \"text\"\nfields = { text = \"body\" }\n");
    ok(&d.curate(&["recipe.toml"]));
    let texts: Vec<_> = strings(&d.out().join("documents.parquet"), "text").into_iter().map(|t| t.unwrap()).collect();
    assert_eq!(
        texts,
        vec![
            "jsonl one document",
            "json array document",
            "json array second",
            "json lines under a .json name",
            "csv, with a comma",
            "tsv document here",
            "gzipped jsonl document",
            "zstd jsonl document",
            "parquet document one",
            "parquet document two",
        ],
        "files are read in sorted order, records in file order"
    );
    let files: Vec<_> = report(&d.out())["sources"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["file"].as_str().unwrap().to_string(), f["records"].as_u64().unwrap()))
        .collect();
    assert_eq!(files[1], ("j/b.json".to_string(), 2));
    assert_eq!(files.len(), 8);
}

fn bad_input_parquet(path: &std::path::Path) {
    use arrow_array::{ArrayRef, RecordBatch, StringArray};
    use std::sync::Arc;
    let body: ArrayRef = Arc::new(StringArray::from(vec!["parquet document one", "parquet document two"]));
    let lang: ArrayRef = Arc::new(StringArray::from(vec!["en", "de"]));
    let batch = RecordBatch::try_from_iter([("body", body), ("lang", lang)]).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn where_selects_parquet_rows_and_ledgers_the_rest() {
    let d = Dir::new();
    bad_input_parquet(&d.join("p.parquet"));
    d.recipe("[[source]]\nname = \"p\"\npath = \"p.parquet\"\nformat = \"text\"\nfields = { text = \"body\" }\nwhere = \"lang = 'de'\"\n");
    ok(&d.curate(&["recipe.toml"]));
    let texts = strings(&d.out().join("documents.parquet"), "text");
    assert_eq!(texts, vec![Some("parquet document two".to_string())]);
    assert_eq!(ledger(&d.out()), vec![("select.where".to_string(), "p.parquet".to_string(), 1)]);
}

#[test]
fn limit_stops_reading_and_sample_is_seeded() {
    let d = Dir::new();
    let mut s = String::new();
    for i in 0..5000 {
        s.push_str(&format!("{{\"text\": \"document number {i}\"}}\n"));
    }
    d.write("in.jsonl", s);
    d.recipe("[[source]]\nname = \"s\"\npath = \"in.jsonl\"\nformat = \"text\"\nlimit = 5\n");
    ok(&d.curate(&["recipe.toml"]));
    let r = report(&d.out());
    assert_eq!(r["totals"]["documents_kept"], 5);
    assert_eq!(r["sources"][0]["limit_reached"], true);
    assert_eq!(r["totals"]["ledger_entries"], 0, "records past the limit are not read, so not ledgered");

    d.recipe("[[source]]\nname = \"s\"\npath = \"in.jsonl\"\nformat = \"text\"\nsample = 0.1\n");
    ok(&d.curate(&["recipe.toml", "--out", "s1"]));
    ok(&d.curate(&["recipe.toml", "--out", "s2", "--threads", "1"]));
    let kept = report(&d.join("s1"))["totals"]["documents_kept"].as_u64().unwrap();
    assert!((400..600).contains(&kept), "about 10% of 5000: {kept}");
    assert_eq!(
        std::fs::read(d.join("s1/documents.parquet")).unwrap(),
        std::fs::read(d.join("s2/documents.parquet")).unwrap()
    );
}

#[test]
fn priority_decides_which_duplicate_survives() {
    let d = Dir::new();
    d.write("a.jsonl", "{\"text\": \"the very same document\"}\n");
    d.write("b.jsonl", "{\"text\": \"the  very same document \"}\n".replace("  ", " "));
    let body = |prio_b: i64| {
        format!(
            "[[source]]\nname = \"a\"\npath = \"a.jsonl\"\nformat = \"text\"\n\n[[source]]\nname = \"b\"\npath = \"b.jsonl\"\nformat = \"text\"\npriority = {prio_b}\n"
        )
    };
    d.recipe(&body(0));
    ok(&d.curate(&["recipe.toml"]));
    assert_eq!(strings(&d.out().join("documents.parquet"), "source"), vec![Some("a".to_string())]);
    assert_eq!(ledger(&d.out())[0].1, "b.jsonl");

    d.recipe(&body(10));
    ok(&d.curate(&["recipe.toml"]));
    assert_eq!(strings(&d.out().join("documents.parquet"), "source"), vec![Some("b".to_string())]);
    assert_eq!(ledger(&d.out())[0].1, "a.jsonl");
}

#[test]
fn provenance_travels_with_documents() {
    let d = Dir::new();
    d.write("in.jsonl", "{\"text\": \"a document with provenance\"}\n");
    d.recipe("[[source]]\nname = \"s\"\npath = \"in.jsonl\"\nformat = \"text\"\nlicense = \"CC-BY-4.0\"\norigin = \"model\"\ngenerated_by = [\"meta-llama/Llama-2-70b-chat-hf\"]\n");
    ok(&d.curate(&["recipe.toml"]));
    let p = d.out().join("documents.parquet");
    assert_eq!(strings(&p, "license"), vec![Some("CC-BY-4.0".into())]);
    assert_eq!(strings(&p, "origin"), vec![Some("model".into())]);
    let r = report(&d.out());
    assert_eq!(r["sources"][0]["provenance"]["generated_by"][0], "meta-llama/Llama-2-70b-chat-hf");
}

/// The bundled sample data is exactly what its generator makes.
#[test]
fn sample_data_matches_its_generator() {
    let py = std::process::Command::new("python3").arg("--version").output();
    if py.is_err() {
        eprintln!("skipped: python3 is not installed, so tools/make_sample.py cannot be checked");
        return;
    }
    let o = std::process::Command::new("python3")
        .current_dir(repo())
        .args(["tools/make_sample.py", "--check"])
        .output()
        .unwrap();
    assert!(o.status.success(), "recipes/data is stale:\n{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
}

/// Real public data, when the project's shared data folder is beside the checkout.
#[test]
#[ignore = "needs ../shared/data"]
fn shared_data_real_gsm8k_and_self_instruct() {
    let shared = shared_data("");
    let gsm = shared_data("gsm8k/train.jsonl");
    let si = shared_data("self-instruct/user_oriented_instructions.jsonl");
    eprintln!("running on real data in {}", shared.display());
    let d = Dir::new();
    d.recipe(&format!(
        r#"[[source]]
name = "gsm8k"
path = "{}"
format = "instruction"
fields = {{ instruction = "question", output = "answer" }}
license = "MIT"
origin = "human"

[[source]]
name = "self-instruct"
path = "{}"
format = "instruction"
fields = {{ instruction = "instruction", instances = "instances", input = "input", output = "output" }}
license = "Apache-2.0"
origin = "human"
"#,
        gsm.display(),
        si.display()
    ));
    ok(&d.curate(&["recipe.toml"]));
    let r = report(&d.out());
    assert_eq!(r["sources"][0]["funnel"][0]["records_in"], 7473);
    assert_eq!(r["sources"][1]["funnel"][0]["records_in"], 252);
    // Each of the 252 user-oriented tasks holds one instance; neither set has exact
    // duplicates or rows that fail the mapping.
    assert_eq!(r["sources"][1]["documents_kept"], 252);
    assert_eq!(r["totals"]["documents_kept"], 7473 + 252);
    assert_eq!(r["totals"]["ledger_entries"], 0);
}

/// Global flags may stand before a subcommand (`curate -q check …`), not only after.
#[test]
fn global_flags_before_a_subcommand() {
    let d = Dir::new();
    d.write("in.jsonl", "{\"text\": \"hello world, a document\"}\n");
    d.recipe("[[source]]\nname = \"s\"\npath = \"in.jsonl\"\nformat = \"text\"\n");
    ok(&d.curate(&["-q", "--no-progress", "run", "recipe.toml"]));
    ok(&d.curate(&["--threads", "1", "-q", "recipe.toml"]));
    ok(&d.curate(&["-q", "run", "recipe.toml", "--out", "x"]));
    assert!(d.join("x/documents.parquet").exists());
}
