//! Local sources: finding a source's files and reading them into raw records.

pub mod files;
pub mod read;
