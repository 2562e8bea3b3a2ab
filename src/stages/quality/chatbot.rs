//! A detector of undeclared chatbot output: phrases that assistants trained on
//! ChatGPT-style data produce and people rarely write ("As an AI language model",
//! "I'm sorry, but I cannot", an assistant naming itself ChatGPT or saying OpenAI
//! trained it).
//!
//! A match is evidence, not proof: quoted transcripts and articles about chatbots hold
//! these phrases too. That is why the phrases are narrow (first person, the canned
//! wording) and why the report is meant to show a rate per source: a source declared
//! human-written whose documents trip this often deserves a look in the compliance
//! section, whatever happens to single documents.
//!
//! Apostrophes may be straight or curly, spacing and case are free.

use std::sync::LazyLock;

use regex::Regex;

use super::QualityDrop;
use crate::document::Content;
use crate::ledger::Rule;

/// The phrase families, each with a label for reports and its pattern.
const PHRASES: &[(&str, &str)] = &[
    ("as an AI language model", r"\bas an ai language model\b"),
    ("as a language model", r"\bas a (?:large |helpful )?language model\b"),
    ("as an AI, I", r"\bas an ai(?: model| assistant| chatbot)?,\s+i\b"),
    ("I am an AI", r"\bi(?:'m| am) (?:just |only )?an ai(?: language model| model| assistant| chatbot)?\b"),
    ("I'm sorry, but I cannot", r"\bi(?:'m| am) sorry,? but i (?:cannot|can't|am not able to|am unable to|won't)\b"),
    ("I apologize, but I cannot", r"\bi apologi[sz]e,? but i (?:cannot|can't|am not able to|am unable to)\b"),
    ("I cannot fulfill that request", r"\bi (?:cannot|can't) (?:fulfill|comply with|assist with|help with) (?:that|this|your) request\b"),
    ("knowledge cutoff", r"\b(?:as of my (?:last )?(?:knowledge (?:update|cutoff)|training (?:data|cutoff))|my knowledge cutoff)\b"),
    ("self-identifies as ChatGPT", r"\b(?:i am|i'm|this is) (?:chatgpt|gpt-?3\.5|gpt-?4)\b"),
    ("trained by OpenAI", r"\b(?:i am|i'm|i was|as an ai|as a language model)\b[^.!?\n]{0,40}\b(?:trained|developed|created|built|made) by openai\b"),
    ("OpenAI's policy", r"\bopenai's (?:content |usage |use case )?polic(?:y|ies)\b"),
];

struct Detector {
    any: Regex,
    each: Vec<(&'static str, Regex)>,
}

static DETECTOR: LazyLock<Detector> = LazyLock::new(|| {
    let fix = |p: &str| format!("(?i){}", p.replace('\'', "['’]").replace(' ', r"\s+"));
    let any = PHRASES.iter().map(|(_, p)| format!("(?:{})", fix(p))).collect::<Vec<_>>().join("|");
    Detector {
        any: Regex::new(&any).expect("phrase patterns"),
        each: PHRASES.iter().map(|(l, p)| (*l, Regex::new(&fix(p)).expect("phrase pattern"))).collect(),
    }
});

/// A chatbot phrase found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiPhrase {
    /// The phrase family, e.g. "as an AI language model".
    pub label: &'static str,
    /// The words as they appear in the text.
    pub matched: String,
    /// Byte offset in the text searched.
    pub start: usize,
}

/// The first chatbot phrase in `text`.
pub fn find_ai_phrase(text: &str) -> Option<AiPhrase> {
    let d = &*DETECTOR;
    let m = d.any.find(text)?;
    let label = d.each.iter().find(|(_, re)| re.find(&text[m.start()..]).is_some_and(|x| x.start() == 0)).map(|(l, _)| *l)?;
    Some(AiPhrase { label, matched: m.as_str().to_string(), start: m.start() })
}

/// `None` keeps the document. Every message of a chat is searched, the user's too
/// (a pasted chatbot answer is still chatbot output).
pub fn check_ai_phrases(content: &Content) -> Option<QualityDrop> {
    let mut hit = None;
    content.for_each_text(|t| {
        if hit.is_none() {
            hit = find_ai_phrase(t);
        }
    });
    let h = hit?;
    Some(QualityDrop::new(
        Rule::AiPhrases,
        1.0,
        0.0,
        format!("chatbot phrase ({}): {:?}", h.label, h.matched.chars().take(120).collect::<String>()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_canned_phrases_in_any_case_and_apostrophe() {
        let cases = [
            ("As an AI language model, I do not have opinions.", "as an AI language model"),
            ("I’m sorry, but I can’t help with that.", "I'm sorry, but I cannot"),
            ("I am sorry but I am unable to browse the web.", "I'm sorry, but I cannot"),
            ("As a large language model, I cannot feel.", "as a language model"),
            ("As an AI, I   don't have a body.", "as an AI, I"),
            ("Well, I'm just an AI assistant.", "I am an AI"),
            ("As of my last knowledge update in 2021, the law said so.", "knowledge cutoff"),
            ("Hello! I am ChatGPT, how can I help?", "self-identifies as ChatGPT"),
            ("I am a language model trained by OpenAI.", "trained by OpenAI"),
            ("That would violate OpenAI's content policy.", "OpenAI's policy"),
            ("I apologize, but I cannot provide medical advice.", "I apologize, but I cannot"),
            ("Sorry. I can't fulfill that request.", "I cannot fulfill that request"),
        ];
        for (text, label) in cases {
            let h = find_ai_phrase(text).unwrap_or_else(|| panic!("missed: {text}"));
            assert_eq!(h.label, label, "{text}");
            assert_eq!(&text[h.start..h.start + h.matched.len()], h.matched);
        }
    }

    #[test]
    fn ordinary_text_about_chatbots_is_not_flagged() {
        let clean = [
            "ChatGPT, developed by OpenAI, was released in November 2022.",
            "OpenAI announced a new model today.",
            "I'm sorry for the delay, but the train was late.",
            "The language model was trained on books.",
            "As an aid to memory, I wrote it down.",
            "Models such as GPT-4, developed by OpenAI, are large.",
            "I am an avid reader of science fiction.",
        ];
        for t in clean {
            assert_eq!(find_ai_phrase(t), None, "{t}");
        }
    }

    #[test]
    fn chats_are_searched_in_every_message() {
        use crate::document::Message;
        use crate::recipe::Role;
        let c = Content::Messages(vec![
            Message { role: Role::User, content: "What is your name?".into() },
            Message { role: Role::Assistant, content: "As an AI language model, I have no name.".into() },
        ]);
        let d = check_ai_phrases(&c).unwrap();
        assert_eq!(d.rule, Rule::AiPhrases);
        assert!(d.detail.contains("as an AI language model"), "{}", d.detail);
        assert_eq!(check_ai_phrases(&Content::Text("Plain words.".into())), None);
    }
}
