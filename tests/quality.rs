//! Near-dedup, decontamination, quality presets, chatbot phrases and PII, end to end:
//! each drop in the ledger with its evidence, the report's tables, and recall and
//! precision floors on planted sets the tests make themselves.

mod common;
use common::*;

use std::collections::{BTreeSet, HashMap};

/// Seeded, varied prose: each document draws its own words, so distinct documents
/// share few 5-word shingles.
fn prose(seed: u64, words: usize) -> String {
    const VOCAB: &[&str] = &[
        "river", "lantern", "copper", "meadow", "signal", "harbor", "pencil", "orbit", "thunder", "maple", "canvas",
        "whisper", "glacier", "market", "violet", "engine", "pocket", "summit", "basket", "crystal", "falcon", "garden",
        "hollow", "island", "jacket", "kettle", "ladder", "mirror", "needle", "oyster", "pepper", "quarry", "ribbon",
        "saddle", "tunnel", "umbrella", "valley", "wagon", "yonder", "zephyr", "anchor", "bramble", "cinder", "dune",
        "ember", "fable", "gravel", "hinge", "ivory", "jungle", "kernel", "lumber", "marble", "nectar", "olive",
        "parcel", "quiver", "rustle", "spindle", "timber", "ulcer", "velvet", "willow", "yarrow", "zinc", "the", "a",
        "of", "and", "to", "with", "near", "under", "over", "beside",
    ];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(words);
    for _ in 0..words {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(VOCAB[(x % VOCAB.len() as u64) as usize]);
    }
    out.join(" ")
}

/// A near-duplicate: one word changed, another dropped, spacing and punctuation.
fn edit(text: &str, k: u64) -> String {
    let mut w: Vec<&str> = text.split(' ').collect();
    let i = (k as usize * 7) % (w.len() - 2) + 1;
    w[i] = "edited";
    w.remove(i + 1);
    let mut s = w.join(" ");
    s = s.replacen(' ', "  ", 1);
    s.push('.');
    s
}

#[test]
fn near_duplicates_are_dropped_with_cluster_survivor_and_jaccard() {
    let d = Dir::new();
    let mut lines = String::new();
    let mut planted = BTreeSet::new();
    let mut originals = HashMap::new();
    let mut row = 0u64;
    for i in 0..400u64 {
        let t = prose(i + 1, 120);
        row += 1;
        lines.push_str(&serde_json::json!({ "text": t }).to_string());
        lines.push('\n');
        if i % 10 == 0 {
            let orig_row = row;
            row += 1;
            lines.push_str(&serde_json::json!({ "text": edit(&t, i) }).to_string());
            lines.push('\n');
            planted.insert(row);
            originals.insert(row, orig_row);
        }
    }
    d.write("in.jsonl", lines);
    d.recipe("[[source]]\nname = \"s\"\npath = \"in.jsonl\"\nformat = \"text\"\n\n[dedup]\nnear = {}\n");
    ok(&d.curate(&["recipe.toml"]));
    let out = d.out();
    let found: BTreeSet<u64> =
        ledger(&out).into_iter().filter(|(r, _, _)| r == "near_dedup.minhash").map(|(_, _, row)| row).collect();
    let hits = found.intersection(&planted).count() as f64;
    let recall = hits / planted.len() as f64;
    let precision = if found.is_empty() { 1.0 } else { hits / found.len() as f64 };
    eprintln!("near-dedup on 400 + {} planted: recall {recall:.3}, precision {precision:.3}", planted.len());
    assert!(recall >= 0.95, "recall {recall}");
    assert!(precision >= 0.98, "precision {precision}");

    // Each drop names the original it duplicates, with a Jaccard in the value.
    let docs = out.join("documents.parquet");
    let id_of: HashMap<u64, String> =
        u64s(&docs, "row").into_iter().zip(strings(&docs, "id")).map(|(r, id)| (r, id.unwrap())).collect();
    let l = out.join("ledger.parquet");
    for ((row, dup), detail) in u64s(&l, "row").into_iter().zip(strings(&l, "duplicate_of")).zip(strings(&l, "detail")) {
        if let Some(orig) = originals.get(&row) {
            assert_eq!(dup.as_ref(), id_of.get(orig), "row {row}");
            assert!(detail.unwrap().contains("cluster"));
        }
    }
    assert!(!id_of.keys().any(|r| found.contains(r)), "dropped documents are not in documents.parquet");
    let r = report(&out);
    assert_eq!(r["near_dedup"]["dropped"].as_u64().unwrap(), found.len() as u64);
    assert_eq!(r["totals"]["documents_kept"].as_u64().unwrap(), row - found.len() as u64);

    // Deterministic whatever the thread count.
    ok(&d.curate(&["recipe.toml", "--threads", "1", "--out", "t1"]));
    ok(&d.curate(&["recipe.toml", "--threads", "3", "--out", "t3"]));
    for f in ["documents.parquet", "ledger.parquet", "report.json"] {
        assert_eq!(std::fs::read(d.join("t1").join(f)).unwrap(), std::fs::read(d.join("t3").join(f)).unwrap(), "{f}");
    }
}

#[test]
fn confirmed_near_dedup_keeps_pairs_below_the_threshold() {
    let d = Dir::new();
    // Pairs sharing about half their text: candidates at times, never near-duplicates.
    let mut lines = String::new();
    for i in 0..200u64 {
        let a = prose(i + 1000, 60);
        let b = prose(i + 5000, 60);
        let c = prose(i + 9000, 60);
        lines.push_str(&serde_json::json!({ "text": format!("{a} {b}") }).to_string());
        lines.push('\n');
        lines.push_str(&serde_json::json!({ "text": format!("{a} {c}") }).to_string());
        lines.push('\n');
    }
    d.write("in.jsonl", lines);
    d.recipe("[[source]]\nname = \"s\"\npath = \"in.jsonl\"\nformat = \"text\"\n\n[dedup]\nnear = { confirm = true, threshold = 0.8 }\n");
    ok(&d.curate(&["recipe.toml"]));
    let r = report(&d.out());
    assert_eq!(r["near_dedup"]["dropped"], 0, "{}", r["near_dedup"]);
    assert_eq!(r["near_dedup"]["confirm"], true);
}

fn eval_and_train(d: &Dir, action: &str) {
    let mut eval = String::new();
    let mut train = String::new();
    for i in 0..30u64 {
        let q = format!("Question {i}: {}", prose(i + 100, 20));
        eval.push_str(&serde_json::json!({ "question": q, "answer": format!("{}", i * 7) }).to_string());
        eval.push('\n');
    }
    for i in 0..200u64 {
        let mut t = prose(i + 20_000, 80);
        if i % 20 == 3 {
            // Paste an eval question into the middle of a training document.
            let k = i / 20;
            t = format!("{} Question {k}: {} {}", &t[..t.len() / 2], prose(k + 100, 20), &t[t.len() / 2..]);
        }
        train.push_str(&serde_json::json!({ "text": t }).to_string());
        train.push('\n');
    }
    d.write("eval.jsonl", eval);
    d.write("train.jsonl", train);
    d.recipe(&format!(
        r#"[[source]]
name = "train"
path = "train.jsonl"
format = "text"

[[source]]
name = "bench"
path = "eval.jsonl"
format = "instruction"
fields = {{ instruction = "question", output = "answer" }}
role = "eval"
benchmark = "my-bench"

[decontaminate]
action = "{action}"
"#
    ));
}

#[test]
fn contaminated_documents_are_dropped_naming_benchmark_item_and_ngram() {
    let d = Dir::new();
    eval_and_train(&d, "drop");
    ok(&d.curate(&["recipe.toml"]));
    let out = d.out();
    let l = out.join("ledger.parquet");
    let rows: Vec<(String, u64, String)> = strings(&l, "rule")
        .into_iter()
        .zip(u64s(&l, "row"))
        .zip(strings(&l, "detail"))
        .map(|((r, n), t)| (r.unwrap(), n, t.unwrap()))
        .collect();
    let found: Vec<u64> = rows.iter().filter(|r| r.0 == "decontam.ngram").map(|r| r.1).collect();
    assert_eq!(found, (0..10).map(|k| 20 * k + 4).collect::<Vec<u64>>(), "every planted document, nothing else");
    let detail = &rows.iter().find(|r| r.0 == "decontam.ngram").unwrap().2;
    assert!(detail.contains("`my-bench` item `eval.jsonl:1`"), "{detail}");
    let r = report(&out);
    assert_eq!(r["decontamination"]["contamination"]["my-bench"]["train"], 10);
    assert_eq!(r["decontamination"]["sources"][0]["indexed"], 30);
    assert_eq!(r["totals"]["documents_kept"], 190, "eval items are never written as training documents");
    let sources = strings(&out.join("documents.parquet"), "source");
    assert!(sources.iter().all(|s| s.as_deref() == Some("train")));
}

#[test]
fn flagged_contamination_is_kept_and_counted() {
    let d = Dir::new();
    eval_and_train(&d, "flag");
    ok(&d.curate(&["recipe.toml"]));
    let r = report(&d.out());
    assert_eq!(r["totals"]["documents_kept"], 200);
    assert_eq!(r["decontamination"]["contamination"]["my-bench"]["train"], 10);
    assert_eq!(r["decontamination"]["action"], "flag");
}

/// Every GSM8K test question, planted in synthetic training text, is caught, when the
/// project's shared data folder is present.
#[test]
#[ignore = "needs ../shared/data"]
fn shared_data_every_gsm8k_test_question_is_caught() {
    let test = shared_data("gsm8k/test.jsonl");
    eprintln!("running on {}", test.display());
    let d = Dir::new();
    let mut train = String::new();
    let mut n = 0;
    for (i, line) in std::fs::read_to_string(&test).unwrap().lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let q = v["question"].as_str().unwrap();
        let t = format!("{} {} {}", prose(i as u64 + 50_000, 30), q, prose(i as u64 + 90_000, 30));
        train.push_str(&serde_json::json!({ "text": t }).to_string());
        train.push('\n');
        n += 1;
    }
    for i in 0..500u64 {
        train.push_str(&serde_json::json!({ "text": prose(i + 200_000, 90) }).to_string());
        train.push('\n');
    }
    d.write("train.jsonl", train);
    d.recipe(&format!(
        "[[source]]\nname = \"train\"\npath = \"train.jsonl\"\nformat = \"text\"\n\n[[source]]\nname = \"gsm8k-test\"\npath = \"{}\"\nformat = \"instruction\"\nfields = {{ instruction = \"question\", output = \"answer\" }}\nrole = \"eval\"\nbenchmark = \"gsm8k\"\n",
        test.display()
    ));
    ok(&d.curate(&["recipe.toml"]));
    let r = report(&d.out());
    assert_eq!(n, 1319);
    assert_eq!(r["decontamination"]["contamination"]["gsm8k"]["train"], 1319);
    assert_eq!(r["totals"]["documents_kept"], 500, "the clean documents are all kept");
}

#[test]
fn quality_presets_language_chatbot_phrases_and_pii() {
    let d = Dir::new();
    let good = "The river runs past the old mill, and the people of the town walk along it in the evening. \
                They talk about the weather, the harvest and the news from the city, and the children play \
                near the water until the light is gone and it is time to go home for supper with the family.";
    let lines = [
        serde_json::json!({ "text": good }),
        serde_json::json!({ "text": "Too short to be a real document." }),
        serde_json::json!({ "text": format!("{good} Write to ana.lopez@example.org or call +1 415 555 0199.") }),
        serde_json::json!({ "text": format!("{good} As an AI language model, I cannot have opinions.") }),
        serde_json::json!({ "text": "Der Fluss fließt an der alten Mühle vorbei, und die Leute der Stadt gehen am Abend an ihm entlang. Sie reden über das Wetter, die Ernte und die Nachrichten aus der Stadt, und die Kinder spielen am Wasser, bis das Licht vergeht. Danach gehen alle nach Hause, essen zusammen mit der Familie zu Abend und erzählen sich, was sie am Tag erlebt haben, bevor sie müde und zufrieden in ihre Betten gehen und schlafen." }),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    d.write("in.jsonl", body);
    d.recipe(
        "[[source]]\nname = \"s\"\npath = \"in.jsonl\"\nformat = \"text\"\norigin = \"human\"\n\n[filters]\nquality = [\"gopher\"]\nlanguage = { allowed = [\"eng\"] }\nai_phrases = \"flag\"\npii = \"redact\"\n",
    );
    ok(&d.curate(&["recipe.toml"]));
    let out = d.out();
    let l = ledger(&out);
    let rules: Vec<(&str, u64)> = l.iter().map(|(r, _, n)| (r.as_str(), *n)).collect();
    // Gopher runs first: the German document has none of Gopher's English stop words.
    assert_eq!(rules, vec![("quality.gopher_word_count", 2), ("quality.gopher_stop_words", 5)]);
    let texts: Vec<String> = strings(&out.join("documents.parquet"), "text").into_iter().map(|t| t.unwrap()).collect();
    assert_eq!(texts.len(), 3);
    assert!(texts[1].contains("<EMAIL>") && texts[1].contains("<PHONE>") && !texts[1].contains("ana.lopez"), "{}", texts[1]);
    let r = report(&out);
    let q = &r["sources"][0]["quality"];
    assert_eq!(q["pii_redacted"]["email"], 1);
    assert_eq!(q["pii_redacted"]["phone"], 1);
    assert_eq!(q["ai_phrase_documents"], 1, "flagged, not dropped");
    let warning = r["warnings"][0].as_str().unwrap();
    assert!(warning.contains("declared human-written") && warning.contains("chatbot phrases"), "{warning}");

    d.recipe("[[source]]\nname = \"s\"\npath = \"in.jsonl\"\nformat = \"text\"\n\n[filters]\nai_phrases = \"drop\"\n");
    ok(&d.curate(&["recipe.toml"]));
    assert_eq!(ledger(&d.out()), vec![("quality.ai_phrases".to_string(), "in.jsonl".to_string(), 4)]);

    d.recipe("[[source]]\nname = \"s\"\npath = \"in.jsonl\"\nformat = \"text\"\n\n[filters]\nlanguage = { allowed = [\"eng\"] }\n");
    ok(&d.curate(&["recipe.toml"]));
    let l = ledger(&d.out());
    assert_eq!(l, vec![("quality.language".to_string(), "in.jsonl".to_string(), 5)]);
}

#[test]
fn stage_settings_are_checked_with_the_recipe() {
    let d = Dir::new();
    d.write("in.jsonl", "{\"text\": \"x y z\"}\n");
    d.recipe("[[source]]\nname = \"s\"\npath = \"in.jsonl\"\nformat = \"text\"\n\n[decontaminate]\nngram = 13\n\n[filters]\nquality = [\"gopher\", \"c5\"]\npii = \"mask\"\n\n[dedup]\nnear = { bands = 0, rowz = 3 }\n");
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("`[decontaminate]` needs at least one source with `role = \"eval\"`"), "{err}");
    assert!(err.contains("unknown quality preset `c5`"), "{err}");
    assert!(err.contains("unknown `pii` action `mask`"), "{err}");
    assert!(err.contains("unknown key `rowz` in `dedup.near`"), "{err}");
    assert!(err.contains("did you mean `rows`?"), "{err}");
}
