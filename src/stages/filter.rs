//! Filters: per-document rules from `[filters]`. Each looks at one normalised document
//! and keeps it or names the rule that drops it, with the measured value. The first
//! rule that fails decides, in the order below (cheapest first), so a ledger entry
//! always holds one clear reason.

use crate::document::Document;
use crate::ledger::{DropReason, Rule};
use crate::recipe::Filters;

/// `None` keeps the document.
pub fn check(doc: &Document, f: &Filters) -> Option<DropReason> {
    if is_empty(doc) {
        return Some(DropReason::new(Rule::Empty, Some(doc.chars as f64), "no text (or no response) after normalisation"));
    }
    let chars = doc.chars as f64;
    let words = doc.words as f64;
    if let Some(min) = f.min_chars
        && doc.chars < min
    {
        return Some(DropReason::new(Rule::MinChars, Some(chars), format!("{} characters < min_chars {min}", doc.chars)));
    }
    if let Some(max) = f.max_chars
        && doc.chars > max
    {
        return Some(DropReason::new(Rule::MaxChars, Some(chars), format!("{} characters > max_chars {max}", doc.chars)));
    }
    if let Some(min) = f.min_words
        && doc.words < min
    {
        return Some(DropReason::new(Rule::MinWords, Some(words), format!("{} words < min_words {min}", doc.words)));
    }
    if let Some(max) = f.max_words
        && doc.words > max
    {
        return Some(DropReason::new(Rule::MaxWords, Some(words), format!("{} words > max_words {max}", doc.words)));
    }
    for re in &f.drop_regex {
        let mut hit = None;
        doc.content.for_each_text(|t| {
            if hit.is_none()
                && let Some(m) = re.find(t)
            {
                hit = Some(m.as_str().chars().take(80).collect::<String>());
            }
        });
        if let Some(m) = hit {
            return Some(DropReason::new(Rule::DropRegex, None, format!("`{}` matched {m:?}", re.as_str())));
        }
    }
    if !f.keep_regex.is_empty() {
        let mut any = false;
        doc.content.for_each_text(|t| any = any || f.keep_regex.iter().any(|re| re.is_match(t)));
        if !any {
            let pats: Vec<_> = f.keep_regex.iter().map(|r| format!("`{}`", r.as_str())).collect();
            return Some(DropReason::new(Rule::KeepRegex, None, format!("matched none of {}", pats.join(", "))));
        }
    }
    None
}

/// Empty text, or a chat with no user/assistant text or an empty final response: such
/// a document trains nothing.
fn is_empty(doc: &Document) -> bool {
    use crate::document::Content;
    use crate::recipe::Role;
    match &doc.content {
        Content::Text(t) => t.is_empty(),
        Content::Messages(ms) => {
            let answered = ms.iter().any(|m| m.role == Role::Assistant && !m.content.is_empty());
            let last_empty = ms.last().is_some_and(|m| m.role == Role::Assistant && m.content.is_empty());
            !answered || last_empty
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{Content, Locator, Message};
    use crate::recipe::Role;

    fn doc(c: Content) -> Document {
        Document::new(0, "s", Locator { file: "f".into(), row: 1, sub: None }, c)
    }
    fn text(t: &str) -> Document {
        doc(Content::Text(t.into()))
    }
    fn filters(f: impl FnOnce(&mut Filters)) -> Filters {
        let mut x = Filters::default();
        f(&mut x);
        x
    }

    #[test]
    fn length_bounds_report_the_measured_value() {
        let f = filters(|f| {
            f.min_chars = Some(5);
            f.max_words = Some(3);
        });
        let r = check(&text("abc"), &f).unwrap();
        assert_eq!((r.rule, r.value), (Rule::MinChars, Some(3.0)));
        let r = check(&text("one two three four"), &f).unwrap();
        assert_eq!((r.rule, r.value), (Rule::MaxWords, Some(4.0)));
        assert!(check(&text("one two"), &f).is_none());
    }

    #[test]
    fn empty_text_and_unanswered_chats() {
        let f = Filters::default();
        assert_eq!(check(&text(""), &f).unwrap().rule, Rule::Empty);
        let unanswered = doc(Content::Messages(vec![
            Message { role: Role::User, content: "q".into() },
            Message { role: Role::Assistant, content: "".into() },
        ]));
        assert_eq!(check(&unanswered, &f).unwrap().rule, Rule::Empty);
    }

    #[test]
    fn regexes_drop_and_keep() {
        let f = filters(|f| f.drop_regex = vec![regex::Regex::new("(?i)as an ai language model").unwrap()]);
        let r = check(&text("Well, as an AI language model I cannot"), &f).unwrap();
        assert_eq!(r.rule, Rule::DropRegex);
        assert!(r.detail.contains("as an AI language model"));
        let f = filters(|f| f.keep_regex = vec![regex::Regex::new(r"\d").unwrap()]);
        assert_eq!(check(&text("no digits"), &f).unwrap().rule, Rule::KeepRegex);
        assert!(check(&text("4 digits"), &f).is_none());
    }
}
