//! The target model's tokenizer, and turning a rendered document into token ids and a
//! loss mask.
//!
//! The tokenizer is a Hugging Face `tokenizer.json` loaded with the `tokenizers` crate
//! (pure-Rust regex backend, ids identical to the Python package's). Its
//! `tokenizer_config.json`, when present beside it, gives the BOS and EOS tokens,
//! whether the family writes a BOS, and the Jinja `chat_template`.

pub mod template;

use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

use crate::hash;
use crate::recipe::{Target, Template, TokenizerRef};
pub use template::{Jinja, Rendered, Specials};

/// The loaded target tokenizer with what the shards record about it.
pub struct TargetTokenizer {
    tok: tokenizers::Tokenizer,
    pub path: PathBuf,
    pub config_path: Option<PathBuf>,
    pub sha256: String,
    pub config_sha256: Option<String>,
    pub vocab_size: usize,
    pub bos: Option<(String, u32)>,
    pub eos: (String, u32),
    pub pad: Option<(String, u32)>,
    pub specials: Specials,
    pub jinja: Option<Jinja>,
    pub template: Template,
    pub seq_len: usize,
}

/// One tokenized document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub ids: Vec<u32>,
    /// 1 where the token is trained.
    pub mask: Vec<u8>,
    /// Tokens before truncation, when the document was truncated.
    pub truncated_from: Option<usize>,
}

impl Tokens {
    pub fn loss_tokens(&self) -> u64 {
        self.mask.iter().map(|&m| m as u64).sum()
    }
}

/// Why a document yields no tokens.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenizeError {
    /// Longer than `seq_len` under `overlong = "drop"`.
    Overlong(usize),
    /// The template could not render the document.
    Template(String),
    Tokenizer(String),
}

fn special_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(String::from),
        _ => None,
    }
}

impl TargetTokenizer {
    pub fn load(target: &Target) -> anyhow::Result<TargetTokenizer> {
        let path = match &target.tokenizer {
            Some(TokenizerRef::Local(p)) => p.clone(),
            Some(TokenizerRef::Hub { id, .. }) => bail!(
                "tokenizer `hf:{id}` has not been fetched: `curate run` resolves it through `curate.lock` and the cache\nhint: call `crate::fetch::materialize` first, or point `[target] tokenizer` at a local tokenizer.json"
            ),
            None => bail!("`[target] tokenizer` is not set"),
        };
        let path = if path.is_dir() { path.join("tokenizer.json") } else { path };
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read tokenizer `{}`", path.display()))?;
        let tok = tokenizers::Tokenizer::from_bytes(&bytes)
            .map_err(|e| anyhow!("`{}` is not a Hugging Face tokenizer.json: {e}", path.display()))?;
        let config_path = path.with_file_name("tokenizer_config.json");
        let (config, config_path, config_sha256) = if config_path.is_file() {
            let b = std::fs::read(&config_path).with_context(|| format!("cannot read `{}`", config_path.display()))?;
            let v: Value = serde_json::from_slice(&b).with_context(|| format!("`{}` is not valid JSON", config_path.display()))?;
            (v, Some(config_path), Some(hash::sha256_hex(&b)))
        } else {
            (Value::Null, None, None)
        };
        let id_of = |t: &str| tok.token_to_id(t);
        let lookup = |name: &str, over: &Option<String>| -> Option<String> {
            over.clone().or_else(|| config.get(name).and_then(special_text))
        };

        // EOS: the override, the config, else the usual names.
        let eos_text = lookup("eos_token", &target.eos_token)
            .or_else(|| ["</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>"].iter().find(|t| id_of(t).is_some()).map(|t| t.to_string()))
            .ok_or_else(|| anyhow!("cannot tell the EOS token of `{}`\nhint: set `[target] eos_token`", path.display()))?;
        let eos_id = id_of(&eos_text)
            .ok_or_else(|| anyhow!("EOS token `{eos_text}` is not in the vocabulary of `{}`", path.display()))?;

        // BOS: written when the family expects one: the config's `add_bos_token`
        // (Llama and Mistral say true), or a leading special token in the tokenizer's
        // own post-processor; never for families without a BOS (Qwen).
        let add_bos = config.get("add_bos_token").and_then(|v| v.as_bool());
        let bos_text = lookup("bos_token", &target.bos_token).or_else(|| post_processor_bos(&tok));
        let bos = match (bos_text, add_bos, &target.bos_token) {
            (Some(t), _, Some(_)) | (Some(t), Some(true), _) | (Some(t), None, _) => {
                let id = id_of(&t).ok_or_else(|| anyhow!("BOS token `{t}` is not in the vocabulary of `{}`", path.display()))?;
                Some((t, id))
            }
            _ => None,
        };
        let pad = config.get("pad_token").and_then(special_text).and_then(|t| id_of(&t).map(|i| (t, i)));
        let jinja = match config.get("chat_template") {
            Some(Value::String(s)) => Some(Jinja::new(s).map_err(|e| anyhow!("`{}`: {e}", config_path.as_ref().unwrap().display()))?),
            _ => None,
        };
        if target.template == Template::Tokenizer && jinja.is_none() {
            bail!(
                "template `tokenizer` needs a `chat_template` in `{}`",
                path.with_file_name("tokenizer_config.json").display()
            );
        }
        let all: Vec<String> = tok
            .get_added_tokens_decoder()
            .values()
            .filter(|t| t.special)
            .map(|t| t.content.clone())
            .collect();
        let specials = Specials { bos: bos.as_ref().map(|b| b.0.clone()), eos: eos_text.clone(), all };
        Ok(TargetTokenizer {
            vocab_size: tok.get_vocab_size(true),
            sha256: hash::sha256_hex(&bytes),
            tok,
            path,
            config_path,
            config_sha256,
            bos,
            eos: (eos_text, eos_id),
            pad,
            specials,
            jinja,
            template: target.template,
            seq_len: target.seq_len as usize,
        })
    }

    /// Megatron dtype: u16 when every id fits (vocabulary below 65,500, the threshold
    /// Megatron-LM's `DType.optimal_dtype` uses), else i32.
    pub fn uses_u16(&self) -> bool {
        self.vocab_size < 65_500
    }

    pub fn render(&self, content: &crate::document::Content) -> Result<Rendered, TokenizeError> {
        template::render(content, self.template, &self.specials, self.jinja.as_ref()).map_err(TokenizeError::Template)
    }

    /// Tokenize a rendered document: ids of the whole text, and a mask with 1 on
    /// every token that overlaps a trained byte range. Longer than `seq_len`: dropped,
    /// or cut to `seq_len` with its last token replaced by EOS.
    pub fn tokenize(&self, r: &Rendered, truncate: bool) -> Result<Tokens, TokenizeError> {
        let bos_len = self.bos_len(r);
        let all_trained = r.trained.len() == 1 && r.trained[0].end == r.text.len() && r.trained[0].start == bos_len;
        let (ids, mask) = if all_trained {
            // Everything but a leading BOS trains: no offsets needed, which is the
            // tokenizer's faster path.
            let enc = self.tok.encode_fast(r.text.as_str(), false).map_err(|e| TokenizeError::Tokenizer(e.to_string()))?;
            let ids = enc.get_ids().to_vec();
            let mut mask = vec![1u8; ids.len()];
            if bos_len > 0 && !mask.is_empty() {
                mask[0] = 0;
            }
            (ids, mask)
        } else {
            let enc = self.tok.encode(r.text.as_str(), false).map_err(|e| TokenizeError::Tokenizer(e.to_string()))?;
            let ids = enc.get_ids().to_vec();
            let mask = mask_from_offsets(enc.get_offsets(), &r.trained);
            (ids, mask)
        };
        let mut t = Tokens { ids, mask, truncated_from: None };
        if t.ids.last() != Some(&self.eos.1) {
            // A tokenizer whose normaliser ate the EOS text (it should not): keep the
            // invariant that every sequence ends with EOS.
            t.ids.push(self.eos.1);
            t.mask.push(t.mask.last().copied().unwrap_or(1));
        }
        if t.ids.len() > self.seq_len {
            if !truncate {
                return Err(TokenizeError::Overlong(t.ids.len()));
            }
            let n = t.ids.len();
            t.ids.truncate(self.seq_len);
            t.mask.truncate(self.seq_len);
            let last = self.seq_len - 1;
            t.ids[last] = self.eos.1;
            t.mask[last] = u8::from(t.mask[..last].contains(&1));
            t.truncated_from = Some(n);
        }
        Ok(t)
    }

    fn bos_len(&self, r: &Rendered) -> usize {
        match &self.bos {
            Some((b, _)) if r.text.starts_with(b.as_str()) => b.len(),
            _ => 0,
        }
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        self.tok.decode(ids, false).unwrap_or_else(|e| format!("<undecodable: {e}>"))
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.tok.id_to_token(id)
    }

    pub fn file_name(&self) -> &Path {
        &self.path
    }
}

/// The BOS a tokenizer's `TemplateProcessing` post-processor puts first, if any.
fn post_processor_bos(tok: &tokenizers::Tokenizer) -> Option<String> {
    let v = serde_json::to_value(tok.get_post_processor()?).ok()?;
    let single = v.get("single")?.as_array()?;
    single.first()?.get("SpecialToken")?.get("id")?.as_str().map(String::from)
}

/// 1 for each token whose byte span overlaps a trained range. Ranges and offsets are
/// both sorted, so this is one merge pass.
pub fn mask_from_offsets(offsets: &[(usize, usize)], trained: &[Range<usize>]) -> Vec<u8> {
    let mut mask = Vec::with_capacity(offsets.len());
    let mut j = 0;
    for &(s, e) in offsets {
        while j < trained.len() && trained[j].end <= s {
            j += 1;
        }
        let hit = j < trained.len() && {
            let r = &trained[j];
            // An empty span (some tokenizers give added tokens zero width) counts when
            // it sits inside a range.
            if s == e { r.start <= s && s < r.end } else { s < r.end && e > r.start }
        };
        mask.push(u8::from(hit));
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_marks_overlapping_tokens() {
        let offsets = [(0, 3), (3, 5), (5, 9), (9, 12), (12, 16)];
        let trained = [4..9, 12..16];
        assert_eq!(mask_from_offsets(&offsets, &trained), vec![0, 1, 1, 0, 1]);
        assert_eq!(mask_from_offsets(&offsets, &[]), vec![0; 5]);
    }
}
