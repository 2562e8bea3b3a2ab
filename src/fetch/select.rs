//! Which files of a hub dataset a source reads, from its `config` and `split`.
//!
//! In order:
//! 1. the card's `configs:` list (`config_name`, `data_files` with `split` and `path`
//!    globs), as the `datasets` library reads it;
//! 2. without one, the hub's naming conventions: a split is named by a path part
//!    (`train`, `training`; `validation`, `valid`, `val`, `dev`; `test`, `testing`,
//!    `eval`) in a folder or file name; files named by no split are all `train`;
//! 3. with no loadable file at all (a dataset built by a script), the parquet
//!    conversion on `refs/convert/parquet`: `{config}/{split}/*.parquet`, or
//!    `{config}/partial-{split}/*.parquet`, or `{config}/*-{split}(-NNNNN-of-NNNNN).parquet`.
//!
//! A source without `split` reads `train`.

use std::path::Path;

use glob::{MatchOptions, Pattern};
use serde_json::Value;

use super::hub::{RemoteFile, RepoInfo};

const SPLITS: &[(&str, &[&str])] = &[
    ("train", &["train", "training"]),
    ("validation", &["validation", "valid", "val", "dev"]),
    ("test", &["test", "testing", "eval", "evaluation"]),
];

/// A file `curate` can read, and not a card or a script.
pub fn loadable(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.starts_with('.') || path.split('/').any(|p| p.starts_with('.')) {
        return false;
    }
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".md") {
        return false;
    }
    crate::source::files::reader_for(Path::new(name)).is_some()
}

/// Files for (config, split) from the repository's own files; `Ok(None)` when it
/// holds nothing loadable (the caller then tries the parquet conversion).
pub fn select(info: &RepoInfo, config: Option<&str>, split: Option<&str>) -> Result<Option<Vec<RemoteFile>>, String> {
    if !info.configs.is_empty() {
        return from_configs(info, config, split).map(Some);
    }
    let files: Vec<&RemoteFile> = info.files.iter().filter(|f| loadable(&f.path)).collect();
    if files.is_empty() {
        return Ok(None);
    }
    if let Some(c) = config.filter(|c| *c != "default") {
        return Err(format!("config `{c}` is not defined: the card lists no configs (its only config is `default`)"));
    }
    let want = split.unwrap_or("train");
    let named: Vec<(&RemoteFile, Option<&str>)> = files.iter().map(|f| (*f, split_of(&f.path))).collect();
    let any_named = named.iter().any(|(_, s)| s.is_some());
    let chosen: Vec<RemoteFile> = named
        .iter()
        .filter(|(_, s)| match s {
            Some(s) => *s == canonical_split(want),
            None => !any_named && want == "train",
        })
        .map(|(f, _)| (*f).clone())
        .collect();
    if chosen.is_empty() {
        let mut have: Vec<&str> = named.iter().filter_map(|(_, s)| *s).collect();
        if !any_named {
            have.push("train");
        }
        have.sort();
        have.dedup();
        return Err(format!("no files for split `{want}`; its splits: {}", have.join(", ")));
    }
    Ok(Some(chosen))
}

fn canonical_split(s: &str) -> &str {
    SPLITS.iter().find(|(_, names)| names.contains(&s)).map(|(c, _)| *c).unwrap_or(s)
}

/// The split a conventional path names, by its parts split at `/ - _ .` and digits.
fn split_of(path: &str) -> Option<&'static str> {
    let tokens = path.split(|c: char| matches!(c, '/' | '-' | '_' | '.' | ' ') || c.is_ascii_digit());
    for t in tokens {
        let t = t.to_ascii_lowercase();
        if let Some((c, _)) = SPLITS.iter().find(|(_, names)| names.contains(&t.as_str())) {
            return Some(c);
        }
    }
    None
}

fn glob_options() -> MatchOptions {
    MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: true }
}

/// `configs:` → (name, default?, [(split, patterns)]).
type ConfigEntry = (String, bool, Vec<(String, Vec<String>)>);

fn parse_configs(configs: &[Value]) -> Result<Vec<ConfigEntry>, String> {
    let mut out = Vec::new();
    for c in configs {
        let name = c.get("config_name").and_then(Value::as_str).unwrap_or("default").to_string();
        let default = c.get("default").and_then(Value::as_bool).unwrap_or(false);
        let patterns = |v: &Value| -> Vec<String> {
            match v {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
                _ => vec![],
            }
        };
        let splits = match c.get("data_files") {
            Some(Value::String(s)) => vec![("train".to_string(), vec![s.clone()])],
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => vec![("train".to_string(), patterns(&Value::Array(a.clone())))],
            Some(Value::Array(a)) => a
                .iter()
                .map(|e| {
                    let split = e.get("split").and_then(Value::as_str).unwrap_or("train").to_string();
                    (split, e.get("path").map(patterns).unwrap_or_default())
                })
                .collect(),
            _ => return Err(format!("the card's config `{name}` has no usable `data_files`")),
        };
        out.push((name, default, splits));
    }
    Ok(out)
}

fn from_configs(info: &RepoInfo, config: Option<&str>, split: Option<&str>) -> Result<Vec<RemoteFile>, String> {
    let configs = parse_configs(&info.configs)?;
    let names: Vec<&str> = configs.iter().map(|c| c.0.as_str()).collect();
    let chosen = match config {
        Some(c) => configs.iter().find(|x| x.0 == c).ok_or_else(|| format!("config `{c}` is not defined; its configs: {}", names.join(", ")))?,
        None => configs
            .iter()
            .find(|x| x.1)
            .or_else(|| configs.iter().find(|x| x.0 == "default"))
            .or_else(|| (configs.len() == 1).then(|| &configs[0]))
            .ok_or_else(|| format!("it has several configs and none is the default; set `config` to one of: {}", names.join(", ")))?,
    };
    let want = split.unwrap_or("train");
    let splits: Vec<&str> = chosen.2.iter().map(|s| s.0.as_str()).collect();
    let (_, pats) = chosen
        .2
        .iter()
        .find(|s| s.0 == want)
        .ok_or_else(|| format!("config `{}` has no split `{want}`; its splits: {}", chosen.0, splits.join(", ")))?;
    let mut compiled = Vec::new();
    for p in pats {
        compiled.push(Pattern::new(p).map_err(|e| format!("the card's pattern `{p}` is not a glob: {e}"))?);
    }
    let files: Vec<RemoteFile> = info
        .files
        .iter()
        .filter(|f| compiled.iter().any(|p| p.matches_with(&f.path, glob_options())))
        .cloned()
        .collect();
    if files.is_empty() {
        return Err(format!("config `{}` split `{want}` matches no files (patterns: {})", chosen.0, pats.join(", ")));
    }
    Ok(files)
}

/// Files of the parquet conversion for (config, split).
pub fn select_parquet(info: &RepoInfo, config: Option<&str>, split: Option<&str>) -> Result<Vec<RemoteFile>, String> {
    let parquet: Vec<&RemoteFile> = info.files.iter().filter(|f| f.path.ends_with(".parquet")).collect();
    let mut configs: Vec<&str> = parquet.iter().filter_map(|f| f.path.split_once('/').map(|(c, _)| c)).collect();
    configs.sort();
    configs.dedup();
    if configs.is_empty() {
        return Err("its parquet conversion holds no files".into());
    }
    let config = match config {
        Some(c) if configs.contains(&c) => c,
        Some(c) => return Err(format!("its parquet conversion has no config `{c}`; its configs: {}", configs.join(", "))),
        None if configs.contains(&"default") => "default",
        None if configs.len() == 1 => configs[0],
        None => return Err(format!("it has several configs; set `config` to one of: {}", configs.join(", "))),
    };
    let want = split.unwrap_or("train");
    let partial = format!("partial-{want}");
    let suffix = format!("-{want}.parquet");
    let mut splits = Vec::new();
    let chosen: Vec<RemoteFile> = parquet
        .iter()
        .filter(|f| {
            let Some(rest) = f.path.strip_prefix(config).and_then(|r| r.strip_prefix('/')) else { return false };
            match rest.split_once('/') {
                Some((dir, _)) => {
                    splits.push(dir.trim_start_matches("partial-").to_string());
                    dir == want || dir == partial
                }
                None => {
                    let stem = rest.trim_end_matches(".parquet");
                    let base = strip_shard(stem);
                    if let Some((_, s)) = base.rsplit_once('-') {
                        splits.push(s.to_string());
                    }
                    rest.ends_with(&suffix) || base.ends_with(&format!("-{want}"))
                }
            }
        })
        .map(|f| (*f).clone())
        .collect();
    if chosen.is_empty() {
        splits.sort();
        splits.dedup();
        return Err(format!("its parquet conversion of config `{config}` has no split `{want}`; its splits: {}", splits.join(", ")));
    }
    Ok(chosen)
}

/// `name-train-00000-of-00002` → `name-train`.
fn strip_shard(stem: &str) -> &str {
    let parts: Vec<&str> = stem.rsplitn(4, '-').collect();
    if parts.len() == 4 && parts[1] == "of" && parts[0].bytes().all(|b| b.is_ascii_digit()) && parts[2].bytes().all(|b| b.is_ascii_digit()) {
        parts[3]
    } else {
        stem
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::hub::CardFacts;
    use serde_json::json;

    fn info(paths: &[&str], configs: Vec<Value>) -> RepoInfo {
        RepoInfo {
            commit: "0".repeat(40),
            card: CardFacts::default(),
            configs,
            files: paths.iter().map(|p| RemoteFile { path: p.to_string(), size: None, sha256: None, git_oid: None }).collect(),
        }
    }
    fn paths(v: Vec<RemoteFile>) -> Vec<String> {
        v.into_iter().map(|f| f.path).collect()
    }

    #[test]
    fn conventions_pick_splits() {
        let i = info(&["README.md", ".gitattributes", "data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet", "data/test-00000-of-00001.parquet"], vec![]);
        assert_eq!(paths(select(&i, None, None).unwrap().unwrap()).len(), 2);
        assert_eq!(paths(select(&i, None, Some("test")).unwrap().unwrap()), vec!["data/test-00000-of-00001.parquet"]);
        assert!(select(&i, None, Some("validation")).unwrap_err().contains("its splits: test, train"));
        let single = info(&["dolly.jsonl", "README.md"], vec![]);
        assert_eq!(paths(select(&single, None, None).unwrap().unwrap()), vec!["dolly.jsonl"]);
        let script = info(&["README.md", "loader.py"], vec![]);
        assert!(select(&script, None, None).unwrap().is_none());
    }

    #[test]
    fn card_configs_win() {
        let c = vec![
            json!({"config_name": "en", "default": true, "data_files": [{"split": "train", "path": "en/*.jsonl"}]}),
            json!({"config_name": "de", "data_files": [{"split": "train", "path": ["de/a.jsonl"]}]}),
        ];
        let i = info(&["en/a.jsonl", "en/b.jsonl", "de/a.jsonl", "de/b.jsonl"], c);
        assert_eq!(paths(select(&i, None, None).unwrap().unwrap()), vec!["en/a.jsonl", "en/b.jsonl"]);
        assert_eq!(paths(select(&i, Some("de"), Some("train")).unwrap().unwrap()), vec!["de/a.jsonl"]);
        assert!(select(&i, Some("fr"), None).unwrap_err().contains("its configs: en, de"));
    }

    #[test]
    fn parquet_conversion_layouts() {
        let i = info(&["default/train/0000.parquet", "default/train/0001.parquet", "default/test/0000.parquet", "other/partial-train/0000.parquet"], vec![]);
        assert_eq!(select_parquet(&i, None, None).unwrap().len(), 2);
        assert_eq!(paths(select_parquet(&i, Some("other"), Some("train")).unwrap()), vec!["other/partial-train/0000.parquet"]);
        let old = info(&["plain_text/ds-train-00000-of-00002.parquet", "plain_text/ds-train-00001-of-00002.parquet", "plain_text/ds-test.parquet"], vec![]);
        assert_eq!(select_parquet(&old, None, None).unwrap().len(), 2);
        assert_eq!(select_parquet(&old, None, Some("test")).unwrap().len(), 1);
    }
}
