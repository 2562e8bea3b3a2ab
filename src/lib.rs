//! curate: build fine-tuning data that you can prove you are allowed to use.
//!
//! A recipe ([`recipe`]) names local datasets; a build ([`build`]) plans tasks that read them
//! ([`source`]), maps and normalises each record into a canonical [`document`], applies
//! the recipe's selection and filters and exact dedup ([`stages`]), and writes the kept
//! documents, a ledger of every dropped record ([`ledger`]) and a report ([`report`]),
//! atomically ([`output`]).
//!
//! The command-line interface is in [`cli`]; `main.rs` only calls it.

pub mod build;
pub mod cli;
pub mod compliance;
pub mod counters;
pub mod document;
pub mod fetch;
pub mod hash;
pub mod histogram;
pub mod inspect;
pub mod ledger;
pub mod output;
pub mod pack;
pub mod recipe;
pub mod report;
pub mod report_html;
pub mod select;
pub mod shards;
pub mod source;
pub mod stages;
pub mod svg;
pub mod tokenize;
pub mod train;

/// Test helpers shared by unit tests.
#[cfg(test)]
pub(crate) mod testdata {
    /// A path in the project's shared data folder beside the checkout; see
    /// `tests/common` for how tests that need it are marked and run.
    pub fn shared_data(rel: &str) -> std::path::PathBuf {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel);
        assert!(p.exists(), "`{}` is missing: this test needs the project's shared data folder beside the checkout", p.display());
        p
    }
}
