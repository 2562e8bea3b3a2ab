//! Templates: how a document is rendered into the text the model sees, and which byte
//! ranges of that text are trained.
//!
//! The whole document is rendered to one string (special tokens written as their
//! text) and tokenized once, as `transformers`' `apply_chat_template` followed by
//! tokenization does; rendering pieces and tokenizing them separately would give other
//! token ids at the seams (SentencePiece adds a word-start marker to every piece). The
//! trained ranges are then mapped onto tokens through the tokenizer's offsets.
//!
//! What trains: the assistant's (response's) text and the end-of-turn / EOS token that
//! closes it, in every assistant turn; never the prompt, the system turn or the
//! template's scaffolding. A `text` document trains everything but its BOS. Every
//! rendering ends with the tokenizer's EOS.

use std::ops::Range;

use crate::document::{Content, Message};
use crate::recipe::{Role, Template};

/// Special-token texts the templates need.
#[derive(Debug, Clone)]
pub struct Specials {
    /// Written at the start of every document when the model family expects it.
    pub bos: Option<String>,
    pub eos: String,
    /// Every special token the tokenizer knows (for the Jinja template's end-of-turn
    /// detection).
    pub all: Vec<String>,
}

/// A rendered document: its text and the byte ranges that train.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub trained: Vec<Range<usize>>,
}

impl Rendered {
    fn new() -> Rendered {
        Rendered { text: String::new(), trained: Vec::new() }
    }
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }
    fn push_trained(&mut self, s: &str) {
        let start = self.text.len();
        self.text.push_str(s);
        if !s.is_empty() {
            match self.trained.last_mut() {
                Some(r) if r.end == start => r.end = self.text.len(),
                _ => self.trained.push(start..self.text.len()),
            }
        }
    }
    /// The texts of the trained ranges, for tests and `inspect`.
    pub fn trained_texts(&self) -> Vec<&str> {
        self.trained.iter().map(|r| &self.text[r.clone()]).collect()
    }
}

/// The Stanford Alpaca prompt preamble, from `train.py` (PROMPT_DICT) of
/// https://github.com/tatsu-lab/stanford_alpaca.
pub const ALPACA_PREAMBLE: &str =
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.";

/// A compiled Jinja chat template (from `tokenizer_config.json`).
///
/// A template comes with the tokenizer, possibly from the hub, and is a program: one
/// with nested loops could run for ever. Each render is bounded, in work and memory by
/// minijinja's fuel (about one unit per instruction and per 64 bytes created), and in
/// output by [`Jinja::output_limit`]; both grow with the document, so that no honest
/// template comes near them. A render that passes either fails as `tokenize.template`.
pub struct Jinja {
    env: minijinja::Environment<'static>,
}

/// Fuel every render gets, whatever the document.
const FUEL_BASE: u64 = 2_000_000;
/// Fuel per message, for templates that look over all messages for each one.
const FUEL_PER_MESSAGE: u64 = 20_000;
/// Output every render may write besides its messages.
const OUTPUT_BASE: u64 = 1 << 20;

/// An `io::Write` that refuses to grow past its limit.
struct Capped {
    out: Vec<u8>,
    limit: u64,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if (self.out.len() + buf.len()) as u64 > self.limit {
            self.over = true;
            return Err(std::io::Error::other("chat_template output over its limit"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Jinja {
    pub fn new(source: &str) -> Result<Jinja, String> {
        let mut env = minijinja::Environment::new();
        // Hugging Face templates call Python string methods (`.strip()`, `.title()`)
        // and `raise_exception`; pycompat provides the former.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned("chat", source.to_string()).map_err(|e| format!("chat_template does not compile: {e}"))?;
        Ok(Jinja { env })
    }

    /// Fuel for rendering `messages` holding `bytes` bytes of text: a generous
    /// multiple of what a chat template needs (a few instructions per message, and
    /// the message texts copied a few times).
    pub fn fuel(messages: usize, bytes: u64) -> u64 {
        FUEL_BASE + FUEL_PER_MESSAGE * messages as u64 + bytes
    }

    /// The most a render may write for `bytes` bytes of message text.
    pub fn output_limit(bytes: u64) -> u64 {
        OUTPUT_BASE + 8 * bytes
    }

    fn render(&self, messages: &[Message], sp: &Specials) -> Result<String, String> {
        let msgs: Vec<_> = messages
            .iter()
            .map(|m| minijinja::context! { role => m.role.as_str(), content => m.content.as_str() })
            .collect();
        let bytes: u64 = messages.iter().map(|m| m.content.len() as u64).sum();
        let fuel = Jinja::fuel(messages.len(), bytes);
        let mut env = self.env.clone();
        env.set_fuel(Some(fuel));
        let t = env.get_template("chat").map_err(|e| e.to_string())?;
        let mut out = Capped { out: Vec::new(), limit: Jinja::output_limit(bytes), over: false };
        let res = t.render_captured_to(
            minijinja::context! {
                messages => msgs,
                bos_token => sp.bos.clone().unwrap_or_default(),
                eos_token => sp.eos.clone(),
                add_generation_prompt => false,
            },
            &mut out,
        );
        match res {
            Ok(_) => String::from_utf8(out.out).map_err(|_| "chat_template wrote text that is not UTF-8".to_string()),
            Err(_) if out.over => Err(format!(
                "chat_template output passed {} bytes for {} messages of {bytes} bytes (a template that repeats without end?)",
                out.limit,
                messages.len()
            )),
            Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => Err(format!(
                "chat_template ran out of fuel: more than {fuel} steps for {} messages of {bytes} bytes (a loop that does not end?)",
                messages.len()
            )),
            Err(e) => Err(format!("chat_template failed: {e}")),
        }
    }
}

/// Render a document. Errors only for the Jinja template (a template that raises, or
/// an assistant message the rendering does not contain).
pub fn render(content: &Content, template: Template, sp: &Specials, jinja: Option<&Jinja>) -> Result<Rendered, String> {
    let mut r = Rendered::new();
    let msgs = match content {
        Content::Text(t) => {
            if let Some(b) = &sp.bos {
                r.push(b);
            }
            r.push_trained(t);
            r.push_trained(&sp.eos);
            return Ok(r);
        }
        Content::Messages(ms) => ms,
    };
    match template {
        Template::Plain => {
            if let Some(b) = &sp.bos {
                r.push(b);
            }
            for (i, m) in msgs.iter().enumerate() {
                if i > 0 {
                    r.push_trained("\n\n");
                }
                r.push_trained(&m.content);
            }
            r.push_trained(&sp.eos);
        }
        Template::Alpaca => {
            if let Some(b) = &sp.bos {
                r.push(b);
            }
            let system = msgs.iter().find(|m| m.role == Role::System).map(|m| m.content.as_str());
            r.push(system.unwrap_or(ALPACA_PREAMBLE));
            let mut last_assistant = false;
            for m in msgs.iter().filter(|m| m.role != Role::System) {
                match m.role {
                    Role::User => {
                        r.push("\n\n### Instruction:\n");
                        r.push(&m.content);
                        last_assistant = false;
                    }
                    _ => {
                        r.push("\n\n### Response:\n");
                        r.push_trained(&m.content);
                        last_assistant = true;
                    }
                }
            }
            end_with_eos(&mut r, sp, last_assistant);
        }
        Template::Mistral | Template::Llama2 => {
            // Mistral: `<s>[INST] {user} [/INST] {answer}</s>[INST] …` (no system
            // role: a system message is put before the first user turn).
            // Llama 2 (Meta's reference `chat_completion`): every turn is
            // `<s>[INST] {user} [/INST] {answer} </s>`, the system prompt inside the
            // first turn between `<<SYS>>\n` and `\n<</SYS>>\n\n`.
            let llama = template == Template::Llama2;
            let system = msgs.iter().find(|m| m.role == Role::System).map(|m| m.content.as_str());
            let mut first_user = true;
            let mut open = false;
            let mut last_assistant = false;
            for m in msgs.iter().filter(|m| m.role != Role::System) {
                match m.role {
                    Role::User => {
                        if open {
                            // Two user turns in a row: close the dangling one untrained.
                            r.push(" [/INST]");
                        }
                        if (llama || first_user)
                            && let Some(b) = &sp.bos
                        {
                            r.push(b);
                        }
                        r.push("[INST] ");
                        if first_user && let Some(s) = system {
                            if llama {
                                r.push("<<SYS>>\n");
                                r.push(s);
                                r.push("\n<</SYS>>\n\n");
                            } else {
                                r.push(s);
                                r.push("\n\n");
                            }
                        }
                        r.push(&m.content);
                        r.push(" [/INST]");
                        first_user = false;
                        open = true;
                        last_assistant = false;
                    }
                    _ => {
                        r.push(" ");
                        r.push_trained(&m.content);
                        if llama {
                            r.push_trained(" ");
                        }
                        r.push_trained(&sp.eos);
                        open = false;
                        last_assistant = true;
                    }
                }
            }
            if !last_assistant {
                r.push_trained(&sp.eos);
                // An unanswered final prompt trains nothing but is kept readable;
                // such documents are dropped by the empty filter before this point.
                if let Some(last) = r.trained.last().cloned()
                    && r.text[last.clone()] == *sp.eos
                {
                    r.trained.pop();
                }
            }
        }
        Template::Chatml => {
            if let Some(b) = &sp.bos {
                r.push(b);
            }
            let n = msgs.len();
            for (i, m) in msgs.iter().enumerate() {
                r.push("<|im_start|>");
                r.push(m.role.as_str());
                r.push("\n");
                if m.role == Role::Assistant {
                    r.push_trained(&m.content);
                    r.push_trained("<|im_end|>");
                } else {
                    r.push(&m.content);
                    r.push("<|im_end|>");
                }
                if i + 1 < n {
                    r.push("\n");
                }
            }
            if sp.eos != "<|im_end|>" {
                end_with_eos(&mut r, sp, msgs.last().is_some_and(|m| m.role == Role::Assistant));
            }
        }
        Template::Tokenizer => {
            let jinja = jinja.ok_or("template `tokenizer` needs a `chat_template` in tokenizer_config.json")?;
            let text = jinja.render(msgs, sp)?;
            r.text = text.trim_end().to_string();
            let mut cursor = 0;
            for (i, m) in msgs.iter().enumerate() {
                if m.role != Role::Assistant || m.content.is_empty() {
                    continue;
                }
                let Some(pos) = r.text[cursor..].find(m.content.as_str()).map(|p| p + cursor) else {
                    return Err(format!("the chat_template's rendering does not contain assistant message {i} verbatim"));
                };
                let mut end = pos + m.content.len();
                // The end-of-turn token the template writes right after the answer
                // (e.g. `<|im_end|>` or `</s>`) is trained too.
                if let Some(tok) = sp.all.iter().filter(|t| r.text[end..].starts_with(t.as_str())).max_by_key(|t| t.len()) {
                    end += tok.len();
                }
                r.trained.push(pos..end);
                cursor = end;
            }
            if !r.text.ends_with(sp.eos.as_str()) {
                let last_assistant = msgs.last().is_some_and(|m| m.role == Role::Assistant);
                end_with_eos(&mut r, sp, last_assistant);
            }
        }
    }
    Ok(r)
}

fn end_with_eos(r: &mut Rendered, sp: &Specials, trained: bool) {
    if trained {
        r.push_trained(&sp.eos);
    } else {
        r.push(&sp.eos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp() -> Specials {
        Specials { bos: Some("<s>".into()), eos: "</s>".into(), all: vec!["<s>".into(), "</s>".into(), "<|im_end|>".into()] }
    }
    fn m(role: Role, c: &str) -> Message {
        Message { role, content: c.into() }
    }
    fn chat() -> Content {
        Content::Messages(vec![
            m(Role::System, "Be brief."),
            m(Role::User, "2+2?"),
            m(Role::Assistant, "4."),
            m(Role::User, "And 3+3?"),
            m(Role::Assistant, "6."),
        ])
    }

    #[test]
    fn mistral_trains_every_answer_and_its_eos() {
        let r = render(&chat(), Template::Mistral, &sp(), None).unwrap();
        assert_eq!(r.text, "<s>[INST] Be brief.\n\n2+2? [/INST] 4.</s>[INST] And 3+3? [/INST] 6.</s>");
        assert_eq!(r.trained_texts(), vec!["4.</s>", "6.</s>"]);
    }

    #[test]
    fn llama2_has_sys_block_and_bos_per_turn() {
        let r = render(&chat(), Template::Llama2, &sp(), None).unwrap();
        assert_eq!(
            r.text,
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n2+2? [/INST] 4. </s><s>[INST] And 3+3? [/INST] 6. </s>"
        );
        assert_eq!(r.trained_texts(), vec!["4. </s>", "6. </s>"]);
        assert!(!r.text.contains("<s><s>"), "no doubled BOS");
    }

    #[test]
    fn chatml_trains_answers_and_end_of_turn_then_eos() {
        let r = render(&chat(), Template::Chatml, &sp(), None).unwrap();
        assert!(r.text.starts_with("<s><|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"));
        assert!(r.text.ends_with("<|im_start|>assistant\n6.<|im_end|></s>"), "{}", r.text);
        assert_eq!(r.trained_texts(), vec!["4.<|im_end|>", "6.<|im_end|></s>"]);
    }

    #[test]
    fn alpaca_uses_the_preamble_or_the_system_prompt() {
        let c = Content::Messages(vec![m(Role::User, "Add 2 and 3."), m(Role::Assistant, "5")]);
        let r = render(&c, Template::Alpaca, &sp(), None).unwrap();
        assert_eq!(r.text, format!("<s>{ALPACA_PREAMBLE}\n\n### Instruction:\nAdd 2 and 3.\n\n### Response:\n5</s>"));
        assert_eq!(r.trained_texts(), vec!["5</s>"]);
        let r = render(&chat(), Template::Alpaca, &sp(), None).unwrap();
        assert!(r.text.starts_with("<s>Be brief.\n\n### Instruction:\n2+2?"));
    }

    #[test]
    fn text_documents_train_all_but_bos() {
        let r = render(&Content::Text("hello".into()), Template::Mistral, &sp(), None).unwrap();
        assert_eq!(r.text, "<s>hello</s>");
        assert_eq!(r.trained_texts(), vec!["hello</s>"]);
        let no_bos = Specials { bos: None, ..sp() };
        let r = render(&Content::Text("hello".into()), Template::Plain, &no_bos, None).unwrap();
        assert_eq!(r.text, "hello</s>");
    }

    #[test]
    fn jinja_template_finds_answers_and_end_of_turn() {
        let j = Jinja::new("{{ bos_token }}{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'].strip() + '<|im_end|>\\n' }}{% endfor %}").unwrap();
        let r = render(&chat(), Template::Tokenizer, &sp(), Some(&j)).unwrap();
        assert!(r.text.ends_with("6.<|im_end|></s>"), "{}", r.text);
        assert_eq!(r.trained_texts(), vec!["4.<|im_end|>", "6.<|im_end|></s>"]);
    }

    #[test]
    fn jinja_runaway_loops_run_out_of_fuel() {
        let j = Jinja::new("{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}").unwrap();
        let started = std::time::Instant::now();
        let e = render(&chat(), Template::Tokenizer, &sp(), Some(&j)).unwrap_err();
        assert!(e.contains("ran out of fuel"), "{e}");
        assert!(started.elapsed().as_secs() < 60, "bounded: {:?}", started.elapsed());
    }

    #[test]
    fn jinja_output_is_bounded() {
        // Little work per byte: a long string repeated, so the output limit is met
        // before the fuel runs out.
        let j = Jinja::new("{% for i in range(100000) %}{{ messages[0]['content'] }}{% endfor %}").unwrap();
        let big = "x".repeat(64 * 1024);
        let c = Content::Messages(vec![m(Role::User, &big), m(Role::Assistant, "ok")]);
        let e = render(&c, Template::Tokenizer, &sp(), Some(&j)).unwrap_err();
        assert!(e.contains("chat_template output passed"), "{e}");
    }

    #[test]
    fn jinja_raise_exception_is_an_error() {
        let j = Jinja::new("{{ raise_exception('only user/assistant roles are supported') }}").unwrap();
        let e = render(&chat(), Template::Tokenizer, &sp(), Some(&j)).unwrap_err();
        assert!(e.contains("only user/assistant"), "{e}");
    }
}
