//! PII redaction: e-mail addresses, phone numbers, IPv4 and IPv6 addresses, and API
//! keys and secrets are replaced by a token naming their kind (`<EMAIL>`, `<PHONE>`,
//! `<IP_ADDRESS>`, `<SECRET>`), and the number of spans of each kind is returned for
//! the report.
//!
//! The patterns aim at few false positives on ordinary text, since a false positive
//! damages training data: decimals ("3.14"), years, dates, thousands separators and
//! version strings are left alone. Phone numbers are matched in two shapes only: an
//! international number starting with `+` (8 to 15 digits, as E.164 allows at most
//! 15) and the North American `(555) 123-4567` / `555-123-4567` shape. Secrets are
//! matched by their documented prefixes: OpenAI-style `sk-…`, AWS access key ids
//! (`AKIA…`, `ASIA…` and 16 more characters), GitHub tokens (`ghp_`, `gho_`, `ghu_`,
//! `ghs_`, `ghr_`, `github_pat_`), Slack (`xox?-`), Google API keys (`AIza…`), Hugging
//! Face (`hf_…`), a value assigned to `aws_secret_access_key`, and PEM private-key
//! blocks. Where spans overlap, secrets win over e-mails, e-mails over addresses, and
//! addresses over phone numbers.

use std::borrow::Cow;
use std::net::Ipv6Addr;
use std::sync::LazyLock;

use regex::Regex;

use crate::document::{Content, Message};

/// The kinds of span replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PiiKind {
    Secret,
    Email,
    Ipv6,
    Ipv4,
    Phone,
}

impl PiiKind {
    pub const ALL: [PiiKind; 5] = [PiiKind::Secret, PiiKind::Email, PiiKind::Ipv6, PiiKind::Ipv4, PiiKind::Phone];

    /// The replacement token.
    pub fn token(self) -> &'static str {
        match self {
            PiiKind::Secret => "<SECRET>",
            PiiKind::Email => "<EMAIL>",
            PiiKind::Ipv6 | PiiKind::Ipv4 => "<IP_ADDRESS>",
            PiiKind::Phone => "<PHONE>",
        }
    }

    /// The kind's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Secret => "secret",
            PiiKind::Email => "email",
            PiiKind::Ipv6 => "ipv6",
            PiiKind::Ipv4 => "ipv4",
            PiiKind::Phone => "phone",
        }
    }
}

/// Spans replaced, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PiiCounts {
    pub secret: u64,
    pub email: u64,
    pub ipv6: u64,
    pub ipv4: u64,
    pub phone: u64,
}

impl PiiCounts {
    pub fn get(&self, k: PiiKind) -> u64 {
        match k {
            PiiKind::Secret => self.secret,
            PiiKind::Email => self.email,
            PiiKind::Ipv6 => self.ipv6,
            PiiKind::Ipv4 => self.ipv4,
            PiiKind::Phone => self.phone,
        }
    }

    fn bump(&mut self, k: PiiKind) {
        match k {
            PiiKind::Secret => self.secret += 1,
            PiiKind::Email => self.email += 1,
            PiiKind::Ipv6 => self.ipv6 += 1,
            PiiKind::Ipv4 => self.ipv4 += 1,
            PiiKind::Phone => self.phone += 1,
        }
    }

    pub fn add(&mut self, o: &PiiCounts) {
        for k in PiiKind::ALL {
            for _ in 0..o.get(k) {
                self.bump(k);
            }
        }
    }

    pub fn total(&self) -> u64 {
        PiiKind::ALL.iter().map(|&k| self.get(k)).sum()
    }
}

/// A text after redaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted<'a> {
    /// Borrowed when nothing was replaced.
    pub text: Cow<'a, str>,
    pub counts: PiiCounts,
}

struct Patterns {
    /// (pattern, capture group to replace: 0 for the whole match)
    secrets: Vec<(Regex, usize)>,
    email: Regex,
    ipv4: Regex,
    ipv6: Regex,
    phone_intl: Regex,
    phone_nanp: Regex,
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| {
    let re = |p: &str| Regex::new(p).expect("pii pattern");
    Patterns {
        secrets: vec![
            (re(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )*PRIVATE KEY-----"), 0),
            (re(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"), 0),
            (re(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), 0),
            (re(r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b"), 0),
            (re(r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b"), 0),
            (re(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), 0),
            (re(r"\bAIza[0-9A-Za-z_-]{35}"), 0),
            (re(r"\bhf_[A-Za-z0-9]{30,}\b"), 0),
            (re(r#"(?i)aws_secret_access_key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})"#), 1),
        ],
        email: re(r"\b[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b"),
        ipv4: re(r"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\b"),
        ipv6: re(r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*"),
        phone_intl: re(r"\+[1-9][0-9]{0,2}(?:[ .-]?\(?[0-9]{1,4}\)?){1,5}[ .-]?[0-9]{2,4}\b"),
        phone_nanp: re(r"(?:\([0-9]{3}\) ?|\b[0-9]{3}[-. ])[0-9]{3}[-. ][0-9]{4}\b"),
    }
});

fn byte_before(t: &str, i: usize) -> Option<u8> {
    i.checked_sub(1).map(|j| t.as_bytes()[j])
}

fn byte_at(t: &str, i: usize) -> Option<u8> {
    t.as_bytes().get(i).copied()
}

/// Finds every span to replace: (start, end, kind), sorted, not overlapping.
pub fn find_pii(text: &str) -> Vec<(usize, usize, PiiKind)> {
    let p = &*PATTERNS;
    let mut spans: Vec<(usize, usize, PiiKind)> = Vec::new();
    for (re, group) in &p.secrets {
        for c in re.captures_iter(text) {
            let m = c.get(*group).expect("group");
            spans.push((m.start(), m.end(), PiiKind::Secret));
        }
    }
    for m in p.email.find_iter(text) {
        spans.push((m.start(), m.end(), PiiKind::Email));
    }
    for m in p.ipv4.find_iter(text) {
        // Not part of a longer dotted number (a version such as 1.2.3.4.5).
        let before = byte_before(text, m.start());
        let after = (byte_at(text, m.end()), byte_at(text, m.end() + 1));
        if before.is_some_and(|b| b == b'.' || b.is_ascii_digit()) {
            continue;
        }
        if after.0 == Some(b'.') && after.1.is_some_and(|b| b.is_ascii_digit()) {
            continue;
        }
        spans.push((m.start(), m.end(), PiiKind::Ipv4));
    }
    for m in p.ipv6.find_iter(text) {
        let s = m.as_str().trim_end_matches('.');
        let (start, end) = (m.start(), m.start() + s.len());
        let boundary = |b: Option<u8>| b.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'_'));
        if !boundary(byte_before(text, start)) || !boundary(byte_at(text, end)) {
            continue;
        }
        let hex = s.bytes().filter(u8::is_ascii_hexdigit).count();
        if hex < 4 || s.parse::<Ipv6Addr>().is_err() {
            continue;
        }
        spans.push((start, end, PiiKind::Ipv6));
    }
    let digits = |s: &str| s.bytes().filter(u8::is_ascii_digit).count();
    for m in p.phone_intl.find_iter(text) {
        let d = digits(m.as_str());
        if (8..=15).contains(&d) && !byte_at(text, m.end()).is_some_and(|b| b.is_ascii_digit()) {
            spans.push((m.start(), m.end(), PiiKind::Phone));
        }
    }
    for m in p.phone_nanp.find_iter(text) {
        let before = byte_before(text, m.start());
        if before.is_some_and(|b| b.is_ascii_digit() || b == b'-' || b == b'.' || b == b'+') {
            continue;
        }
        spans.push((m.start(), m.end(), PiiKind::Phone));
    }
    // Earliest first; at one start, the higher-priority kind, then the longer span.
    spans.sort_by_key(|&(s, e, k)| (s, k, std::cmp::Reverse(e)));
    let mut out: Vec<(usize, usize, PiiKind)> = Vec::with_capacity(spans.len());
    for sp in spans {
        match out.last_mut() {
            Some(last) if sp.0 < last.1 => {
                // Overlap: keep the higher-priority kind (lower in the enum order).
                if sp.2 < last.2 {
                    *last = sp;
                }
            }
            _ => out.push(sp),
        }
    }
    out
}

/// Replaces every PII span of `text` with its kind's token.
pub fn redact(text: &str) -> Redacted<'_> {
    let spans = find_pii(text);
    if spans.is_empty() {
        return Redacted { text: Cow::Borrowed(text), counts: PiiCounts::default() };
    }
    let mut counts = PiiCounts::default();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (s, e, k) in spans {
        out.push_str(&text[at..s]);
        out.push_str(k.token());
        counts.bump(k);
        at = e;
    }
    out.push_str(&text[at..]);
    Redacted { text: Cow::Owned(out), counts }
}

/// Redacts every piece of a document's content. The content is `None` when nothing
/// was replaced.
pub fn redact_content(content: &Content) -> (Option<Content>, PiiCounts) {
    match content {
        Content::Text(t) => {
            let r = redact(t);
            match r.text {
                Cow::Borrowed(_) => (None, r.counts),
                Cow::Owned(s) => (Some(Content::Text(s)), r.counts),
            }
        }
        Content::Messages(ms) => {
            let mut counts = PiiCounts::default();
            let mut changed = false;
            let out: Vec<Message> = ms
                .iter()
                .map(|m| {
                    let r = redact(&m.content);
                    counts.add(&r.counts);
                    changed |= matches!(r.text, Cow::Owned(_));
                    Message { role: m.role, content: r.text.into_owned() }
                })
                .collect();
            (changed.then_some(Content::Messages(out)), counts)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red(t: &str) -> (String, PiiCounts) {
        let r = redact(t);
        (r.text.into_owned(), r.counts)
    }

    #[test]
    fn emails() {
        let (t, c) = red("Write to jane.doe+news@example.co.uk or BOB@mail.example.org.");
        assert_eq!(t, "Write to <EMAIL> or <EMAIL>.");
        assert_eq!(c.email, 2);
        assert_eq!(c.total(), 2);
    }

    #[test]
    fn phone_numbers() {
        let (t, c) = red("Call +44 20 7946 0958, (555) 123-4567 or 555.123.4567 today.");
        assert_eq!(t, "Call <PHONE>, <PHONE> or <PHONE> today.");
        assert_eq!(c.phone, 3);
        let (t, c) = red("Our US line is +1-202-555-0143.");
        assert_eq!((t.as_str(), c.phone), ("Our US line is <PHONE>.", 1));
    }

    #[test]
    fn ip_addresses() {
        let (t, c) = red("Server 192.168.0.1 and 2001:db8:85a3::8a2e:370:7334, loopback ::1 and fe80::1ff:fe23:4567:890a.");
        assert_eq!(t, "Server <IP_ADDRESS> and <IP_ADDRESS>, loopback ::1 and <IP_ADDRESS>.");
        assert_eq!((c.ipv4, c.ipv6), (1, 2));
    }

    #[test]
    fn secrets() {
        let text = "key sk-abcdefghijklmnopqrstuvwx12 aws AKIAZZZZEXAMPLE12345 gh ghp_abcdefghijklmnopqrstuvwxyz0123456789 \
                    google AIzaSyA1234567890abcdefghijklmnopqrstuv hf hf_abcdefghijklmnopqrstuvwxyz012345\n\
                    aws_secret_access_key = abcdEFGHijklMNOPqrstUVWXyz0123456789/+AB\n\
                    -----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----";
        let (t, c) = red(text);
        assert_eq!(c.secret, 7, "{t}");
        assert_eq!(
            t,
            "key <SECRET> aws <SECRET> gh <SECRET> google <SECRET> hf <SECRET>\naws_secret_access_key = <SECRET>\n<SECRET>"
        );
    }

    #[test]
    fn ordinary_numbers_are_left_alone() {
        let plain = [
            "Pi is 3.14159 and e is 2.71828.",
            "In 1969, 2001 and 2023 things happened.",
            "The meeting is on 2023-10-12 at 10:30:00.",
            "Population: 1,234,567 people; 12.5% growth.",
            "Upgrade from 1.2.3.4.5 to version 2.0.1.",
            "Call me at 5pm; room 404; ISBN 978-3-16-148410-0.",
            "Use std::vec::Vec and a::b in Rust.",
            "The score was 3 - 2 and then 10 - 4.",
        ];
        for p in plain {
            let r = redact(p);
            assert!(matches!(r.text, Cow::Borrowed(_)), "{p} -> {}", r.text);
            assert_eq!(r.counts.total(), 0);
        }
    }

    #[test]
    fn overlaps_keep_the_stronger_kind() {
        // An e-mail's domain is not an IP address; a secret is not split into phones.
        let (t, c) = red("admin@10.0.0.1.example.com and sk-1234567890123456789012345");
        assert_eq!(t, "<EMAIL> and <SECRET>");
        assert_eq!((c.email, c.secret, c.ipv4, c.phone), (1, 1, 0, 0));
    }

    #[test]
    fn chats_are_redacted_per_message() {
        use crate::recipe::Role;
        let c = Content::Messages(vec![
            Message { role: Role::User, content: "mail me: a@b.io".into() },
            Message { role: Role::Assistant, content: "Sure.".into() },
        ]);
        let (new, counts) = redact_content(&c);
        let Some(Content::Messages(ms)) = new else { panic!() };
        assert_eq!(ms[0].content, "mail me: <EMAIL>");
        assert_eq!(ms[1].content, "Sure.");
        assert_eq!(counts.email, 1);
        assert_eq!(redact_content(&Content::Text("nothing".into())), (None, PiiCounts::default()));
    }
}
