//! Remote inputs: hub datasets (`hf = "org/name"` without `path`), `url` sources and
//! `hf:` tokenizers, pinned by `curate.lock`, cached, verified and resumable.
//!
//! Two steps, so that compliance can judge between them with the hub cards' facts:
//!
//! 1. [`resolve`]: the lock. With a lock that fits the recipe this reads the file and
//!    touches no network. Otherwise (no lock, `--update`, `curate lock`) each source
//!    is resolved on the hub (revision → commit, card facts, the files of its config
//!    and split, or the parquet conversion), small files whose sha256 the hub does not
//!    list are downloaded to learn it, and the lock is written.
//! 2. [`materialize`]: every locked file into the cache, downloading only what is
//!    missing, at the locked commit, checked against the lock's size and sha256.
//!    Returns the files as [`InputFile`]s for the pipeline.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let recipe = curate::recipe::load(std::path::Path::new("recipe.toml"))?;
//! let f = curate::fetch::Fetcher::from_env(curate::fetch::Options::default())?;
//! let resolved = curate::fetch::resolve(&recipe, &f, curate::fetch::Mode::UseLock)?;
//! let fetched = curate::fetch::materialize(&recipe, &resolved.lock, &f, &[], resolved.written)?;
//! # let _ = fetched; Ok(()) }
//! ```
//!
//! Modules: `http` (the client, retries, the token's rules), `hub` (the API calls),
//! `select` (config and split → files), `download` (parallel, resumable, verified),
//! `cache` (layout, safe names), `lock` (the lockfile).

pub mod cache;
pub mod download;
pub mod http;
pub mod hub;
pub mod lock;
pub mod select;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail};
use url::Url;

use crate::compliance::gather::{CardSource, HubCard};
use crate::recipe::{Recipe, Source, TokenizerRef};
use crate::source::files::{self, InputFile};
use cache::{Cache, RepoKind};
use download::{DownloadError, Job, Origin};
use http::{Http, HttpConfig, Token};
use hub::{Hub, PARQUET_REVISION, RemoteFile};
use lock::{Lock, LockedCard, LockedFile, LockedRepo, LockedSource};

/// How fetching behaves; nothing here changes what is fetched.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// No network: the lock and the cache must have everything.
    pub offline: bool,
    pub progress: bool,
    pub quiet: bool,
}

/// The endpoint, token, cache and client, read once from the environment.
pub struct Fetcher {
    pub cache: Cache,
    pub endpoint: Url,
    http: Http,
    pub opts: Options,
}

fn env_secs(name: &str) -> anyhow::Result<Option<f64>> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            let x: f64 = v.trim().parse().map_err(|_| anyhow!("`{name}={v}` is not a number"))?;
            if !(x.is_finite() && x >= 0.0) {
                bail!("`{name}={v}` must be 0 or more");
            }
            // Large enough to mean "never"; small enough for a `Duration`.
            Ok(Some(x.min(1e9)))
        }
        _ => Ok(None),
    }
}

fn token_from_env(cache: &Cache) -> Option<Token> {
    for k in ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"] {
        if let Some(t) = std::env::var(k).ok().and_then(Token::new) {
            return Some(t);
        }
    }
    // Where `huggingface-cli login` keeps it.
    let path = std::env::var_os("HF_TOKEN_PATH").map(PathBuf::from).or_else(|| cache.hub.parent().map(|h| h.join("token")))?;
    std::fs::read_to_string(path).ok().and_then(Token::new)
}

impl Fetcher {
    /// `HF_ENDPOINT` (default `https://huggingface.co`), `HF_TOKEN`, `HF_HOME` /
    /// `HF_HUB_CACHE`, `CURATE_CACHE`, `HF_HUB_OFFLINE`, and the client's
    /// `CURATE_HTTP_TIMEOUT` (seconds without a byte), `CURATE_HTTP_RETRIES`,
    /// `CURATE_HTTP_BACKOFF` (seconds before the first retry), and a file's deadline:
    /// `CURATE_HTTP_DEADLINE` seconds plus its size at `CURATE_HTTP_MIN_RATE` bytes/s.
    pub fn from_env(mut opts: Options) -> anyhow::Result<Fetcher> {
        let raw = std::env::var("HF_ENDPOINT").ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| "https://huggingface.co".into());
        let endpoint = Url::parse(raw.trim()).map_err(|e| anyhow!("`HF_ENDPOINT={raw}` is not a URL: {e}"))?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.query().is_some() {
            bail!("`HF_ENDPOINT={raw}` must be an http(s) URL without a query");
        }
        if std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")) {
            opts.offline = true;
        }
        let mut config = HttpConfig { report_retries: !opts.quiet, ..HttpConfig::default() };
        if let Some(t) = env_secs("CURATE_HTTP_TIMEOUT")? {
            config.timeout = Duration::from_secs_f64(t.max(0.05));
        }
        if let Some(r) = env_secs("CURATE_HTTP_RETRIES")? {
            config.retries = r as u32;
        }
        if let Some(b) = env_secs("CURATE_HTTP_BACKOFF")? {
            config.backoff = Duration::from_secs_f64(b);
        }
        if let Some(d) = env_secs("CURATE_HTTP_DEADLINE")? {
            config.deadline = Duration::from_secs_f64(d);
        }
        if let Some(r) = env_secs("CURATE_HTTP_MIN_RATE")? {
            config.min_rate = r as u64;
        }
        let cache = Cache::from_env();
        let http = Http::new(config, &endpoint, token_from_env(&cache));
        Ok(Fetcher { cache, endpoint, http, opts })
    }

    fn hub(&self) -> Hub<'_> {
        Hub { http: &self.http, endpoint: self.endpoint.clone() }
    }

    fn say(&self, msg: impl AsRef<str>) {
        if !self.opts.quiet {
            eprintln!("{}", msg.as_ref());
        }
    }
}

/// Whether a source's data is fetched (rather than read from `path`).
pub fn is_remote(s: &Source) -> bool {
    s.url.is_some() || (s.hf.is_some() && s.inputs.is_empty())
}

/// `curate.lock` beside the recipe.
pub fn lock_path(recipe: &Recipe) -> PathBuf {
    recipe.dir.join(lock::FILE_NAME)
}

/// `[target] tokenizer = "hf:…"`: the model id and the revision (`main` when not given).
fn hub_tokenizer(recipe: &Recipe) -> Option<(&str, &str)> {
    match recipe.target.as_ref().and_then(|t| t.tokenizer.as_ref()) {
        Some(TokenizerRef::Hub { id, revision }) => Some((id.as_str(), revision.as_deref().unwrap_or("main"))),
        _ => None,
    }
}

/// How messages name a hub tokenizer: `hf:org/name`, with `@revision` unless `main`.
fn tokenizer_spec(id: &str, revision: &str) -> String {
    if revision == "main" { format!("hf:{id}") } else { format!("hf:{id}@{revision}") }
}

/// What a lock entry must repeat of its recipe source.
fn spec_of(s: &Source) -> LockedSource {
    LockedSource {
        name: s.name.clone(),
        hf: if s.url.is_some() { None } else { s.hf.clone() },
        revision: if s.url.is_some() { None } else { Some(s.revision.clone().unwrap_or_else(|| "main".into())) },
        config: if s.url.is_some() { None } else { s.config.clone() },
        split: if s.url.is_some() { None } else { s.split.clone() },
        url: s.url.clone(),
        ..Default::default()
    }
}

/// Why a lock does not fit the recipe (empty when it fits).
pub fn stale(recipe: &Recipe, lock: &Lock) -> Vec<String> {
    let mut why = Vec::new();
    for s in recipe.sources.iter().filter(|s| is_remote(s)) {
        let want = spec_of(s);
        match lock.source(&s.name) {
            None => why.push(format!("source `{}` is not in the lock", s.name)),
            Some(l) if l.spec() != want.spec() => {
                why.push(format!("source `{}`: the recipe says {}, the lock has {}", s.name, want.spec(), l.spec()))
            }
            Some(l) => {
                if let (Some(h), Some(f)) = (&s.sha256, l.files.first())
                    && *h != f.sha256
                {
                    why.push(format!("source `{}`: the recipe's `sha256` is {h}, the lock has {}", s.name, f.sha256));
                }
            }
        }
    }
    for l in &lock.sources {
        if !recipe.sources.iter().any(|s| s.name == l.name && is_remote(s)) {
            why.push(format!("the lock has source `{}`, which the recipe does not fetch", l.name));
        }
    }
    match (hub_tokenizer(recipe), &lock.tokenizer) {
        (Some((id, rev)), Some(t)) if t.hf != id || t.revision != rev => {
            why.push(format!("the tokenizer is `{}`, the lock has `{}`", tokenizer_spec(id, rev), tokenizer_spec(&t.hf, &t.revision)))
        }
        (Some((id, rev)), None) => why.push(format!("tokenizer `{}` is not in the lock", tokenizer_spec(id, rev))),
        (None, Some(t)) => why.push(format!("the lock has tokenizer `{}`, which the recipe does not use", tokenizer_spec(&t.hf, &t.revision))),
        _ => {}
    }
    why
}

/// How [`resolve`] treats an existing lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Use the lock when present (refusing one that does not fit the recipe); resolve
    /// and write one when absent.
    UseLock,
    /// Resolve again and rewrite the lock (`curate lock`, `--update`).
    Update,
    /// Resolve again and compare, writing nothing (`curate lock --check`).
    Check,
}

/// A lock and what changed from the one before it.
#[derive(Debug)]
pub struct Resolved {
    pub lock: Lock,
    /// One line per change, `source `x`: …`.
    pub changes: Vec<String>,
    /// The lock file was (re)written.
    pub written: bool,
}

/// See the module docs.
pub fn resolve(recipe: &Recipe, f: &Fetcher, mode: Mode) -> anyhow::Result<Resolved> {
    let path = lock_path(recipe);
    let remote: Vec<&Source> = recipe.sources.iter().filter(|s| is_remote(s)).collect();
    let existing = if path.is_file() { Some(Lock::read(&path)?) } else { None };
    if remote.is_empty() && hub_tokenizer(recipe).is_none() && existing.is_none() {
        return Ok(Resolved { lock: Lock { version: lock::VERSION, ..Default::default() }, changes: vec![], written: false });
    }
    if mode == Mode::UseLock
        && let Some(l) = &existing
    {
        let why = stale(recipe, l);
        if why.is_empty() {
            return Ok(Resolved { lock: l.clone(), changes: vec![], written: false });
        }
        bail!(
            "`{}` does not match the recipe:\n  {}\nhint: run `curate lock {}` (or pass `--update`) to resolve again and rewrite it",
            path.display(),
            why.join("\n  "),
            recipe.path.display()
        );
    }
    if f.opts.offline {
        let what = if existing.is_some() {
            "re-resolving the lock".to_string()
        } else {
            format!("`{}` does not exist, and writing it", path.display())
        };
        bail!(
            "{what} needs the network, but curate is offline\nhint: run `curate lock {}` once with network access, then `--offline` uses the lock and the cache",
            recipe.path.display()
        );
    }
    let mut new = Lock { version: lock::VERSION, ..Default::default() };
    // (job, entry index in the new lock or usize::MAX for the tokenizer, file index)
    let mut pending: Vec<(Job, usize, Option<usize>)> = Vec::new();
    for s in &remote {
        let (entry, jobs) = resolve_source(recipe, f, s)?;
        let at = new.sources.len();
        pending.extend(jobs.into_iter().map(|(j, fi)| (j, at, Some(fi))));
        new.sources.push(entry);
    }
    if let Some((id, rev)) = hub_tokenizer(recipe) {
        let (repo, jobs) = resolve_tokenizer(f, id, rev)?;
        pending.extend(jobs.into_iter().map(|(j, fi)| (j, usize::MAX, Some(fi))));
        new.tokenizer = Some(repo);
    }
    // Learn the sha256 of files the hub lists without one, by downloading them (they
    // are the small files git stores itself, or URLs without `sha256`).
    if !pending.is_empty() {
        // One download per distinct file: two sources may read the same one.
        let key = |j: &Job| {
            let what = match &j.origin {
                Origin::Hub { url, .. } | Origin::Url(url) => url.clone(),
            };
            (j.blob_dir.clone(), j.sha256.clone().or_else(|| j.git_oid.clone()).unwrap_or(what))
        };
        let mut unique: Vec<Job> = Vec::new();
        let mut slot = Vec::with_capacity(pending.len());
        for (job, _, _) in &pending {
            match unique.iter().position(|u| key(u) == key(job)) {
                Some(i) => slot.push(i),
                None => {
                    slot.push(unique.len());
                    unique.push(job.clone());
                }
            }
        }
        let results: Vec<Result<download::Fetched, String>> = download::run_all(&f.http, &unique, f.opts.progress, f.opts.quiet)
            .into_iter()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect();
        let mut errors: Vec<String> = results.iter().filter_map(|r| r.as_ref().err().cloned()).collect();
        for ((job, at, fi), u) in pending.iter().zip(&slot) {
            let Ok(done) = &results[*u] else { continue };
            if let Some(snap) = &job.snapshot
                && std::fs::symlink_metadata(snap).is_err()
                && let Err(e) = cache::link_snapshot(&done.blob, snap)
            {
                errors.push(format!("{}: {e:#}", job.label));
            }
            let file = if *at == usize::MAX {
                &mut new.tokenizer.as_mut().expect("tokenizer entry").files[fi.unwrap()]
            } else {
                &mut new.sources[*at].files[fi.unwrap()]
            };
            file.sha256 = done.sha256.clone();
            file.size = done.size;
        }
        if !errors.is_empty() {
            bail!("{}", errors.join("\n"));
        }
    }
    let new = new.canonical();
    let mut changes = Vec::new();
    let old = existing.clone().unwrap_or_default();
    for s in &new.sources {
        match old.source(&s.name) {
            Some(o) => changes.extend(lock::changes(o, s).into_iter().map(|c| format!("source `{}`: {c}", s.name))),
            None if existing.is_some() => changes.push(format!("source `{}`: added ({})", s.name, s.spec())),
            None => {}
        }
    }
    for o in &old.sources {
        if new.source(&o.name).is_none() {
            changes.push(format!("source `{}`: removed", o.name));
        }
    }
    if let (Some(o), Some(n)) = (&old.tokenizer, &new.tokenizer) {
        if o.revision != n.revision {
            changes.push(format!(
                "tokenizer `hf:{}`: revision `{}` (commit {}) → `{}` (commit {})",
                n.hf,
                o.revision,
                &o.commit[..12.min(o.commit.len())],
                n.revision,
                &n.commit[..12.min(n.commit.len())]
            ));
        } else if o.commit != n.commit {
            changes.push(format!(
                "tokenizer `{}`: revision `{}` moved from commit {} to {}",
                tokenizer_spec(&n.hf, &n.revision),
                n.revision,
                &o.commit[..12.min(o.commit.len())],
                &n.commit[..12.min(n.commit.len())]
            ));
        }
        let spec = tokenizer_spec(&n.hf, &n.revision);
        changes.extend(lock::file_changes(&o.files, &n.files).into_iter().map(|c| format!("tokenizer `{spec}`: {c}")));
    }
    let unchanged = existing.as_ref().is_some_and(|o| o.to_toml() == new.to_toml());
    let written = mode != Mode::Check && !unchanged;
    if written {
        new.write(&path)?;
    }
    Ok(Resolved { lock: new, changes, written })
}

fn hub_error(name: &str, e: hub::HubError) -> anyhow::Error {
    anyhow!("source `{name}`: {e}")
}

/// One hub or URL source, resolved: its lock entry, and downloads still needed to
/// learn some files' sha256 (with the index of the file they complete).
fn resolve_source(recipe: &Recipe, f: &Fetcher, s: &Source) -> anyhow::Result<(LockedSource, Vec<(Job, usize)>)> {
    let mut entry = spec_of(s);
    if let Some(url) = &s.url {
        let name = url_file_name(url);
        if let Some(h) = &s.sha256 {
            let blob = f.cache.url_blob(h);
            if let Ok(m) = std::fs::metadata(&blob) {
                entry.files = vec![LockedFile { path: name, size: m.len(), sha256: h.clone() }];
                return Ok((entry, vec![]));
            }
        }
        entry.files = vec![LockedFile { path: name.clone(), size: 0, sha256: String::new() }];
        let job = Job {
            label: format!("source `{}`: `{}`", s.name, http::shown(url)),
            short: format!("{}: {name}", s.name),
            origin: Origin::Url(url.clone()),
            size: None,
            sha256: s.sha256.clone(),
            git_oid: None,
            blob_dir: f.cache.url_blobs(),
            snapshot: None,
        };
        return Ok((entry, vec![(job, 0)]));
    }
    let id = s.hf.as_deref().expect("a remote source has `hf` or `url`");
    let revision = entry.revision.clone().unwrap_or_else(|| "main".into());
    let hub = f.hub();
    let info = hub.info(RepoKind::Dataset, id, &revision).map_err(|e| hub_error(&s.name, e))?;
    entry.card = Some(LockedCard {
        license: info.card.license.clone(),
        tags: info.card.tags.clone(),
        source_datasets: info.card.source_datasets.clone(),
    });
    let sel = select::select(&info, s.config.as_deref(), s.split.as_deref())
        .map_err(|why| anyhow!("source `{}`: hub dataset `{id}` at `{revision}`: {why}", s.name))?;
    let (commit, files) = match sel {
        Some(files) => (info.commit.clone(), files),
        None => {
            let p = hub.info(RepoKind::Dataset, id, PARQUET_REVISION).map_err(|e| match e {
                hub::HubError::NotFound { .. } => anyhow!(
                    "source `{}`: hub dataset `{id}` at `{revision}` holds no files curate reads (.jsonl, .json, .csv, .tsv, .parquet, .txt) and has no parquet conversion (`{PARQUET_REVISION}`)",
                    s.name
                ),
                e => hub_error(&s.name, e),
            })?;
            let files = select::select_parquet(&p, s.config.as_deref(), s.split.as_deref())
                .map_err(|why| anyhow!("source `{}`: hub dataset `{id}`: {why}", s.name))?;
            entry.parquet_conversion = true;
            (p.commit, files)
        }
    };
    let _ = recipe;
    for file in &files {
        if s.reader.is_none() && files::reader_for(Path::new(&file.path)).is_none() {
            bail!("source `{}`: cannot tell how to read hub file `{}` from its extension\nhint: set `reader`", s.name, file.path);
        }
    }
    entry.commit = Some(commit.clone());
    let (locked, jobs) = lock_files(f, RepoKind::Dataset, id, &commit, &s.name, &files);
    entry.files = locked;
    Ok((entry, jobs))
}

/// Lock entries for hub files, and the downloads that will fill in missing sha256s.
fn lock_files(f: &Fetcher, kind: RepoKind, id: &str, commit: &str, who: &str, files: &[RemoteFile]) -> (Vec<LockedFile>, Vec<(Job, usize)>) {
    let mut locked = Vec::new();
    let mut jobs = Vec::new();
    for (i, file) in files.iter().enumerate() {
        match (&file.sha256, file.size) {
            (Some(h), Some(n)) => locked.push(LockedFile { path: file.path.clone(), size: n, sha256: h.clone() }),
            _ => {
                locked.push(LockedFile { path: file.path.clone(), size: file.size.unwrap_or(0), sha256: String::new() });
                jobs.push((hub_job(f, kind, id, commit, who, &file.path, file.size, file.sha256.clone(), file.git_oid.clone()), i));
            }
        }
    }
    (locked, jobs)
}

#[allow(clippy::too_many_arguments)]
fn hub_job(f: &Fetcher, kind: RepoKind, id: &str, commit: &str, who: &str, path: &str, size: Option<u64>, sha256: Option<String>, git_oid: Option<String>) -> Job {
    Job {
        label: format!("{who}: file `{path}` of `{id}` at {}", &commit[..12.min(commit.len())]),
        short: format!("{}: {}", who.trim_start_matches("source ").trim_matches('`'), path),
        origin: Origin::Hub { url: f.hub().resolve_url(kind, id, commit, path), commit: commit.to_string() },
        size,
        sha256,
        git_oid,
        blob_dir: f.cache.repo_dir(kind, id).join("blobs"),
        snapshot: Some(f.cache.snapshot(kind, id, commit, path)),
    }
}

fn resolve_tokenizer(f: &Fetcher, id: &str, revision: &str) -> anyhow::Result<(LockedRepo, Vec<(Job, usize)>)> {
    let spec = tokenizer_spec(id, revision);
    if !valid_repo_id(id) {
        bail!("tokenizer `{spec}` is not a hub id\nhint: write it as `hf:org/name` (or `hf:org/name@revision`)");
    }
    let info = f.hub().info(RepoKind::Model, id, revision).map_err(|e| anyhow!("tokenizer `{spec}`: {e}"))?;
    let files: Vec<RemoteFile> =
        info.files.iter().filter(|x| x.path == "tokenizer.json" || x.path == "tokenizer_config.json").cloned().collect();
    if !files.iter().any(|x| x.path == "tokenizer.json") {
        bail!("tokenizer `{spec}`: the model repository has no `tokenizer.json` at its top level\nhint: point `[target] tokenizer` at a local tokenizer.json");
    }
    let (locked, jobs) = lock_files(f, RepoKind::Model, id, &info.commit, &format!("tokenizer `{spec}`"), &files);
    Ok((LockedRepo { hf: id.to_string(), revision: revision.to_string(), commit: info.commit, files: locked }, jobs))
}

fn valid_repo_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('/').collect();
    parts.len() == 2
        && parts.iter().all(|p| !p.is_empty() && p != &"." && p != &".." && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
}

/// The last path segment of a URL, for messages and for telling its reader.
fn url_file_name(url: &str) -> String {
    let name = Url::parse(url).ok().and_then(|u| u.path_segments().and_then(|mut s| s.next_back().map(str::to_string))).unwrap_or_default();
    if name.is_empty() || cache::safe_path(&name).is_err() { "download".to_string() } else { name }
}

/// Files ready for the pipeline, and the tokenizer's local path.
#[derive(Debug, Default)]
pub struct Materialized {
    /// By source index.
    pub inputs: BTreeMap<usize, Vec<InputFile>>,
    pub tokenizer: Option<PathBuf>,
    /// The tokenizer came through the lock.
    pub tokenizer_locked: bool,
    /// Files downloaded now (0 when the cache had them all).
    pub downloaded: usize,
}

/// What the cache holds at a path where a locked file should be.
enum InCache {
    /// A verified copy.
    Yes,
    No,
    /// Something with the wrong size or sha256 (why, naming the file).
    Damaged(String),
}

/// Whether a verified copy of a file is in the cache at `path` (a hub snapshot path
/// or a URL blob): the right size, and a sha256 that matches (known from the blob's
/// name, since only verified bytes get that name, else hashed).
fn in_cache(path: &Path, file: &LockedFile) -> InCache {
    let Ok(m) = std::fs::metadata(path) else { return InCache::No };
    let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if m.len() != file.size {
        return InCache::Damaged(format!("`{}` has {} bytes, curate.lock says {} (sha256 {})", shown.display(), m.len(), file.size, file.sha256));
    }
    let named = std::fs::read_link(path).ok().and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()));
    if named.as_deref() == Some(file.sha256.as_str()) || path.file_name().is_some_and(|n| n == file.sha256.as_str()) {
        return InCache::Yes;
    }
    match download::digest_file(path, false) {
        Ok((_, h, _)) if h == file.sha256 => InCache::Yes,
        Ok((_, h, _)) => InCache::Damaged(format!("`{}` has sha256 {h}, curate.lock says {}", shown.display(), file.sha256)),
        Err(e) => InCache::Damaged(format!("`{}` cannot be read: {e}", shown.display())),
    }
}

fn cached(path: &Path, file: &LockedFile) -> bool {
    matches!(in_cache(path, file), InCache::Yes)
}

/// See the module docs. `skip` lists source indices not to fetch (rejected ones);
/// `just_locked` says the lock was written by this run (so a mismatch is the server
/// contradicting itself, not the remote moving away from an older lock).
pub fn materialize(recipe: &Recipe, lock: &Lock, f: &Fetcher, skip: &[usize], just_locked: bool) -> anyhow::Result<Materialized> {
    struct Want {
        source: Option<usize>,
        path: PathBuf,
        file: LockedFile,
        job: Option<Job>,
    }
    let mut wants: Vec<Want> = Vec::new();
    for s in recipe.sources.iter().filter(|s| is_remote(s) && !skip.contains(&s.index)) {
        let l = lock.source(&s.name).ok_or_else(|| anyhow!("source `{}` is not in `curate.lock`\nhint: run `curate lock`", s.name))?;
        for file in &l.files {
            if let Some(url) = &l.url {
                let path = f.cache.url_blob(&file.sha256);
                let job = Job {
                    label: format!("source `{}`: `{}`", s.name, http::shown(url)),
                    short: format!("{}: {}", s.name, file.path),
                    origin: Origin::Url(url.clone()),
                    size: Some(file.size),
                    sha256: Some(file.sha256.clone()),
                    git_oid: None,
                    blob_dir: path.parent().unwrap().to_path_buf(),
                    snapshot: None,
                };
                wants.push(Want { source: Some(s.index), path, file: file.clone(), job: Some(job) });
            } else {
                let id = l.hf.as_deref().unwrap_or_default();
                let commit = l.commit.as_deref().unwrap_or_default();
                check_locked_names(&s.name, id, commit, &file.path)?;
                let path = f.cache.snapshot(RepoKind::Dataset, id, commit, &file.path);
                let who = format!("source `{}`", s.name);
                let job = hub_job(f, RepoKind::Dataset, id, commit, &who, &file.path, Some(file.size), Some(file.sha256.clone()), None);
                wants.push(Want { source: Some(s.index), path, file: file.clone(), job: Some(job) });
            }
        }
    }
    if let (Some(t), Some(_)) = (&lock.tokenizer, hub_tokenizer(recipe)) {
        for file in &t.files {
            check_locked_names("tokenizer", &t.hf, &t.commit, &file.path)?;
            let path = f.cache.snapshot(RepoKind::Model, &t.hf, &t.commit, &file.path);
            let who = format!("tokenizer `{}`", tokenizer_spec(&t.hf, &t.revision));
            let job = hub_job(f, RepoKind::Model, &t.hf, &t.commit, &who, &file.path, Some(file.size), Some(file.sha256.clone()), None);
            wants.push(Want { source: None, path, file: file.clone(), job: Some(job) });
        }
    }

    // What the cache already has. A blob with the right name but no snapshot link
    // (the same content at another commit) only needs the link.
    let mut missing = Vec::new();
    let mut damaged = Vec::new();
    for w in &mut wants {
        let mut state = in_cache(&w.path, &w.file);
        if matches!(state, InCache::Yes) {
            w.job = None;
            continue;
        }
        if let Some(job) = &w.job
            && let Some(snap) = &job.snapshot
        {
            let blob = job.blob_dir.join(&w.file.sha256);
            match in_cache(&blob, &w.file) {
                InCache::Yes => {
                    cache::link_snapshot(&blob, snap)?;
                    w.job = None;
                    continue;
                }
                InCache::Damaged(why) => state = InCache::Damaged(why),
                InCache::No => {}
            }
        }
        let label = w.job.as_ref().map(|j| j.label.clone()).unwrap_or_default();
        match state {
            InCache::Damaged(why) => damaged.push(format!("{label}: {why}")),
            _ => missing.push(format!("{label} ({} bytes)", w.file.size)),
        }
    }
    if f.opts.offline && !(missing.is_empty() && damaged.is_empty()) {
        let mut what = Vec::new();
        if !damaged.is_empty() {
            what.push(format!("{} file(s) in the cache are damaged:\n  {}", damaged.len(), damaged.join("\n  ")));
        }
        if !missing.is_empty() {
            what.push(format!("{} file(s) are not in the cache:\n  {}", missing.len(), missing.join("\n  ")));
        }
        bail!(
            "offline, and {}\nhint: run `curate fetch {}` with network access first; it downloads them again",
            what.join("\nand "),
            recipe.path.display()
        );
    }
    for d in &damaged {
        f.say(format!("curate: {d}; downloading it again"));
    }
    // One download per blob: two sources may read the same file; each gets its
    // snapshot link afterwards.
    let mut seen = std::collections::BTreeSet::new();
    let jobs: Vec<Job> = wants
        .iter()
        .filter_map(|w| w.job.clone())
        .filter(|j| seen.insert((j.blob_dir.clone(), j.sha256.clone())))
        .collect();
    let downloaded = jobs.len();
    if !jobs.is_empty() {
        let started = std::time::Instant::now();
        let results = download::run_all(&f.http, &jobs, f.opts.progress, f.opts.quiet);
        let mut errors = Vec::new();
        let mut bytes = 0u64;
        for r in results {
            match r {
                Ok(d) => bytes += d.size,
                Err(e) => errors.push(explain_download(e)),
            }
        }
        if !errors.is_empty() {
            let hint = if !errors.iter().any(|e| e.contains("curate.lock")) {
                ""
            } else if just_locked {
                "\nhint: the server sent bytes that contradict its own listing; nothing corrupt was cached, so running again retries"
            } else {
                "\nhint: the remote no longer matches `curate.lock`; `curate lock` resolves again and shows what changed (review it), `--update` does the same in a run"
            };
            bail!("{}{hint}", errors.join("\n"));
        }
        f.say(format!("curate: fetched {downloaded} file(s), {} bytes, in {:.1}s", crate::report::thousands(bytes), started.elapsed().as_secs_f64()));
        for w in &wants {
            if let Some(job) = &w.job
                && let Some(snap) = &job.snapshot
                && !cached(snap, &w.file)
            {
                cache::link_snapshot(&job.blob_dir.join(&w.file.sha256), snap)?;
            }
        }
    }

    let mut out = Materialized { downloaded, ..Default::default() };
    for w in &wants {
        match w.source {
            Some(i) => {
                let s = &recipe.sources[i];
                let l = lock.source(&s.name).expect("checked above");
                let display = match (&l.url, &l.hf) {
                    (Some(u), _) => http::shown(u),
                    (None, Some(id)) => format!("hf://datasets/{id}/{}", w.file.path),
                    _ => w.file.path.clone(),
                };
                let input = files::fetched(s, w.path.clone(), display, &w.file.path, w.file.size)?;
                out.inputs.entry(i).or_default().push(input);
            }
            None if w.file.path == "tokenizer.json" => {
                out.tokenizer = Some(w.path.clone());
                out.tokenizer_locked = true;
            }
            None => {}
        }
    }
    Ok(out)
}

/// A lock is a file a user may edit; its names are checked like a server's.
fn check_locked_names(who: &str, id: &str, commit: &str, path: &str) -> anyhow::Result<()> {
    if !valid_repo_id(id) {
        bail!("`curate.lock`: {who}: `{id}` is not a hub id");
    }
    if !cache::is_hex(commit, 40) {
        bail!("`curate.lock`: {who}: commit `{commit}` is not a 40-digit hex id");
    }
    cache::safe_path(path).map_err(|why| anyhow!("`curate.lock`: {who}: file name {path:?} is refused because {why}"))
}

fn explain_download(e: DownloadError) -> String {
    match &e {
        DownloadError::Http { err, .. } if err.status() == Some(404) => {
            format!("{e}: the locked commit or file is no longer on the server (curate.lock pins it)")
        }
        DownloadError::Http { err: http::HttpError::Bad { .. }, .. } | DownloadError::Mismatch { .. } => {
            format!("{e} (the size and sha256 come from curate.lock)")
        }
        DownloadError::Http { err, .. } if err.status() == Some(401) => {
            format!("{e}\nhint: the dataset is gated or private: set `HF_TOKEN` to a token of an account with access")
        }
        _ => e.to_string(),
    }
}

/// Hub card facts from the lock, for the compliance engine.
pub struct LockedCards(BTreeMap<String, HubCard>);

impl LockedCards {
    pub fn new(lock: &Lock) -> LockedCards {
        let mut m = BTreeMap::new();
        for s in &lock.sources {
            if let (Some(id), Some(c)) = (&s.hf, &s.card) {
                m.insert(id.clone(), HubCard { license: c.license.clone(), tags: c.tags.clone(), source_datasets: c.source_datasets.clone() });
            }
        }
        LockedCards(m)
    }
}

impl CardSource for LockedCards {
    fn card(&self, hub_id: &str) -> Option<HubCard> {
        self.0.get(hub_id).cloned()
    }
}
