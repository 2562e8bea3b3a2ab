//! Read & normalise: parse a raw record, apply the source's selection (`where`,
//! `sample`), map its fields into canonical documents and normalise their text.
//!
//! This runs in parallel over batches of records; everything it needs is in
//! [`SourceCtx`], and its result for a record depends on nothing but that record, so
//! the outcome is the same whatever thread handles it.

use serde_json::Value;

use crate::document::{Content, Document, Locator, Message, normalize};
use crate::hash;
use crate::ledger::{DropReason, Entry, Rule};
use crate::recipe::{Mapping, Source};
use crate::source::read::{Body, RawRecord};

/// What the mapping stage needs to know about a source.
pub struct SourceCtx<'a> {
    pub source: &'a Source,
    pub seed: u64,
}

/// What became of one raw record.
#[derive(Debug)]
pub enum RowOutcome {
    /// The record could not be read (read stage).
    Bad(Entry),
    /// A problem with the whole source, not one record: the run stops.
    Fatal(String),
    /// The record was not selected by `where` or `sample` (select stage).
    Unselected(Entry),
    /// The record was selected: the documents it yielded, and the ones that could not
    /// be mapped (a row without instances yields one or the other).
    Selected { docs: Vec<Document>, failed: Vec<Entry> },
}

impl SourceCtx<'_> {
    fn entry(&self, loc: Locator, reason: DropReason) -> Entry {
        Entry { doc_id: loc.doc_id(&self.source.name), source: self.source.index, locator: loc, reason }
    }

    pub fn process(&self, rec: RawRecord) -> RowOutcome {
        let first = rec.first;
        let loc = Locator { file: rec.file, row: rec.row, sub: None };
        let value = match rec.body {
            Body::Bad(reason) => return RowOutcome::Bad(self.entry(loc, reason)),
            Body::Text(t) => {
                // A text file is one document; it has no columns to select on.
                if let Some(o) = self.sampled_out(&loc) {
                    return o;
                }
                let doc = Document::new(self.source.index, &self.source.name, loc, Content::Text(normalize(&t)));
                return RowOutcome::Selected { docs: vec![doc], failed: vec![] };
            }
            Body::Line(bytes) => match parse_line(&bytes) {
                Ok(v) => v,
                Err(reason) => return RowOutcome::Bad(self.entry(loc, reason)),
            },
            Body::Value(v) => v,
        };
        if !value.is_object() {
            let reason = DropReason::new(Rule::Malformed, None, format!("expected a JSON object, found {}", kind(&value)));
            return RowOutcome::Bad(self.entry(loc, reason));
        }
        if let Some(w) = &self.source.where_
            && first
        {
            let missing = w.missing_columns(&value);
            if !missing.is_empty() {
                let have: Vec<&str> = value.as_object().map(|o| o.keys().map(|k| k.as_str()).collect()).unwrap_or_default();
                return RowOutcome::Fatal(format!(
                    "`where` reads column(s) {} that `{}` does not have (its first record has: {})",
                    missing.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
                    loc.file,
                    have.join(", ")
                ));
            }
        }
        if let Some(w) = &self.source.where_
            && !w.matches(&value)
        {
            let reason = DropReason::new(Rule::Where, None, format!("not selected by `{}`", w.text()));
            return RowOutcome::Unselected(self.entry(loc, reason));
        }
        if let Some(o) = self.sampled_out(&loc) {
            return o;
        }
        self.map(&value, loc)
    }

    fn sampled_out(&self, loc: &Locator) -> Option<RowOutcome> {
        let frac = self.source.sample?;
        let key = format!("{}\u{0}{}\u{0}{}", self.source.name, loc.file, loc.row);
        let x = hash::unit_interval(self.seed, key.as_bytes());
        (x >= frac).then(|| {
            let reason = DropReason::new(Rule::Sample, Some(x), format!("outside the seeded sample of {frac}"));
            RowOutcome::Unselected(self.entry(loc.clone(), reason))
        })
    }

    fn map(&self, row: &Value, loc: Locator) -> RowOutcome {
        let one = |r: Result<Content, DropReason>, loc: Locator| match r {
            Ok(c) => RowOutcome::Selected {
                docs: vec![Document::new(self.source.index, &self.source.name, loc, c)],
                failed: vec![],
            },
            Err(reason) => RowOutcome::Selected { docs: vec![], failed: vec![self.entry(loc, reason)] },
        };
        match &self.source.mapping {
            Mapping::Text { text } => one(text_field(row, text).map(Content::Text), loc),
            Mapping::Chat { messages, role, content, roles } => {
                one(chat(row, messages, role, content, roles), loc)
            }
            Mapping::Instruction { instruction, input, output, system, instances: None } => {
                let r = (|| {
                    let ins = text_field(row, instruction)?;
                    let inp = opt_text_field(row, input.as_deref())?;
                    let out = text_field(row, output)?;
                    let sys = opt_text_field(row, system.as_deref())?;
                    Ok(instruction_messages(sys, &ins, inp.as_deref(), out))
                })();
                one(r, loc)
            }
            Mapping::Instruction { instruction, input, output, system, instances: Some(list) } => {
                let head = (|| {
                    let ins = text_field(row, instruction)?;
                    let sys = opt_text_field(row, system.as_deref())?;
                    let items = match row.get(list) {
                        None | Some(Value::Null) => {
                            return Err(missing(list));
                        }
                        Some(Value::Array(a)) => a,
                        Some(other) => {
                            return Err(DropReason::new(
                                Rule::WrongType,
                                None,
                                format!("field `{list}` should be a list of instances, found {}", kind(other)),
                            ));
                        }
                    };
                    Ok((ins, sys, items))
                })();
                let (ins, sys, items) = match head {
                    Ok(h) => h,
                    Err(reason) => return one(Err(reason), loc),
                };
                if items.is_empty() {
                    let reason = DropReason::new(Rule::MissingField, Some(0.0), format!("field `{list}` holds no instances"));
                    return one(Err(reason), loc);
                }
                let mut docs = Vec::with_capacity(items.len());
                let mut failed = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let l = Locator { sub: Some(i as u32), ..loc.clone() };
                    let r = (|| {
                        if !item.is_object() {
                            return Err(DropReason::new(
                                Rule::WrongType,
                                None,
                                format!("instance {i} of `{list}` is {}, not an object", kind(item)),
                            ));
                        }
                        let inp = opt_text_field(item, input.as_deref())?;
                        let out = text_field(item, output)?;
                        Ok(instruction_messages(sys.clone(), &ins, inp.as_deref(), out))
                    })();
                    match r {
                        Ok(c) => docs.push(Document::new(self.source.index, &self.source.name, l, c)),
                        Err(reason) => failed.push(self.entry(l, reason)),
                    }
                }
                RowOutcome::Selected { docs, failed }
            }
        }
    }
}

fn parse_line(bytes: &[u8]) -> Result<Value, DropReason> {
    let s = std::str::from_utf8(bytes).map_err(|e| {
        DropReason::new(Rule::InvalidUtf8, None, format!("not valid UTF-8 at byte {}", e.valid_up_to()))
    })?;
    serde_json::from_str(s).map_err(|e| {
        let mut snippet: String = s.chars().take(60).collect();
        if snippet.len() < s.len() {
            snippet.push('…');
        }
        DropReason::new(Rule::Malformed, None, format!("invalid JSON ({e}): {snippet:?}"))
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn missing(field: &str) -> DropReason {
    DropReason::new(Rule::MissingField, None, format!("mapped field `{field}` is missing"))
}

/// A required text field, normalised.
fn text_field(row: &Value, field: &str) -> Result<String, DropReason> {
    match row.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(Value::String(s)) => Ok(normalize(s)),
        Some(other) => Err(DropReason::new(
            Rule::WrongType,
            None,
            format!("field `{field}` should be text, found {}", kind(other)),
        )),
    }
}

/// An optional text field: absent, null or empty is `None`.
fn opt_text_field(row: &Value, field: Option<&str>) -> Result<Option<String>, DropReason> {
    let Some(field) = field else { return Ok(None) };
    match row.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => text_field(row, field).map(|s| (!s.is_empty()).then_some(s)),
    }
}

/// An instruction record as a chat: the instruction (and its input, after a blank
/// line) is the user turn, the response the assistant turn.
fn instruction_messages(system: Option<String>, instruction: &str, input: Option<&str>, output: String) -> Content {
    use crate::recipe::Role;
    let mut ms = Vec::with_capacity(3);
    if let Some(s) = system {
        ms.push(Message { role: Role::System, content: s });
    }
    let user = match input {
        Some(i) if !instruction.is_empty() => format!("{instruction}\n\n{i}"),
        Some(i) => i.to_string(),
        None => instruction.to_string(),
    };
    ms.push(Message { role: Role::User, content: user });
    ms.push(Message { role: Role::Assistant, content: output });
    Content::Messages(ms)
}

fn chat(
    row: &Value,
    messages: &str,
    role: &str,
    content: &str,
    roles: &std::collections::BTreeMap<String, crate::recipe::Role>,
) -> Result<Content, DropReason> {
    let list = match row.get(messages) {
        None | Some(Value::Null) => return Err(missing(messages)),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(DropReason::new(
                Rule::WrongType,
                None,
                format!("field `{messages}` should be a list of messages, found {}", kind(other)),
            ));
        }
    };
    if list.is_empty() {
        return Err(DropReason::new(Rule::MissingField, Some(0.0), format!("field `{messages}` holds no messages")));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        if !m.is_object() {
            return Err(DropReason::new(
                Rule::WrongType,
                None,
                format!("message {i} of `{messages}` is {}, not an object", kind(m)),
            ));
        }
        let r = text_field(m, role).map_err(|mut e| {
            e.detail = format!("message {i}: {}", e.detail);
            e
        })?;
        let mapped = roles.get(r.as_str()).or_else(|| roles.get(r.to_ascii_lowercase().as_str())).copied();
        let Some(mapped) = mapped else {
            return Err(DropReason::new(
                Rule::UnknownRole,
                None,
                format!("message {i} has role `{r}`; map it with `roles = {{ {r} = \"assistant\" }}` (or user/system)"),
            ));
        };
        let c = text_field(m, content).map_err(|mut e| {
            e.detail = format!("message {i}: {}", e.detail);
            e
        })?;
        out.push(Message { role: mapped, content: c });
    }
    Ok(Content::Messages(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe;
    use serde_json::json;
    use std::path::Path;

    fn source(extra: &str) -> recipe::Recipe {
        let text = format!("[recipe]\nname = \"t\"\n[[source]]\nname = \"s\"\npath = \"x.jsonl\"\n{extra}\n");
        recipe::parse_in(Path::new("/r"), &text).unwrap()
    }

    fn run(r: &recipe::Recipe, v: Value) -> RowOutcome {
        let ctx = SourceCtx { source: &r.sources[0], seed: 1 };
        ctx.process(RawRecord { file: "x.jsonl".into(), row: 1, bytes: 0, body: Body::Value(v), first: false })
    }

    fn docs(o: RowOutcome) -> Vec<Document> {
        match o {
            RowOutcome::Selected { docs, failed } => {
                assert!(failed.is_empty(), "{failed:?}");
                docs
            }
            other => panic!("not selected: {other:?}"),
        }
    }

    #[test]
    fn alpaca_row_becomes_a_chat_with_input_after_instruction() {
        let r = source("format = \"instruction\"");
        let d = docs(run(&r, json!({"instruction": "Add.", "input": "2 and 3", "output": " 5 "})));
        let Content::Messages(ms) = &d[0].content else { panic!() };
        assert_eq!(ms[0].content, "Add.\n\n2 and 3");
        assert_eq!(ms[1].content, "5");
        assert_eq!(ms[1].role, crate::recipe::Role::Assistant);
    }

    #[test]
    fn dolly_mapping_and_missing_output() {
        let r = source("format = \"instruction\"\nfields = { input = \"context\", output = \"response\" }");
        let d = docs(run(&r, json!({"instruction": "Q", "context": "", "response": "A"})));
        let Content::Messages(ms) = &d[0].content else { panic!() };
        assert_eq!(ms[0].content, "Q", "an empty context adds nothing");
        match run(&r, json!({"instruction": "Q"})) {
            RowOutcome::Selected { docs, failed } => {
                assert!(docs.is_empty());
                assert_eq!(failed[0].reason.rule, Rule::MissingField);
                assert!(failed[0].reason.detail.contains("`response`"));
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn self_instruct_instances_yield_one_document_each() {
        let r = source("format = \"instruction\"\nfields = { instances = \"instances\" }");
        let o = run(&r, json!({"instruction": "Sort.", "instances": [
            {"input": "3 1", "output": "1 3"}, {"input": "b a"}, {"input": "", "output": "nothing"}]}));
        let RowOutcome::Selected { docs, failed } = o else { panic!() };
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].locator.sub, Some(0));
        assert_eq!(docs[1].locator.sub, Some(2));
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].locator.sub, Some(1));
        assert_ne!(docs[0].id, docs[1].id);
    }

    #[test]
    fn sharegpt_roles_map_and_unknown_roles_are_named() {
        let r = source("format = \"chat\"\nfields = { messages = \"conversations\", role = \"from\", content = \"value\" }");
        let d = docs(run(&r, json!({"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]})));
        let Content::Messages(ms) = &d[0].content else { panic!() };
        assert_eq!(ms[1].role, crate::recipe::Role::Assistant);
        let RowOutcome::Selected { failed, .. } =
            run(&r, json!({"conversations": [{"from": "narrator", "value": "x"}]}))
        else {
            panic!()
        };
        assert_eq!(failed[0].reason.rule, Rule::UnknownRole);
        assert!(failed[0].reason.detail.contains("narrator"));
    }

    #[test]
    fn where_and_sample_select_rows() {
        let r = source("format = \"text\"\nwhere = \"lang = 'en'\"");
        assert!(matches!(run(&r, json!({"text": "a", "lang": "de"})), RowOutcome::Unselected(_)));
        assert_eq!(docs(run(&r, json!({"text": "a", "lang": "en"}))).len(), 1);
        let r = source("format = \"text\"\nsample = 0.5");
        let ctx = SourceCtx { source: &r.sources[0], seed: 1 };
        let kept = (1..=2000)
            .filter(|row| {
                let rec = RawRecord { file: "x".into(), row: *row, bytes: 0, body: Body::Value(json!({"text": "t"})), first: false };
                matches!(ctx.process(rec), RowOutcome::Selected { .. })
            })
            .count();
        assert!((900..1100).contains(&kept), "seeded half: {kept}");
    }

    #[test]
    fn bad_lines_are_classified() {
        let r = source("format = \"text\"");
        let ctx = SourceCtx { source: &r.sources[0], seed: 1 };
        let bad = |b: &[u8]| match ctx.process(RawRecord { file: "x".into(), row: 1, bytes: 0, body: Body::Line(b.to_vec()), first: false }) {
            RowOutcome::Bad(e) => e.reason.rule,
            o => panic!("{o:?}"),
        };
        assert_eq!(bad(b"{\"text\": \"a"), Rule::Malformed);
        assert_eq!(bad(b"{\"text\": \"\xff\"}"), Rule::InvalidUtf8);
        assert_eq!(bad(b"[1, 2]"), Rule::Malformed);
        let RowOutcome::Selected { failed, .. } = run(&r, json!({"text": 3})) else { panic!() };
        assert_eq!(failed[0].reason.rule, Rule::WrongType);
    }
}
