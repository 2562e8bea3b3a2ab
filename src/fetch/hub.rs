//! The hub's HTTP API, as far as `curate` uses it:
//!
//! - `GET {endpoint}/api/{datasets|models}/{id}/revision/{revision}?blobs=true`: the
//!   commit a revision points at, the card's YAML (`cardData`), the tags, and every
//!   file with its size and, for large (LFS) files, its sha256;
//! - `GET {endpoint}/{datasets/}{id}/resolve/{commit}/{path}`: a file, sent directly
//!   or through a 302 to the storage host (see `download`).
//!
//! Revisions with a `/` (`refs/convert/parquet`) are percent-encoded in the path.

use serde_json::Value;
use url::Url;

use super::cache::{RepoKind, is_hex, safe_path};
use super::http::{Http, HttpError};

/// Metadata answers larger than this are refused (a repository listing with tens of
/// thousands of files is a few MB).
pub const METADATA_LIMIT: u64 = 64 << 20;

/// The branch the hub's parquet conversion of a dataset lives on.
pub const PARQUET_REVISION: &str = "refs/convert/parquet";

/// One file at a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub path: String,
    pub size: Option<u64>,
    /// Known for LFS files.
    pub sha256: Option<String>,
    /// The git blob id, for files stored in git itself.
    pub git_oid: Option<String>,
}

/// What the dataset card says, as the compliance engine reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardFacts {
    pub license: Option<String>,
    /// `tags`, `annotations_creators` and `language_creators`, sorted, once each.
    pub tags: Vec<String>,
    pub source_datasets: Vec<String>,
}

/// A repository at a revision.
#[derive(Debug, Clone)]
pub struct RepoInfo {
    pub commit: String,
    pub card: CardFacts,
    /// `cardData.configs`, for choosing files by config and split.
    pub configs: Vec<Value>,
    pub files: Vec<RemoteFile>,
}

pub struct Hub<'a> {
    pub http: &'a Http,
    pub endpoint: Url,
}

/// Percent-encode one path segment (everything but unreserved characters).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encode a `/`-separated file path, keeping its separators.
pub fn encode_path(p: &str) -> String {
    p.split('/').map(encode_segment).collect::<Vec<_>>().join("/")
}

/// Why the hub refused or failed, worded for the user.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{what} needs a token: it is gated or private\nhint: accept its terms on the hub, then set `HF_TOKEN` to a token of an account with access")]
    NeedsToken { what: String },
    #[error("{what} refused the token: the account has no access\nhint: accept the dataset's terms on the hub with the account the token belongs to")]
    Forbidden { what: String },
    #[error("{what} was not found on the hub{extra}")]
    NotFound { what: String, extra: &'static str },
    #[error("{what}: {err}")]
    Http { what: String, err: HttpError },
    #[error("{what}: the hub's answer is not usable: {why}")]
    Bad { what: String, why: String },
}

impl<'a> Hub<'a> {
    fn base(&self) -> String {
        self.endpoint.as_str().trim_end_matches('/').to_string()
    }

    pub fn info_url(&self, kind: RepoKind, id: &str, revision: &str) -> String {
        format!("{}/api/{}/{}/revision/{}?blobs=true", self.base(), kind.api_segment(), id, encode_segment(revision))
    }

    pub fn resolve_url(&self, kind: RepoKind, id: &str, commit: &str, path: &str) -> String {
        format!("{}/{}{}/resolve/{}/{}", self.base(), kind.url_prefix(), id, commit, encode_path(path))
    }

    /// The commit, card and files of a repository at a revision.
    pub fn info(&self, kind: RepoKind, id: &str, revision: &str) -> Result<RepoInfo, HubError> {
        let what = match kind {
            RepoKind::Dataset => format!("dataset `{id}` at revision `{revision}`"),
            RepoKind::Model => format!("model `{id}` at revision `{revision}`"),
        };
        let v = self.http.get_json(&self.info_url(kind, id, revision), METADATA_LIMIT).map_err(|err| match err.status() {
            Some(401) if !self.http.has_token() => HubError::NeedsToken { what: what.clone() },
            Some(401) | Some(403) => HubError::Forbidden { what: what.clone() },
            Some(404) => HubError::NotFound {
                what: what.clone(),
                extra: if self.http.has_token() { "" } else { " (a private repository needs `HF_TOKEN`)" },
            },
            _ => HubError::Http { what: what.clone(), err },
        })?;
        parse_info(&v).map_err(|why| HubError::Bad { what, why })
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
        _ => vec![],
    }
}

/// Read the info JSON, refusing anything that could misdirect a write.
pub fn parse_info(v: &Value) -> Result<RepoInfo, String> {
    let commit = v.get("sha").and_then(Value::as_str).ok_or("no `sha` (commit) in the answer")?.to_string();
    if !is_hex(&commit, 40) {
        return Err(format!("the commit `{}` is not a 40-digit hex id", commit.chars().take(80).collect::<String>()));
    }
    let card_data = v.get("cardData").cloned().unwrap_or(Value::Null);
    let top_tags = strings(v.get("tags"));
    let license = strings(card_data.get("license")).into_iter().next().or_else(|| {
        top_tags.iter().find_map(|t| t.strip_prefix("license:").map(String::from))
    });
    let mut tags: Vec<String> = ["tags", "annotations_creators", "language_creators"]
        .iter()
        .flat_map(|k| strings(card_data.get(*k)))
        .collect();
    tags.sort();
    tags.dedup();
    let mut source_datasets = strings(card_data.get("source_datasets"));
    source_datasets.sort();
    source_datasets.dedup();
    let configs = card_data.get("configs").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut files = Vec::new();
    for s in v.get("siblings").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
        let path = s.get("rfilename").and_then(Value::as_str).ok_or("a file without `rfilename`")?;
        if let Err(why) = safe_path(path) {
            return Err(format!("it lists a file named {path:?}, which is refused because {why}"));
        }
        let lfs = s.get("lfs");
        let sha256 = lfs.and_then(|l| l.get("sha256").or_else(|| l.get("oid"))).and_then(Value::as_str).map(str::to_string);
        if let Some(h) = &sha256
            && !is_hex(h, 64)
        {
            return Err(format!("file `{path}` has a malformed sha256"));
        }
        let git_oid = s.get("blobId").and_then(Value::as_str).filter(|o| is_hex(o, 40)).map(str::to_string);
        let size = lfs.and_then(|l| l.get("size")).or_else(|| s.get("size")).and_then(Value::as_u64);
        files.push(RemoteFile { path: path.to_string(), size, sha256, git_oid });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(RepoInfo { commit, card: CardFacts { license, tags, source_datasets }, configs, files })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn info_reads_card_and_files() {
        let v = json!({
            "sha": "0123456789abcdef0123456789abcdef01234567",
            "tags": ["license:cc-by-sa-3.0", "task_categories:text-generation"],
            "cardData": { "annotations_creators": ["machine-generated"], "source_datasets": ["original"] },
            "siblings": [
                {"rfilename": "data/train.parquet", "size": 10, "lfs": {"sha256": "a".repeat(64), "size": 10}},
                {"rfilename": "README.md", "size": 5, "blobId": "b".repeat(40)}
            ]
        });
        let i = parse_info(&v).unwrap();
        assert_eq!(i.card.license.as_deref(), Some("cc-by-sa-3.0"));
        assert_eq!(i.card.tags, vec!["machine-generated"]);
        assert_eq!(i.files[0].path, "README.md");
        assert_eq!(i.files[1].sha256.as_deref(), Some("a".repeat(64).as_str()));
    }

    #[test]
    fn hostile_listing_is_refused() {
        let v = json!({"sha": "0".repeat(40), "siblings": [{"rfilename": "../../.bashrc"}]});
        assert!(parse_info(&v).unwrap_err().contains("`..`"));
    }

    #[test]
    fn revisions_are_encoded() {
        assert_eq!(encode_segment("refs/convert/parquet"), "refs%2Fconvert%2Fparquet");
        assert_eq!(encode_path("data/a b.jsonl"), "data/a%20b.jsonl");
    }
}
