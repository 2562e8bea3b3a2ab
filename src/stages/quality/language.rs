//! Language identification with `whatlang` (trigram profiles over 69 languages,
//! offline, pure Rust).
//!
//! A document is dropped only when it is confidently in a language that is not
//! allowed: the detected language is outside `allowed` and whatlang's confidence is at
//! least `min_confidence`. A document whose language cannot be told (too short, no
//! letters, or low confidence) is kept: fine-tuning data is full of short prompts, and
//! a guess is not evidence. The default `min_confidence` of 0.5 is this project's
//! choice, not a published threshold; whatlang itself calls a detection "reliable"
//! above 0.9 (`Info::is_reliable`).
//!
//! Only the first `sample_bytes` of a text are read (4,000 by default, cut at a
//! character boundary): whatlang's cost grows with the text, and a few thousand
//! characters settle the language of all but mixed-language documents.

pub use whatlang::Lang;

use super::{QualityDrop, fmt_num};
use crate::ledger::Rule;

/// Language settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LanguageConfig {
    pub allowed: Vec<Lang>,
    pub min_confidence: f64,
    /// Texts with fewer characters than this are not judged.
    pub min_chars: usize,
    /// Bytes read from the start of a text.
    pub sample_bytes: usize,
}

impl Default for LanguageConfig {
    fn default() -> Self {
        LanguageConfig { allowed: vec![Lang::Eng], min_confidence: 0.5, min_chars: 20, sample_bytes: 4000 }
    }
}

impl LanguageConfig {
    /// Settings allowing the languages with these ISO 639-3 codes (`eng`, `deu`, …).
    pub fn from_codes<S: AsRef<str>>(codes: &[S], min_confidence: f64) -> Result<LanguageConfig, String> {
        let mut allowed = Vec::new();
        for c in codes {
            let c = c.as_ref();
            let l = Lang::from_code(c)
                .ok_or_else(|| format!("`{c}` is not an ISO 639-3 code whatlang knows (e.g. `eng`, `fra`, `deu`)"))?;
            allowed.push(l);
        }
        if !(0.0..=1.0).contains(&min_confidence) {
            return Err(format!("`min_confidence` must be between 0 and 1, not {min_confidence}"));
        }
        Ok(LanguageConfig { allowed, min_confidence, ..Default::default() })
    }
}

/// A detected language and whatlang's confidence in it (0 to 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detected {
    pub lang: Lang,
    pub confidence: f64,
}

/// The language of `text`, when whatlang can tell.
pub fn detect(text: &str) -> Option<Detected> {
    whatlang::detect(text).map(|i| Detected { lang: i.lang(), confidence: i.confidence() })
}

/// `None` keeps the document.
pub fn check_language(text: &str, cfg: &LanguageConfig) -> Option<QualityDrop> {
    let mut cut = cfg.sample_bytes.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let sample = &text[..cut];
    if sample.chars().count() < cfg.min_chars {
        return None;
    }
    let d = detect(sample)?;
    if cfg.allowed.contains(&d.lang) || d.confidence < cfg.min_confidence {
        return None;
    }
    let allowed: Vec<&str> = cfg.allowed.iter().map(|l| l.code()).collect();
    Some(QualityDrop::new(
        Rule::Language,
        d.confidence,
        cfg.min_confidence,
        format!(
            "detected {} ({}) with confidence {}; allowed: {}",
            d.lang.code(),
            d.lang.eng_name(),
            fmt_num(d.confidence),
            allowed.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EN: &str = "The quick brown fox jumps over the lazy dog while the farmer watches from the porch.";
    const DE: &str = "Der schnelle braune Fuchs springt über den faulen Hund, während der Bauer von der Veranda zusieht.";
    const FR: &str = "Le renard brun rapide saute par-dessus le chien paresseux pendant que le fermier regarde depuis le porche.";

    #[test]
    fn keeps_allowed_and_drops_confident_others() {
        let cfg = LanguageConfig::default();
        assert_eq!(check_language(EN, &cfg), None);
        let d = check_language(DE, &cfg).unwrap();
        assert_eq!(d.rule, Rule::Language);
        assert!(d.detail.starts_with("detected deu (German)"), "{}", d.detail);
        assert!(d.value >= 0.5);
        assert_eq!(check_language(FR, &cfg).unwrap().rule, Rule::Language);
        let both = LanguageConfig::from_codes(&["eng", "deu"], 0.5).unwrap();
        assert_eq!(check_language(DE, &both), None);
    }

    #[test]
    fn uncertain_or_short_text_is_kept() {
        let cfg = LanguageConfig::default();
        assert_eq!(check_language("Danke!", &cfg), None, "too short to judge");
        assert_eq!(check_language("12345 67890 = 2 + 2 * 3 ### ----", &cfg), None, "no letters");
        let strict = LanguageConfig { min_confidence: 1.01, ..Default::default() };
        assert_eq!(check_language(DE, &strict), None, "below the confidence needed to act");
    }

    #[test]
    fn only_the_start_is_read() {
        let cfg = LanguageConfig { sample_bytes: 60, ..Default::default() };
        let mixed = format!("{EN} {}", DE.repeat(20));
        assert_eq!(check_language(&mixed, &cfg), None);
        assert!(check_language(&mixed, &LanguageConfig { sample_bytes: 100_000, ..cfg }).is_some());
        // A cut inside a multi-byte character moves back to its start.
        let cfg = LanguageConfig { sample_bytes: 5, min_chars: 1, ..Default::default() };
        assert_eq!(check_language("déjà vu", &cfg), None);
    }

    #[test]
    fn codes_are_checked() {
        assert!(LanguageConfig::from_codes(&["english"], 0.5).unwrap_err().contains("`english`"));
        assert!(LanguageConfig::from_codes(&["eng"], 2.0).is_err());
        assert_eq!(detect(EN).unwrap().lang, Lang::Eng);
    }
}
