//! Trains the small byte-level BPE tokenizer that ships in `recipes/tokenizer/`, on
//! the text of the bundled sample data, so that the quickstart writes real shards on
//! a fresh clone without downloading anyone's tokenizer.
//!
//! ```sh
//! cargo run --example train_tokenizer -- recipes/data recipes/tokenizer
//! ```
//!
//! It reads every string value of the sample sources (JSON Lines, JSON, CSV, text;
//! gzip too; not the `eval/` test sets), trains a 2,048-entry byte-level BPE with the `tokenizers` crate's trainer
//! (GPT-2's byte-level scheme, so any text encodes without unknown tokens), and writes
//! `tokenizer.json` and a `tokenizer_config.json` declaring `<s>` / `</s>` and a ChatML
//! chat template. The vocabulary is tiny on purpose: it exists to exercise the
//! pipeline, not to train a useful model.

use std::io::Read;
use std::path::{Path, PathBuf};

use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper, Tokenizer,
    TokenizerBuilder,
};

const SPECIALS: &[&str] = &["<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"];

const CHAT_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let data = PathBuf::from(args.get(1).map(String::as_str).unwrap_or("recipes/data"));
    let out = PathBuf::from(args.get(2).map(String::as_str).unwrap_or("recipes/tokenizer"));

    let mut files = Vec::new();
    walk(&data, &mut files)?;
    files.sort();
    let mut texts = Vec::new();
    for f in &files {
        collect(f, &mut texts)?;
    }
    eprintln!("training on {} strings from {} files", texts.len(), files.len());

    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(2048)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(SPECIALS.iter().map(|s| AddedToken::from(*s, true)).collect())
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut tok = TokenizerBuilder::<BPE, NormalizerWrapper, PreTokenizerWrapper, PostProcessorWrapper, DecoderWrapper>::new()
        .with_model(BPE::default())
        .with_normalizer(None)
        .with_pre_tokenizer(Some(ByteLevel::new(false, true, true).into()))
        .with_post_processor(Some(ByteLevel::new(false, true, true).into()))
        .with_decoder(Some(ByteLevel::new(false, true, true).into()))
        .build()?;
    tok.train(&mut trainer, texts.iter())?;
    let tok: Tokenizer = tok.into();
    std::fs::create_dir_all(&out)?;
    tok.save(out.join("tokenizer.json"), true)?;
    let config = serde_json::json!({
        "bos_token": "<s>",
        "eos_token": "</s>",
        "pad_token": "<pad>",
        "add_bos_token": true,
        "add_eos_token": false,
        "chat_template": CHAT_TEMPLATE,
        "model_max_length": 4096,
        "tokenizer_class": "PreTrainedTokenizerFast"
    });
    std::fs::write(out.join("tokenizer_config.json"), serde_json::to_string_pretty(&config)? + "\n")?;
    eprintln!("wrote {} ({} tokens)", out.display(), tok.get_vocab_size(true));
    Ok(())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            // Evaluation sets are not training text.
            if p.file_name().is_some_and(|n| n == "eval") {
                continue;
            }
            walk(&p, out)?;
        } else if p.file_name().is_some_and(|n| n != "PLANTED.json") {
            out.push(p);
        }
    }
    Ok(())
}

fn collect(path: &Path, texts: &mut Vec<String>) -> Res<()> {
    let mut raw = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut raw)?;
    let name = path.to_string_lossy().to_string();
    if name.ends_with(".gz") {
        let mut s = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut s)?;
        raw = s;
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    if name.contains(".jsonl") {
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                strings(&v, texts);
            }
        }
    } else if name.ends_with(".json") {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            strings(&v, texts);
        }
    } else if name.ends_with(".csv") {
        let mut r = csv::Reader::from_reader(text.as_bytes());
        for rec in r.records().flatten() {
            texts.extend(rec.iter().filter(|f| !f.is_empty()).map(String::from));
        }
    } else {
        texts.push(text);
    }
    Ok(())
}

fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}
