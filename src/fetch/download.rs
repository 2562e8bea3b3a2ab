//! Downloads into the cache: a bounded pool of threads, resume with HTTP Range,
//! retries with backoff, a deadline per file, and a checksum before anything takes its
//! final name.
//!
//! Each file is written to `blobs/.<key>.part` beside its final place. A connection
//! lost mid-file keeps the part; the next attempt asks for the rest (`Range:
//! bytes=N-`) and starts over only when the server answers 200 instead of 206. When
//! the body is complete its size, sha256 and (for small hub files, whose listing
//! gives only a git blob id) git object id are checked; a mismatch deletes the part
//! and fails, so a corrupt body never reaches a name the cache reads.
//!
//! Several runs may fill one cache at once. Each download holds an advisory lock on
//! `.locks/<repo folder>/<key>.lock` under the cache root (where `huggingface_hub`
//! keeps its per-blob locks) from before it touches the part file until the verified
//! blob has its name; a run that finds the lock taken waits, then uses the blob the
//! other run left if it verifies.
//!
//! A file must arrive within `deadline` plus its size at `min_rate` (see
//! [`HttpConfig`]), all attempts together; a server that trickles bytes fails the
//! file instead of holding it forever, keeping what arrived for the next run.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::Digest;
use url::Url;

use super::cache::link_snapshot;
use super::http::{Http, HttpConfig, HttpError, shown};

/// Where a file comes from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A hub `resolve` URL at a commit: the hub answers 200 with the body, or a 302 to
    /// its storage host carrying `X-Repo-Commit`, `X-Linked-Size` and `X-Linked-ETag`.
    Hub { url: String, commit: String },
    /// A plain URL; no redirects are followed.
    Url(String),
}

/// One file to fetch.
#[derive(Debug, Clone)]
pub struct Job {
    /// How errors name it: "source `x`: file `data/a.parquet`".
    pub label: String,
    /// The short name on its progress bar.
    pub short: String,
    pub origin: Origin,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    /// A git blob id (sha1 of `blob <len>\0<content>`), when that is all the hub gives.
    pub git_oid: Option<String>,
    /// The folder the verified blob goes to, named by its sha256.
    pub blob_dir: PathBuf,
    /// A path to point at the blob (the hub snapshot), if any.
    pub snapshot: Option<PathBuf>,
}

/// A verified file in the cache.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub sha256: String,
    pub size: u64,
    pub blob: PathBuf,
}

/// Why a download failed, for the caller to put in front of the user.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{label}: {err}")]
    Http { label: String, err: HttpError },
    #[error("{label}: {what}")]
    Mismatch { label: String, what: String },
    #[error("{label}: {what}")]
    Io { label: String, what: String },
}

/// How many files download at once.
pub const PARALLEL: usize = 4;

/// Fetch every job, at most `PARALLEL` at a time. Returns each job's result in order.
pub fn run_all(http: &Http, jobs: &[Job], progress: bool, quiet: bool) -> Vec<Result<Fetched, DownloadError>> {
    let multi = MultiProgress::with_draw_target(if progress { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() });
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Fetched, DownloadError>>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    let workers = PARALLEL.min(jobs.len()).max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(job) = jobs.get(i) else { break };
                    let bar = multi.add(bar_for(job));
                    let r = fetch_one(http, job, &bar, &|msg: String| {
                        if !quiet {
                            if !multi.is_hidden() {
                                let _ = multi.println(msg);
                            } else {
                                eprintln!("{msg}");
                            }
                        }
                    });
                    bar.finish_and_clear();
                    results.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    results.into_inner().unwrap().into_iter().map(|r| r.expect("every job ran")).collect()
}

fn bar_for(job: &Job) -> ProgressBar {
    let bar = ProgressBar::new(job.size.unwrap_or(0));
    bar.set_style(
        ProgressStyle::with_template("{prefix:30!} [{bar:24}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {eta:>4}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(job.short.clone());
    bar
}

/// What names a job's part file and lock: its sha256, else its git blob id, else the
/// hash of its URL.
fn job_key(job: &Job) -> String {
    job.sha256.clone().or_else(|| job.git_oid.clone()).unwrap_or_else(|| {
        crate::hash::sha256_hex(match &job.origin {
            Origin::Hub { url, .. } | Origin::Url(url) => url.as_bytes(),
        })
    })
}

fn part_path(job: &Job) -> PathBuf {
    job.blob_dir.join(format!(".{}.part", job_key(job)))
}

/// `<root>/.locks/<repo folder>/<key>.lock` for a blob folder `<root>/<repo folder>/blobs`.
pub fn lock_path(job: &Job) -> PathBuf {
    let repo = job.blob_dir.parent().unwrap_or(&job.blob_dir);
    let root = repo.parent().unwrap_or(repo);
    let folder = repo.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "blobs".into());
    root.join(".locks").join(folder).join(format!("{}.lock", job_key(job)))
}

/// Take the job's blob lock, waiting (and saying so) while another run holds it. The
/// lock is released when the file is dropped; the lock file stays, as removing it
/// would race with a run about to take it.
fn lock_blob(job: &Job, note: &dyn Fn(String)) -> Result<File, String> {
    let path = lock_path(job);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    }
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open the lock file `{}`: {e}", path.display()))?;
    match f.try_lock() {
        Ok(()) => return Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => {
            note(format!("curate: {}: another run is downloading it into the same cache; waiting for it", job.label))
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(format!("cannot lock `{}`: {e}", path.display())),
    }
    f.lock().map_err(|e| format!("cannot lock `{}`: {e}", path.display()))?;
    Ok(f)
}

/// How long a file may take, all attempts together: `deadline`, plus one second per
/// `min_rate` bytes of its size (or, while the size is unknown, of what arrived).
struct Deadline {
    start: Instant,
    floor: Duration,
    min_rate: u64,
}

impl Deadline {
    fn new(config: &HttpConfig) -> Deadline {
        Deadline { start: Instant::now(), floor: config.deadline, min_rate: config.min_rate }
    }

    fn allowed(&self, size: u64) -> Option<Duration> {
        (self.min_rate > 0).then(|| self.floor + Duration::from_secs_f64(size as f64 / self.min_rate as f64))
    }

    /// An error once `got` bytes of `size` (when known) took longer than allowed.
    fn check(&self, url: &str, got: u64, size: Option<u64>) -> Result<(), HttpError> {
        let Some(allowed) = self.allowed(size.unwrap_or(0).max(got)) else { return Ok(()) };
        let took = self.start.elapsed();
        if took <= allowed {
            return Ok(());
        }
        let of = size.map(|s| format!(" of {s}")).unwrap_or_default();
        Err(HttpError::TooSlow {
            url: shown(url),
            msg: format!(
                "{got}{of} bytes arrived in {:.1}s, past this file's deadline of {:.1}s (`CURATE_HTTP_DEADLINE` {}s, plus its size at `CURATE_HTTP_MIN_RATE` {} bytes/s); what arrived is kept, and the next run resumes it",
                took.as_secs_f64(),
                allowed.as_secs_f64(),
                self.floor.as_secs_f64(),
                self.min_rate
            ),
        })
    }
}

/// A blob already under its final name (another run finished it while this one
/// waited): used when its size and sha256 verify; removed when they do not, so the
/// download replaces it.
fn verified_blob(job: &Job) -> Option<Fetched> {
    let want = job.sha256.as_ref()?;
    let blob = job.blob_dir.join(want);
    std::fs::symlink_metadata(&blob).ok()?;
    match digest_file(&blob, false) {
        Ok((size, sha256, _)) if sha256 == *want && job.size.is_none_or(|n| n == size) => Some(Fetched { sha256, size, blob }),
        _ => {
            let _ = std::fs::remove_file(&blob);
            None
        }
    }
}

/// Download one job into its blob folder, verifying it; see the module docs.
pub fn fetch_one(http: &Http, job: &Job, bar: &ProgressBar, note: &dyn Fn(String)) -> Result<Fetched, DownloadError> {
    let io = |what: String| DownloadError::Io { label: job.label.clone(), what };
    std::fs::create_dir_all(&job.blob_dir).map_err(|e| io(format!("cannot create `{}`: {e}", job.blob_dir.display())))?;
    let _lock = lock_blob(job, note).map_err(io)?;
    if let Some(done) = verified_blob(job) {
        if let Some(snap) = &job.snapshot {
            link_snapshot(&done.blob, snap).map_err(|e| io(format!("{e:#}")))?;
        }
        return Ok(done);
    }
    let part = part_path(job);
    let attempts = http.config.retries + 1;
    let deadline = Deadline::new(&http.config);
    http.retrying(
        || attempt(http, job, &part, bar, &deadline),
        |e, n| note(format!("curate: {}: {e}; retrying ({n}/{})", job.label, attempts - 1)),
    )
    .map_err(|err| DownloadError::Http { label: job.label.clone(), err })?;

    // Verify the whole part, including any bytes kept from an earlier attempt.
    let (size, sha256, git) = digest_file(&part, job.git_oid.is_some()).map_err(|e| io(format!("cannot read `{}`: {e}", part.display())))?;
    let mismatch = |what: String| {
        let _ = std::fs::remove_file(&part);
        DownloadError::Mismatch { label: job.label.clone(), what }
    };
    if let Some(want) = job.size
        && want != size
    {
        return Err(mismatch(format!("received {size} bytes, expected {want}; the partial file was deleted")));
    }
    if let Some(want) = &job.sha256
        && *want != sha256
    {
        return Err(mismatch(format!(
            "checksum mismatch: sha256 of the received bytes is {sha256}, expected {want}; nothing was written to the cache"
        )));
    }
    if let (Some(want), Some(got)) = (&job.git_oid, &git)
        && want != got
    {
        return Err(mismatch(format!(
            "checksum mismatch: git object id of the received bytes is {got}, the hub lists {want}; nothing was written to the cache"
        )));
    }
    let blob = job.blob_dir.join(&sha256);
    std::fs::rename(&part, &blob).map_err(|e| io(format!("cannot move `{}` into the cache: {e}", part.display())))?;
    if let Some(snap) = &job.snapshot {
        link_snapshot(&blob, snap).map_err(|e| io(format!("{e:#}")))?;
    }
    Ok(Fetched { sha256, size, blob })
}

/// One try: ask for what the part file lacks and append it.
fn attempt(http: &Http, job: &Job, part: &Path, bar: &ProgressBar, deadline: &Deadline) -> Result<(), HttpError> {
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    if let Some(want) = job.size
        && have >= want
        && have > 0
    {
        // Complete already (or too long, which the checksum will catch).
        return Ok(());
    }
    let first = match &job.origin {
        Origin::Url(url) | Origin::Hub { url, .. } => url,
    };
    deadline.check(first, have, job.size)?;
    let (resp, url) = match &job.origin {
        Origin::Url(url) => {
            let r = restart_on_416(http.get_once(url, Some(have)), part, have)?;
            if (300..400).contains(&r.status) {
                let location = r.header("location").unwrap_or("").to_string();
                return Err(HttpError::UrlRedirect { url: shown(url), location: shown(&location) });
            }
            (r, url.clone())
        }
        Origin::Hub { url, commit } => {
            // No Range on the hub itself: a large file is always a redirect to storage,
            // where the Range goes; a small one is sent whole.
            let r = http.get_once(url, None)?;
            check_hub_headers(&r, url, commit, job)?;
            if (300..400).contains(&r.status) {
                let location = r.header("location").unwrap_or("").to_string();
                let base = Url::parse(url).map_err(|e| HttpError::Bad { url: shown(url), msg: e.to_string() })?;
                let next = base.join(&location).map_err(|e| HttpError::Bad {
                    url: shown(url),
                    msg: format!("redirect to an unusable location `{}`: {e}", shown(&location)),
                })?;
                if !matches!(next.scheme(), "http" | "https") || (base.scheme() == "https" && next.scheme() == "http") {
                    return Err(HttpError::UnexpectedRedirect { url: shown(url), location: shown(next.as_str()) });
                }
                let r2 = restart_on_416(http.get_once(next.as_str(), Some(have)), part, have)?;
                if (300..400).contains(&r2.status) {
                    let loc = r2.header("location").unwrap_or("").to_string();
                    return Err(HttpError::UnexpectedRedirect { url: shown(next.as_str()), location: shown(&loc) });
                }
                (r2, next.to_string())
            } else {
                (r, url.clone())
            }
        }
    };
    let append = resp.status == 206 && have > 0;
    if append {
        let ok = resp
            .header("content-range")
            .and_then(|v| v.strip_prefix("bytes "))
            .and_then(|v| v.split('-').next())
            .and_then(|v| v.parse::<u64>().ok())
            == Some(have);
        if !ok {
            return Err(HttpError::Bad { url: shown(&url), msg: "answered a range request with the wrong range".into() });
        }
    } else if resp.status != 200 {
        return Err(HttpError::Bad { url: shown(&url), msg: format!("unexpected status {}", resp.status) });
    }
    let io = |e: std::io::Error| HttpError::Transport { url: part.display().to_string(), msg: e.to_string(), retry: false };
    let mut out = if append {
        OpenOptions::new().append(true).open(part).map_err(io)?
    } else {
        File::create(part).map_err(io)?
    };
    let start = if append { have } else { 0 };
    bar.set_position(start);
    let resp_len = resp.header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let mut reader = resp.into_reader();
    let mut buf = vec![0u8; 256 << 10];
    let mut written = start;
    let limit = job.size.map(|s| s + 1);
    let expected = job.size.or_else(|| resp_len.map(|n| n + start));
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = out.flush();
                return Err(http.io_error(&url, &e));
            }
        };
        out.write_all(&buf[..n]).map_err(io)?;
        written += n as u64;
        bar.set_position(written);
        if limit.is_some_and(|l| written >= l) {
            // Longer than the hub said: stop reading; verification rejects it.
            break;
        }
        if let Err(e) = deadline.check(&url, written, expected) {
            out.flush().map_err(io)?;
            return Err(e);
        }
    }
    out.flush().map_err(io)?;
    if let Some(want) = job.size
        && written < want
    {
        return Err(HttpError::Transport {
            url: shown(&url),
            msg: format!("the connection closed after {written} of {want} bytes"),
            retry: true,
        });
    }
    Ok(())
}

/// A 416 to a range request means the part file is not a prefix the server knows
/// (the file changed, or the part is complete already): drop it and try again whole.
fn restart_on_416(
    r: Result<super::http::Response, HttpError>,
    part: &Path,
    have: u64,
) -> Result<super::http::Response, HttpError> {
    match r {
        Err(HttpError::Status { code: 416, url, .. }) if have > 0 => {
            let _ = std::fs::remove_file(part);
            Err(HttpError::Transport { url, msg: "the partial download cannot be resumed; starting over".into(), retry: true })
        }
        r => r,
    }
}

/// The hub's own statements about a file, on its 302 (or 200): they must agree with
/// what was asked for before a byte is read.
fn check_hub_headers(r: &super::http::Response, url: &str, commit: &str, job: &Job) -> Result<(), HttpError> {
    let bad = |msg: String| HttpError::Bad { url: shown(url), msg };
    if let Some(c) = r.header("x-repo-commit")
        && c != commit
    {
        return Err(bad(format!("the hub served commit {c}, not the requested {commit}")));
    }
    if let (Some(s), Some(want)) = (r.header("x-linked-size").and_then(|s| s.trim().parse::<u64>().ok()), job.size)
        && s != want
    {
        return Err(bad(format!("the hub says the file has {s} bytes, expected {want}")));
    }
    if let (Some(e), Some(want)) = (r.header("x-linked-etag"), &job.sha256) {
        let e = e.trim().trim_start_matches("W/").trim_matches('"');
        if super::cache::is_hex(e, 64) && e != want {
            return Err(bad(format!("the hub says the file's sha256 is {e}, expected {want}")));
        }
    }
    Ok(())
}

/// Size, sha256 and (optionally) git blob id of a file, in one read.
pub fn digest_file(path: &Path, git: bool) -> std::io::Result<(u64, String, Option<String>)> {
    let len = std::fs::metadata(path)?.len();
    let mut f = File::open(path)?;
    let mut sha = sha2::Sha256::new();
    let mut g = git.then(|| {
        let mut h = sha1::Sha1::new();
        h.update(format!("blob {len}\0").as_bytes());
        h
    });
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        if let Some(g) = g.as_mut() {
            g.update(&buf[..n]);
        }
    }
    Ok((len, hex(&sha.finalize()), g.map(|g| hex(&g.finalize()))))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(blob_dir: &str, sha256: Option<&str>) -> Job {
        Job {
            label: "source `s`: file `a.jsonl`".into(),
            short: "s: a.jsonl".into(),
            origin: Origin::Url("http://127.0.0.1:9/a.jsonl".into()),
            size: Some(3),
            sha256: sha256.map(str::to_string),
            git_oid: None,
            blob_dir: PathBuf::from(blob_dir),
            snapshot: None,
        }
    }

    #[test]
    fn blob_locks_live_where_huggingface_hub_keeps_them() {
        let sha = "a".repeat(64);
        assert_eq!(
            lock_path(&job("/c/hub/datasets--o--n/blobs", Some(&sha))),
            PathBuf::from(format!("/c/hub/.locks/datasets--o--n/{sha}.lock"))
        );
        assert_eq!(lock_path(&job("/c/curate/urls/blobs", Some(&sha))), PathBuf::from(format!("/c/curate/.locks/urls/{sha}.lock")));
    }

    #[test]
    fn a_taken_blob_lock_makes_the_other_download_wait() {
        let d = tempfile::tempdir().unwrap();
        let j = job(d.path().join("r/blobs").to_str().unwrap(), Some(&"b".repeat(64)));
        let first = lock_blob(&j, &|_| {}).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let j2 = j.clone();
        let waiter = std::thread::spawn(move || {
            let heard = Mutex::new(Vec::new());
            let second = lock_blob(&j2, &|m| heard.lock().unwrap().push(m)).unwrap();
            tx.send(heard.into_inner().unwrap()).unwrap();
            drop(second);
        });
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "the second lock waits while the first is held");
        drop(first);
        let heard = rx.recv_timeout(Duration::from_secs(10)).expect("the second lock is taken once the first is released");
        assert!(heard.iter().any(|m| m.contains("another run is downloading it")), "{heard:?}");
        waiter.join().unwrap();
    }

    #[test]
    fn the_deadline_is_a_floor_plus_the_size_at_the_minimum_rate() {
        let cfg = HttpConfig { deadline: Duration::from_secs(2), min_rate: 1000, ..HttpConfig::default() };
        let d = Deadline::new(&cfg);
        assert_eq!(d.allowed(3000), Some(Duration::from_secs(5)));
        assert!(d.check("http://x/a", 10, Some(3000)).is_ok());
        let late = Deadline { start: Instant::now() - Duration::from_secs(6), ..Deadline::new(&cfg) };
        let e = late.check("http://x/a?sig=1", 10, Some(3000)).unwrap_err();
        assert!(!e.retryable(), "a missed deadline is not retried");
        assert!(e.to_string().contains("10 of 3000 bytes") && !e.to_string().contains("sig=1"), "{e}");
        let off = Deadline { start: Instant::now() - Duration::from_secs(6), ..Deadline::new(&HttpConfig { min_rate: 0, ..cfg }) };
        assert_eq!(off.allowed(3000), None);
        assert!(off.check("http://x/a", 0, None).is_ok(), "`CURATE_HTTP_MIN_RATE=0` sets no deadline");
    }

    #[test]
    fn git_blob_ids_match_git() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"hello\n").unwrap();
        let (n, sha, git) = digest_file(&p, true).unwrap();
        assert_eq!(n, 6);
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(git.as_deref(), Some("ce013625030ba8dba906f756967f9e9ca394464a"));
        assert_eq!(sha, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
    }
}
