//! A small hub on 127.0.0.1 for the fetch tests: the parts of the Hugging Face hub's
//! HTTP API that `curate` uses, plus a separate "storage" server that its 302s point
//! at, with faults to inject.
//!
//! - `GET /api/{datasets|models}/{org}/{name}/revision/{rev}?blobs=true`: commit,
//!   card data and files (large files with an `lfs` sha256, small ones with a git
//!   `blobId`);
//! - `GET /{datasets/}{org}/{name}/resolve/{rev}/{path}`: small files directly with
//!   `X-Repo-Commit` and an `ETag`; large files as a 302 to the storage server with
//!   `X-Repo-Commit`, `X-Linked-ETag` and `X-Linked-Size` on the 302;
//! - storage `GET /blobs/{sha256}`: the bytes, honouring `Range`.
//!
//! Each server is one accept loop (non-blocking, polled) with a thread per
//! connection and one request per connection. Both stop when the `Hub` is dropped,
//! and on their own after two minutes.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::Digest;

/// Files larger than this are "LFS" files: listed with a sha256 and served by storage.
pub const LFS_ABOVE: usize = 256;

#[derive(Debug, Clone)]
pub struct Request {
    pub server: &'static str,
    pub path: String,
    pub authorization: Option<String>,
    pub range: Option<String>,
    pub status: u16,
    /// When the request was read.
    pub at: Instant,
}

#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer `code` to the next `times` requests whose path contains `on`.
    Status { on: String, code: u16, times: u32 },
    /// Send the headers and only `after` bytes of the body, then close.
    Drop { on: String, after: usize, times: u32 },
    /// Serve these bytes instead of the real body (always).
    Corrupt { on: String },
    /// Wait before answering.
    Delay { on: String, ms: u64, times: u32 },
    /// Answer 429 with this `Retry-After` to the next `times` requests.
    Throttle { on: String, retry_after: String, times: u32 },
    /// Send the body `chunk` bytes at a time, waiting `every_ms` between them (always).
    Trickle { on: String, chunk: usize, every_ms: u64 },
}

#[derive(Default)]
struct Repo {
    refs: BTreeMap<String, String>,
    commits: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    card: Value,
    tags: Vec<String>,
    gated_token: Option<String>,
}

#[derive(Default)]
struct State {
    repos: BTreeMap<String, Repo>,
    blobs: BTreeMap<String, Vec<u8>>,
    faults: Vec<Fault>,
    log: Vec<Request>,
}

pub struct Hub {
    pub url: String,
    pub storage: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    counter: AtomicU64,
}

pub fn sha256_hex(b: &[u8]) -> String {
    sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

fn git_oid(b: &[u8]) -> String {
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", b.len()).as_bytes());
    h.update(b);
    h.finalize().iter().map(|x| format!("{x:02x}")).collect()
}

fn key(kind: &str, id: &str) -> String {
    format!("{kind}/{id}")
}

impl Hub {
    pub fn start() -> Hub {
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let storage_l = TcpListener::bind("127.0.0.1:0").unwrap();
        let storage = format!("http://{}", storage_l.local_addr().unwrap());
        let hub_l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", hub_l.local_addr().unwrap());
        serve(hub_l, "hub", state.clone(), stop.clone(), storage.clone());
        serve(storage_l, "storage", state.clone(), stop.clone(), storage.clone());
        Hub { url, storage, state, stop, counter: AtomicU64::new(1) }
    }

    /// Commit `files` to `rev` (default branch `main`) of a repository (`datasets` or
    /// `models`), replacing what was there; returns the new commit id.
    pub fn commit(&self, kind: &str, id: &str, rev: &str, files: &[(&str, &[u8])]) -> String {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let mut h = sha1::Sha1::new();
        h.update(format!("{kind}{id}{rev}{n}").as_bytes());
        let commit: String = h.finalize().iter().map(|x| format!("{x:02x}")).collect();
        let mut st = self.state.lock().unwrap();
        let mut map = BTreeMap::new();
        for (p, b) in files {
            map.insert(p.to_string(), b.to_vec());
            st.blobs.insert(sha256_hex(b), b.to_vec());
        }
        let repo = st.repos.entry(key(kind, id)).or_default();
        repo.commits.insert(commit.clone(), map);
        repo.refs.insert(rev.to_string(), commit.clone());
        commit
    }

    pub fn dataset(&self, id: &str, files: &[(&str, &[u8])]) -> String {
        self.commit("datasets", id, "main", files)
    }

    pub fn set_card(&self, kind: &str, id: &str, card: Value, tags: &[&str]) {
        let mut st = self.state.lock().unwrap();
        let r = st.repos.entry(key(kind, id)).or_default();
        r.card = card;
        r.tags = tags.iter().map(|t| t.to_string()).collect();
    }

    pub fn gate(&self, id: &str, token: &str) {
        self.state.lock().unwrap().repos.entry(key("datasets", id)).or_default().gated_token = Some(token.to_string());
    }

    /// Replace a file's bytes at an existing commit (history rewritten in place).
    pub fn rewrite(&self, id: &str, commit: &str, path: &str, bytes: &[u8]) {
        let mut st = self.state.lock().unwrap();
        st.blobs.insert(sha256_hex(bytes), bytes.to_vec());
        st.repos.get_mut(&key("datasets", id)).unwrap().commits.get_mut(commit).unwrap().insert(path.to_string(), bytes.to_vec());
    }

    pub fn fault(&self, f: Fault) {
        self.state.lock().unwrap().faults.push(f);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }

    /// Requests seen so far whose path contains `on`.
    pub fn count(&self, on: &str) -> usize {
        self.requests().iter().filter(|r| r.path.contains(on)).count()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(l: TcpListener, name: &'static str, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>, storage: String) {
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            match l.accept() {
                Ok((s, _)) => {
                    let (state, storage) = (state.clone(), storage.clone());
                    std::thread::spawn(move || {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                        handle(s, name, &state, &storage);
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn answer(status: u16, body: impl Into<Vec<u8>>) -> Answer {
    Answer { status, headers: vec![], body: body.into() }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len()
            && let Ok(x) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn handle(s: TcpStream, server: &'static str, state: &Mutex<State>, storage: &str) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = BTreeMap::new();
    for _ in 0..100 {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let at = Instant::now();
    let path = target.split('?').next().unwrap_or("").to_string();
    let range = headers.get("range").cloned();
    let auth = headers.get("authorization").cloned();

    // Faults that apply to this request.
    let (mut status_fault, mut drop_after, mut corrupt, mut delay) = (None, None, false, 0);
    let (mut throttle, mut trickle) = (None, None);
    {
        let mut st = state.lock().unwrap();
        for f in st.faults.iter_mut() {
            match f {
                Fault::Status { on, code, times } if path.contains(on.as_str()) && *times > 0 && status_fault.is_none() => {
                    *times -= 1;
                    status_fault = Some(*code);
                }
                Fault::Drop { on, after, times } if path.contains(on.as_str()) && *times > 0 && drop_after.is_none() => {
                    *times -= 1;
                    drop_after = Some(*after);
                }
                Fault::Corrupt { on } if path.contains(on.as_str()) => corrupt = true,
                Fault::Delay { on, ms, times } if path.contains(on.as_str()) && *times > 0 => {
                    *times -= 1;
                    delay = *ms;
                }
                Fault::Throttle { on, retry_after, times } if path.contains(on.as_str()) && *times > 0 && throttle.is_none() => {
                    *times -= 1;
                    throttle = Some(retry_after.clone());
                }
                Fault::Trickle { on, chunk, every_ms } if path.contains(on.as_str()) => trickle = Some(((*chunk).max(1), *every_ms)),
                _ => {}
            }
        }
    }
    if delay > 0 {
        std::thread::sleep(Duration::from_millis(delay));
    }
    let mut a = match (status_fault, throttle) {
        (Some(code), _) => answer(code, "injected fault"),
        (None, Some(after)) => {
            let mut a = answer(429, "slow down");
            a.headers.push(("Retry-After".into(), after));
            a
        }
        (None, None) if server == "storage" => storage_answer(state, &path, range.as_deref()),
        (None, None) => hub_answer(state, &path, auth.as_deref(), storage),
    };
    if corrupt && a.status < 300 {
        for b in a.body.iter_mut().take(16) {
            *b ^= 0x55;
        }
    }
    state.lock().unwrap().log.push(Request { server, path: decode(&path), authorization: auth, range, status: a.status, at });
    let mut out = s;
    let mut head = format!("HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n", a.status, a.body.len());
    for (k, v) in &a.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = out.write_all(head.as_bytes());
    let body = match drop_after {
        Some(n) => &a.body[..n.min(a.body.len())],
        None => &a.body[..],
    };
    match trickle {
        Some((chunk, every_ms)) if a.status < 300 => {
            // Stops when the client hangs up, or after 30 s.
            let until = Instant::now() + Duration::from_secs(30);
            for c in body.chunks(chunk) {
                if out.write_all(c).and_then(|_| out.flush()).is_err() || Instant::now() > until {
                    break;
                }
                std::thread::sleep(Duration::from_millis(every_ms));
            }
        }
        _ => {
            let _ = out.write_all(body);
        }
    }
    let _ = out.flush();
    let _ = out.shutdown(std::net::Shutdown::Both);
    // Drain anything left so the close is clean.
    let _ = r.read(&mut [0u8; 64]);
}

fn storage_answer(state: &Mutex<State>, path: &str, range: Option<&str>) -> Answer {
    let st = state.lock().unwrap();
    let Some(sha) = path.strip_prefix("/blobs/") else { return answer(404, "no") };
    let Some(b) = st.blobs.get(sha) else { return answer(404, "no such blob") };
    if let Some(from) = range.and_then(|r| r.strip_prefix("bytes=")).and_then(|r| r.trim_end_matches('-').parse::<usize>().ok()) {
        if from >= b.len() {
            return answer(416, "");
        }
        let mut a = answer(206, b[from..].to_vec());
        a.headers.push(("Content-Range".into(), format!("bytes {from}-{}/{}", b.len() - 1, b.len())));
        return a;
    }
    answer(200, b.clone())
}

fn hub_answer(state: &Mutex<State>, path: &str, auth: Option<&str>, storage: &str) -> Answer {
    let st = state.lock().unwrap();
    let parts: Vec<String> = path.trim_start_matches('/').split('/').map(decode).collect();
    let p: Vec<&str> = parts.iter().map(String::as_str).collect();
    // /api/{kind}/{org}/{name}/revision/{rev}
    if let ["api", kind, org, name, "revision", rev] = p.as_slice() {
        let id = format!("{org}/{name}");
        let Some(repo) = st.repos.get(&key(kind, &id)) else { return answer(404, "{\"error\":\"Repository not found\"}") };
        if let Some(t) = &repo.gated_token {
            match auth {
                None => return answer(401, "{\"error\":\"Access to this dataset is restricted\"}"),
                Some(a) if a != format!("Bearer {t}") => return answer(403, "{\"error\":\"forbidden\"}"),
                _ => {}
            }
        }
        let commit = repo.refs.get(*rev).cloned().or_else(|| repo.commits.contains_key(*rev).then(|| rev.to_string()));
        let Some(commit) = commit else { return answer(404, "{\"error\":\"Revision not found\"}") };
        let files = &repo.commits[&commit];
        let siblings: Vec<Value> = files
            .iter()
            .map(|(p, b)| {
                if b.len() > LFS_ABOVE {
                    json!({"rfilename": p, "size": b.len(), "blobId": git_oid(b), "lfs": {"sha256": sha256_hex(b), "size": b.len(), "pointerSize": 130}})
                } else {
                    json!({"rfilename": p, "size": b.len(), "blobId": git_oid(b)})
                }
            })
            .collect();
        let body = json!({"id": id, "sha": commit, "cardData": repo.card, "tags": repo.tags, "siblings": siblings});
        return answer(200, body.to_string());
    }
    // /{datasets/}{org}/{name}/resolve/{rev}/{path…}
    let (kind, rest) = match p.first() {
        Some(&"datasets") => ("datasets", &p[1..]),
        _ => ("models", &p[..]),
    };
    if rest.len() >= 5 && rest[2] == "resolve" {
        let id = format!("{}/{}", rest[0], rest[1]);
        let rev = rest[3];
        let file = rest[4..].join("/");
        let Some(repo) = st.repos.get(&key(kind, &id)) else { return answer(404, "Repository not found") };
        if let Some(t) = &repo.gated_token
            && auth != Some(format!("Bearer {t}").as_str())
        {
            return answer(401, "restricted");
        }
        let commit = repo.refs.get(rev).cloned().or_else(|| repo.commits.contains_key(rev).then(|| rev.to_string()));
        let Some(commit) = commit else { return answer(404, "Revision not found") };
        let Some(b) = repo.commits[&commit].get(&file) else { return answer(404, "Entry not found") };
        if b.len() > LFS_ABOVE {
            let sha = sha256_hex(b);
            let mut a = answer(302, "");
            a.headers = vec![
                ("Location".into(), format!("{storage}/blobs/{sha}?X-Amz-Signature=secret")),
                ("X-Repo-Commit".into(), commit.clone()),
                ("X-Linked-Etag".into(), format!("\"{sha}\"")),
                ("X-Linked-Size".into(), b.len().to_string()),
                ("ETag".into(), format!("\"{}\"", git_oid(b))),
            ];
            return a;
        }
        let mut a = answer(200, b.clone());
        a.headers = vec![("X-Repo-Commit".into(), commit.clone()), ("ETag".into(), format!("\"{}\"", git_oid(b)))];
        return a;
    }
    answer(404, "unknown route")
}
