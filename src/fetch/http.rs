//! The HTTP client: one `ureq` agent, retries with backoff, size limits on metadata,
//! and the rules for the token.
//!
//! - The token (`HF_TOKEN`) goes only to the hub endpoint's own origin (scheme, host
//!   and port). Redirects are never followed by the agent: the caller follows them
//!   where the hub uses them (file resolves), and a hop to another origin, such as the
//!   storage host a 302 points at, is made without the token.
//! - Retried: 5xx, 408 and 429 answers, timeouts, resets and bodies cut short. Not
//!   retried: other 4xx, which will not change on their own. A 429 or 503 that says
//!   `Retry-After` (seconds or an HTTP date) is retried after that long, at most
//!   [`MAX_RETRY_AFTER`], instead of the backoff.
//! - Metadata bodies are read to a limit; a bigger one is an error, not an allocation.
//! - Error messages name URLs without their query string (storage URLs carry
//!   signatures there).

use std::io::Read;
use std::time::Duration;

use url::Url;

/// The hub token. Its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(s: String) -> Option<Token> {
        let s = s.trim().to_string();
        (!s.is_empty()).then_some(Token(s))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<hidden>)")
    }
}

/// The longest `Retry-After` honoured; a server asking for more is retried after this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// What went wrong with one request.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("`{url}` answered {code}{}{}", reason(*code), after(retry_after))]
    Status { code: u16, url: String, retry_after: Option<Duration> },
    #[error("`{url}` did not answer within {secs}s")]
    Timeout { url: String, secs: u64 },
    #[error("`{url}`: {msg}")]
    Transport { url: String, msg: String, retry: bool },
    #[error("`{url}` sent more than {limit} bytes of metadata")]
    TooLarge { url: String, limit: u64 },
    #[error("`{url}` redirected to `{location}`, which the hub does not do for this request")]
    UnexpectedRedirect { url: String, location: String },
    /// A `url` source answered with a redirect: it must name the file itself.
    #[error(
        "`{url}` redirected to `{location}`; a `url` source is not followed through redirects, so that the recipe names where its bytes come from\nhint: if you trust the new location, write it as the source's `url`"
    )]
    UrlRedirect { url: String, location: String },
    /// The file did not arrive within its deadline (see `download`).
    #[error("`{url}`: {msg}")]
    TooSlow { url: String, msg: String },
    #[error("`{url}`: {msg}")]
    Bad { url: String, msg: String },
}

fn reason(code: u16) -> &'static str {
    match code {
        401 => " (unauthorized)",
        403 => " (forbidden)",
        404 => " (not found)",
        408 => " (request timeout)",
        416 => " (range not satisfiable)",
        429 => " (too many requests)",
        500 => " (internal server error)",
        502 => " (bad gateway)",
        503 => " (service unavailable)",
        504 => " (gateway timeout)",
        _ => "",
    }
}

fn after(d: &Option<Duration>) -> String {
    match d {
        Some(d) => format!(", asking to retry after {}s", d.min(&MAX_RETRY_AFTER).as_secs()),
        None => String::new(),
    }
}

/// The wait a `Retry-After` value asks for: delay-seconds, or an HTTP date (IMF-fixdate,
/// `Sun, 06 Nov 1994 08:49:37 GMT`) measured from `now` (a date in the past is no
/// wait). Other forms give `None`, and the backoff applies.
pub fn parse_retry_after(v: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = parse_http_date(v)?;
    let now = now.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Seconds since 1970 of an IMF-fixdate.
fn parse_http_date(v: &str) -> Option<u64> {
    let (_, rest) = v.split_once(", ")?;
    let p: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = p.as_slice() else { return None };
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].iter().position(|m| m == month)? as u64 + 1;
    let (day, year): (u64, u64) = (day.parse().ok()?, year.parse().ok()?);
    let t: Vec<u64> = time.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let [h, m, s] = t.as_slice() else { return None };
    if !(1..=31).contains(&day) || year < 1970 || *h > 23 || *m > 59 || *s > 60 {
        return None;
    }
    // Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146097 + doe).checked_sub(719468)?;
    Some(days * 86400 + h * 3600 + m * 60 + s)
}

impl HttpError {
    /// The wait a 429 or 503 asked for with `Retry-After`, capped at [`MAX_RETRY_AFTER`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            HttpError::Status { retry_after: Some(d), .. } => Some((*d).min(MAX_RETRY_AFTER)),
            _ => None,
        }
    }

    pub fn retryable(&self) -> bool {
        match self {
            HttpError::Status { code, .. } => *code >= 500 || *code == 408 || *code == 429,
            HttpError::Timeout { .. } => true,
            HttpError::Transport { retry, .. } => *retry,
            _ => false,
        }
    }
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A URL as errors show it: no query string, no user info.
pub fn shown(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => url.split('?').next().unwrap_or(url).to_string(),
    }
}

/// How requests are made: timeouts, retries, the endpoint and its token.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// No bytes for this long (connecting, waiting for an answer, or mid-body) fails
    /// the attempt.
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// The first backoff; doubled after each failed attempt, capped at 30 s.
    pub backoff: Duration,
    /// Say on stderr when a metadata request is retried.
    pub report_retries: bool,
    /// Every downloaded file may take this long, all attempts together, plus its size
    /// at `min_rate`.
    pub deadline: Duration,
    /// Bytes per second; 0 sets no deadline.
    pub min_rate: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            timeout: Duration::from_secs(60),
            retries: 5,
            backoff: Duration::from_millis(500),
            report_retries: true,
            deadline: Duration::from_secs(300),
            min_rate: 32 << 10,
        }
    }
}

pub struct Http {
    agent: ureq::Agent,
    pub config: HttpConfig,
    /// The origin the token may go to (the hub endpoint's).
    token_origin: Option<url::Origin>,
    token: Option<Token>,
}

/// One response: its status, the headers the fetcher reads, and the body.
pub struct Response {
    pub status: u16,
    pub url: String,
    inner: ureq::Response,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.header(name)
    }
    pub fn into_reader(self) -> Box<dyn Read + Send + Sync + 'static> {
        self.inner.into_reader()
    }
}

impl Http {
    pub fn new(config: HttpConfig, endpoint: &Url, token: Option<Token>) -> Http {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(config.timeout)
            .timeout_read(config.timeout)
            .timeout_write(config.timeout)
            .user_agent(concat!("curate/", env!("CARGO_PKG_VERSION")))
            .build();
        Http { agent, config, token_origin: Some(endpoint.origin()), token }
    }

    /// Whether the token would be sent to `url`.
    pub fn sends_token_to(&self, url: &Url) -> bool {
        self.token.is_some() && self.token_origin.as_ref() == Some(&url.origin())
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// One GET, no retries, no redirects followed (a 3xx comes back as a response).
    /// `range_from` asks for the bytes from that offset on.
    pub fn get_once(&self, url: &str, range_from: Option<u64>) -> Result<Response, HttpError> {
        let parsed = Url::parse(url).map_err(|e| HttpError::Bad { url: shown(url), msg: format!("not a URL: {e}") })?;
        let mut req = self.agent.get(url);
        if self.sends_token_to(&parsed)
            && let Some(t) = &self.token
        {
            req = req.set("Authorization", &format!("Bearer {}", t.0));
        }
        if let Some(from) = range_from.filter(|&f| f > 0) {
            req = req.set("Range", &format!("bytes={from}-"));
        }
        match req.call() {
            Ok(r) => Ok(Response { status: r.status(), url: url.to_string(), inner: r }),
            Err(ureq::Error::Status(code, r)) => {
                let retry_after = if matches!(code, 429 | 503) {
                    r.header("retry-after").and_then(|v| parse_retry_after(v, std::time::SystemTime::now()))
                } else {
                    None
                };
                Err(HttpError::Status { code, url: shown(url), retry_after })
            }
            Err(ureq::Error::Transport(t)) => Err(self.transport(url, &t)),
        }
    }

    fn transport(&self, url: &str, t: &ureq::Transport) -> HttpError {
        use std::error::Error;
        let mut src: Option<&dyn Error> = t.source();
        while let Some(e) = src {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                return self.io_error(url, io);
            }
            src = e.source();
        }
        let retry = !matches!(
            t.kind(),
            ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme | ureq::ErrorKind::InsecureRequestHttpsOnly
        );
        let msg = t.message().map(str::to_string).unwrap_or_else(|| t.kind().to_string());
        HttpError::Transport { url: shown(url), msg, retry }
    }

    /// Map an I/O error while talking to `url`: timeouts and resets are retried.
    pub fn io_error(&self, url: &str, e: &std::io::Error) -> HttpError {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::TimedOut | K::WouldBlock => HttpError::Timeout { url: shown(url), secs: self.config.timeout.as_secs().max(1) },
            _ => HttpError::Transport { url: shown(url), msg: e.to_string(), retry: true },
        }
    }

    /// Run `attempt` until it succeeds, fails for good, or the retries are spent,
    /// sleeping with exponential backoff between tries, or as long as a `Retry-After`
    /// asked (capped). `on_retry` hears of each retry.
    pub fn retrying<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, HttpError>,
        mut on_retry: impl FnMut(&HttpError, u32),
    ) -> Result<T, HttpError> {
        let mut wait = self.config.backoff;
        let mut n = 0;
        loop {
            match attempt() {
                Ok(v) => return Ok(v),
                Err(e) if e.retryable() && n < self.config.retries => {
                    n += 1;
                    on_retry(&e, n);
                    std::thread::sleep(e.retry_after().unwrap_or(wait));
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// GET a JSON document of at most `limit` bytes, retried; a redirect is an error.
    pub fn get_json(&self, url: &str, limit: u64) -> Result<serde_json::Value, HttpError> {
        self.retrying(
            || {
                let r = self.get_once(url, None)?;
                if (300..400).contains(&r.status) {
                    let location = r.header("location").unwrap_or("").to_string();
                    return Err(HttpError::UnexpectedRedirect { url: shown(url), location: shown(&location) });
                }
                let mut body = Vec::new();
                r.into_reader()
                    .take(limit + 1)
                    .read_to_end(&mut body)
                    .map_err(|e| self.io_error(url, &e))?;
                if body.len() as u64 > limit {
                    return Err(HttpError::TooLarge { url: shown(url), limit });
                }
                serde_json::from_slice(&body)
                    .map_err(|e| HttpError::Bad { url: shown(url), msg: format!("not the JSON the hub sends: {e}") })
            },
            |e, n| {
                if self.config.report_retries {
                    eprintln!("curate: {e}; retrying ({n}/{})", self.config.retries);
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_never_shows() {
        let t = Token::new("hf_secret".into()).unwrap();
        assert!(!format!("{t:?}").contains("secret"));
    }

    #[test]
    fn token_goes_to_the_endpoint_origin_only() {
        let ep = Url::parse("https://huggingface.co").unwrap();
        let h = Http::new(HttpConfig::default(), &ep, Token::new("x".into()));
        assert!(h.sends_token_to(&Url::parse("https://huggingface.co/api/datasets/a/b").unwrap()));
        assert!(!h.sends_token_to(&Url::parse("https://cdn-lfs.huggingface.co/x").unwrap()));
        assert!(!h.sends_token_to(&Url::parse("http://huggingface.co/x").unwrap()));
        assert!(!h.sends_token_to(&Url::parse("https://huggingface.co:8443/x").unwrap()));
    }

    /// Answer each of `answers` to one connection, in order, on 127.0.0.1.
    fn serve(answers: Vec<String>) -> String {
        use std::io::{BufRead, BufReader, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        std::thread::spawn(move || {
            for a in answers {
                let Ok((s, _)) = l.accept() else { return };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let mut s = s;
                let _ = s.write_all(a.as_bytes());
            }
        });
        url
    }

    fn http(url: &str) -> Http {
        let cfg = HttpConfig { retries: 0, report_retries: false, ..HttpConfig::default() };
        Http::new(cfg, &Url::parse(url).unwrap(), None)
    }

    #[test]
    fn metadata_over_the_limit_is_refused() {
        let body = format!("[{}]", "1,".repeat(100) + "1");
        let url = serve(vec![format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())]);
        let e = http(&url).get_json(&format!("{url}/api/x"), 64).unwrap_err();
        assert!(matches!(e, HttpError::TooLarge { limit: 64, .. }), "{e}");
        assert!(e.to_string().contains("more than 64 bytes"), "{e}");
    }

    #[test]
    fn metadata_calls_follow_no_redirect() {
        let url = serve(vec!["HTTP/1.1 302 Found\r\nLocation: http://elsewhere.example/x?sig=1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()]);
        let e = http(&url).get_json(&format!("{url}/api/x"), 1 << 20).unwrap_err();
        assert!(matches!(e, HttpError::UnexpectedRedirect { .. }), "{e}");
        assert!(!e.to_string().contains("sig=1"), "no query strings in messages: {e}");
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        use std::time::{SystemTime, UNIX_EPOCH};
        // 1994-11-06 08:49:37 UTC.
        let at = UNIX_EPOCH + Duration::from_secs(784111777);
        assert_eq!(parse_retry_after("120", at), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", at), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", at), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:30 GMT", at), Some(Duration::ZERO), "a past date is no wait");
        assert_eq!(parse_retry_after("Thu, 01 Jan 2026 00:00:00 GMT", UNIX_EPOCH + Duration::from_secs(1767225540)), Some(Duration::from_secs(60)));
        for bad in ["", "soon", "-1", "1.5", "Sun, 06 Nov 1994 08:49:40", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun, 32 Nov 1994 08:49:40 GMT"] {
            assert_eq!(parse_retry_after(bad, SystemTime::now()), None, "{bad:?}");
        }
        let e = HttpError::Status { code: 429, url: "u".into(), retry_after: Some(Duration::from_secs(86400)) };
        assert_eq!(e.retry_after(), Some(MAX_RETRY_AFTER), "capped");
    }

    #[test]
    fn a_429_waits_as_its_retry_after_says() {
        let url = serve(vec![
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]".into(),
        ]);
        let cfg = HttpConfig { retries: 1, backoff: Duration::from_millis(10), report_retries: false, ..HttpConfig::default() };
        let h = Http::new(cfg, &Url::parse(&url).unwrap(), None);
        let started = std::time::Instant::now();
        assert_eq!(h.get_json(&format!("{url}/api/x"), 64).unwrap(), serde_json::json!([]));
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(950) && took < Duration::from_secs(10), "waited {took:?}");
    }

    #[test]
    fn shown_urls_lose_their_query() {
        assert_eq!(shown("https://s.example/x?X-Amz-Signature=abc"), "https://s.example/x");
    }
}
