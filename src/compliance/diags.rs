//! Typed codes: the verdicts, and the engine's own diagnostics (problems and notes that
//! are not policy rules). Each code has a stable id and a description; docs/compliance.md
//! has a heading per code.

use serde::Serialize;

use super::cfg::Severity;

/// The outcome for a source, a subset or the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Conditional,
    Reject,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Conditional => "conditional",
            Verdict::Reject => "reject",
        }
    }

    /// What a finding of this severity makes of the verdict, unresolved.
    pub fn of(s: Severity) -> Verdict {
        match s {
            Severity::Reject => Verdict::Reject,
            Severity::Conditional => Verdict::Conditional,
            Severity::Warn | Severity::Info => Verdict::Allow,
        }
    }
}

/// How much a diagnostic matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Note,
    Warning,
    Error,
}

/// The engine's own codes. `AssertionConflict` is judged like a policy rule (it can
/// make a verdict conditional); the others are diagnostics about the inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// A recipe assertion (`license`, `origin`, `generated_by`) contradicts what the
    /// catalog, the hub card or DPI says, and would change the facts used. Assertions are
    /// checked, not trusted: replacing a known fact takes an `override` with a reason.
    AssertionConflict,
    /// A `where` names column values that no catalogued subset lists: those rows'
    /// provenance is not catalogued. Judged like a conditional rule (a sign-off
    /// resolves it).
    UncataloguedRows,
    /// A `[[policy.signoff]]` that resolved nothing: the rule did not fire for it.
    SignoffUnused,
    /// A sign-off names a rule that is not conditional; only conditional rules can be
    /// signed off (a rejection needs the facts corrected, with an `override`).
    SignoffNotConditional,
    /// A sign-off names a rule the policy does not have.
    SignoffUnknownRule,
    /// A DPI collection file that could not be read (the rest is still used).
    DpiUnreadable,
    /// A source's `where` can select none of its catalogued subsets (nor other rows).
    WhereSelectsNothing,
    /// Hub cards were not consulted for some hub sources (offline, or local data).
    HubCardsOffline,
    /// A source names a dataset by its legacy bare id, resolved to its current id.
    HubIdRenamed,
}

impl Code {
    pub const ALL: [Code; 9] = [
        Code::AssertionConflict,
        Code::UncataloguedRows,
        Code::SignoffUnused,
        Code::SignoffNotConditional,
        Code::SignoffUnknownRule,
        Code::DpiUnreadable,
        Code::WhereSelectsNothing,
        Code::HubCardsOffline,
        Code::HubIdRenamed,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Code::AssertionConflict => "curate:assertion-conflict",
            Code::UncataloguedRows => "curate:uncatalogued-rows",
            Code::SignoffUnused => "curate:signoff-unused",
            Code::SignoffNotConditional => "curate:signoff-not-conditional",
            Code::SignoffUnknownRule => "curate:signoff-unknown-rule",
            Code::DpiUnreadable => "curate:dpi-unreadable",
            Code::WhereSelectsNothing => "curate:where-selects-nothing",
            Code::HubCardsOffline => "curate:hub-cards-offline",
            Code::HubIdRenamed => "curate:hub-id-renamed",
        }
    }

    pub fn level(self) -> Level {
        match self {
            Code::SignoffUnknownRule => Level::Error,
            Code::AssertionConflict
            | Code::UncataloguedRows
            | Code::SignoffUnused
            | Code::SignoffNotConditional
            | Code::DpiUnreadable
            | Code::WhereSelectsNothing => {
                Level::Warning
            }
            Code::HubCardsOffline | Code::HubIdRenamed => Level::Note,
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Code::AssertionConflict => {
                "a recipe assertion contradicts a lower fact source; use `override` with a `reason` to replace a known fact"
            }
            Code::UncataloguedRows => "the `where` selects rows whose column value no catalogued subset lists",
            Code::SignoffUnused => "a sign-off that resolved nothing (its rule did not fire for that source)",
            Code::SignoffNotConditional => "only conditional rules can be signed off; correct the facts instead",
            Code::SignoffUnknownRule => "a sign-off names a rule the policy does not have",
            Code::DpiUnreadable => "a file of the DPI collection could not be read and was skipped",
            Code::WhereSelectsNothing => "the `where` selects none of the source's catalogued subsets",
            Code::HubCardsOffline => "hub cards were not read for some hub sources: offline, or their data is local",
            Code::HubIdRenamed => "a legacy bare hub id was resolved to the dataset's current id (licenses/hub-renames.toml)",
        }
    }
}

/// One diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diag {
    pub code: Code,
    pub level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub message: String,
}

impl Diag {
    pub fn new(code: Code, source: Option<&str>, message: impl Into<String>) -> Diag {
        Diag { code, level: code.level(), source: source.map(String::from), message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_prefixed() {
        let ids: std::collections::BTreeSet<_> = Code::ALL.iter().map(|c| c.id()).collect();
        assert_eq!(ids.len(), Code::ALL.len());
        assert!(Code::ALL.iter().all(|c| c.id().starts_with("curate:")));
    }

    #[test]
    fn verdicts_order_by_severity() {
        assert!(Verdict::Reject > Verdict::Conditional && Verdict::Conditional > Verdict::Allow);
        assert_eq!(Verdict::of(Severity::Warn), Verdict::Allow);
    }
}
