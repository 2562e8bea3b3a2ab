//! File readers: each turns one input file into a stream of raw records, in file order,
//! without holding the file in memory.
//!
//! A reader separates two kinds of trouble. A *bad record* (a malformed JSON line, a
//! row that is not UTF-8, a record over the size limit) is handed on as a
//! [`Body::Bad`] so that the source's `on_error` decides: stop with an error naming the
//! file and row, or ledger it and go on. A *bad file* (missing, unreadable, a truncated
//! Parquet footer, a corrupt gzip stream, a JSON array cut short) is an error at once:
//! going on would give a silently shorter output.
//!
//! `max_record_bytes` holds while reading, for every reader: no reader keeps more than
//! about that many bytes of one record, however long the record is (a line, a JSON
//! array element, a CSV record, a text file). Parquet rows are checked once decoded:
//! a Parquet page is read whole.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use serde_json::Value;

use super::files::{Compression, InputFile};
use crate::ledger::{DropReason, Rule};
use crate::recipe::ReaderKind;

/// What a reader found at one place in a file.
#[derive(Debug)]
pub enum Body {
    /// A JSONL line, parsed later (in parallel) by the mapping stage.
    Line(Vec<u8>),
    /// A value already parsed (JSON array element, Parquet row, CSV row as strings).
    Value(Value),
    /// A whole text file.
    Text(String),
    /// A record that could not be read, and why.
    Bad(DropReason),
}

#[derive(Debug)]
pub struct RawRecord {
    pub file: Arc<str>,
    pub row: u64,
    /// Bytes this record took in the (decompressed) file, for throughput figures.
    pub bytes: u64,
    pub body: Body,
    /// The first record of its file (set by the driver), where column checks happen.
    pub first: bool,
}

fn open(file: &InputFile) -> anyhow::Result<Box<dyn BufRead + Send>> {
    let f = File::open(&file.path).with_context(|| format!("cannot open `{}`", file.path.display()))?;
    let buffered = BufReader::with_capacity(1 << 20, f);
    let r: Box<dyn BufRead + Send> = match file.compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(BufReader::with_capacity(1 << 20, flate2::bufread::MultiGzDecoder::new(buffered))),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            1 << 20,
            zstd::stream::read::Decoder::with_buffer(buffered)
                .with_context(|| format!("cannot start zstd decoding of `{}`", file.path.display()))?,
        )),
    };
    Ok(r)
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Drop a UTF-8 byte-order mark at the start of the stream (editors on Windows write
/// one); the bytes read to look for it are put back otherwise.
fn skip_bom(mut r: Box<dyn BufRead + Send>) -> io::Result<Box<dyn BufRead + Send>> {
    let mut head = Vec::with_capacity(3);
    while head.len() < 3 {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len().min(3 - head.len());
        head.extend_from_slice(&chunk[..n]);
        r.consume(n);
        if !BOM.starts_with(&head) {
            break;
        }
    }
    if head == BOM {
        head.clear();
    }
    Ok(if head.is_empty() { r } else { Box::new(io::Cursor::new(head).chain(r)) })
}

/// Read a file, calling `emit` for each record in order. `emit` returns false to stop
/// early (a `limit` was reached, or the run is failing).
pub fn read_file(
    file: &InputFile,
    max_record_bytes: u64,
    emit: &mut dyn FnMut(RawRecord) -> bool,
) -> anyhow::Result<()> {
    let name: Arc<str> = file.display.as_str().into();
    let ctx = || format!("reading `{}`", file.path.display());
    match file.reader {
        ReaderKind::Jsonl => read_lines(skip_bom(open(file)?).with_context(ctx)?, &name, max_record_bytes, emit).with_context(ctx),
        ReaderKind::Json => read_json(skip_bom(open(file)?).with_context(ctx)?, &name, max_record_bytes, emit).with_context(ctx),
        // The CSV parser would skip a byte-order mark itself, but the scanner that
        // limits records must not see it either.
        ReaderKind::Csv => read_csv(skip_bom(open(file)?).with_context(ctx)?, b',', &name, max_record_bytes, emit).with_context(ctx),
        ReaderKind::Tsv => read_csv(skip_bom(open(file)?).with_context(ctx)?, b'\t', &name, max_record_bytes, emit).with_context(ctx),
        ReaderKind::Parquet => read_parquet(file, &name, max_record_bytes, emit).with_context(ctx),
        ReaderKind::Txt => read_text(open(file)?, &name, max_record_bytes, emit).with_context(ctx),
    }
}

/// A part of one file that a task reads: the whole file, a byte range of an
/// uncompressed JSON Lines file that starts and ends at line boundaries, or a range of
/// a Parquet file's row groups. `first_row` is the 1-based number of the part's first
/// record in the whole file, so rows stay file rows whichever part reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Part {
    Whole,
    Lines { start: u64, end: u64, first_row: u64 },
    RowGroups { start: usize, end: usize, first_row: u64 },
}

impl Part {
    /// Whether the part starts at the beginning of its file: its first record is the
    /// file's first (where column checks happen) and it accounts for the file's bytes.
    pub fn starts_file(self) -> bool {
        matches!(self, Part::Whole | Part::Lines { start: 0, .. } | Part::RowGroups { start: 0, .. })
    }
}

/// Read one part of a file, calling `emit` for each record in order.
pub fn read_part(
    file: &InputFile,
    part: Part,
    max_record_bytes: u64,
    emit: &mut dyn FnMut(RawRecord) -> bool,
) -> anyhow::Result<()> {
    let name: Arc<str> = file.display.as_str().into();
    let ctx = || format!("reading `{}`", file.path.display());
    match part {
        Part::Whole => read_file(file, max_record_bytes, emit),
        Part::Lines { start, end, first_row } => {
            use std::io::{Seek, SeekFrom};
            if file.reader != ReaderKind::Jsonl || file.compression != Compression::None {
                anyhow::bail!("`{}` cannot be read in byte ranges", file.display);
            }
            let mut f = File::open(&file.path).with_context(|| format!("cannot open `{}`", file.path.display()))?;
            f.seek(SeekFrom::Start(start)).with_context(ctx)?;
            let r: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(1 << 20, f.take(end - start)));
            let r = if start == 0 { skip_bom(r).with_context(ctx)? } else { r };
            read_lines_from(r, &name, max_record_bytes, first_row - 1, emit).with_context(ctx)
        }
        Part::RowGroups { start, end, first_row } => {
            read_parquet_groups(file, &name, max_record_bytes, Some((start, end, first_row)), emit).with_context(ctx)
        }
    }
}

/// Outcome of reading one line under a size limit.
enum Line {
    Eof,
    /// A whole line, now in `buf`.
    Whole,
    /// The line was longer than the limit; it was skipped over without being kept.
    TooLong(u64),
}

/// Read one `\n`-terminated line into `buf` (without the terminator), never holding
/// more than `max` bytes of it.
fn read_line_limited(r: &mut dyn BufRead, buf: &mut Vec<u8>, max: u64) -> io::Result<Line> {
    buf.clear();
    let mut total: u64 = 0;
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (take, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        total += take as u64;
        if !too_long {
            if total > max {
                too_long = true;
                buf.clear();
                buf.shrink_to(1 << 16);
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        r.consume(if done { take + 1 } else { take });
        if done {
            break;
        }
    }
    if !any {
        return Ok(Line::Eof);
    }
    if buf.last() == Some(&b'\r') && !too_long {
        buf.pop();
    }
    Ok(if too_long { Line::TooLong(total) } else { Line::Whole })
}

fn too_large(bytes: u64, max: u64) -> DropReason {
    DropReason::new(
        Rule::TooLarge,
        Some(bytes as f64),
        format!("record is {} bytes, over max_record_bytes = {max}", bytes),
    )
}

fn read_lines(
    r: Box<dyn BufRead + Send>,
    name: &Arc<str>,
    max: u64,
    emit: &mut dyn FnMut(RawRecord) -> bool,
) -> anyhow::Result<()> {
    read_lines_from(r, name, max, 0, emit)
}

/// Lines numbered from `rows_before + 1`.
fn read_lines_from(
    mut r: Box<dyn BufRead + Send>,
    name: &Arc<str>,
    max: u64,
    rows_before: u64,
    emit: &mut dyn FnMut(RawRecord) -> bool,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let mut row = rows_before;
    loop {
        let line = read_line_limited(&mut *r, &mut buf, max).with_context(|| format!("after line {row}"))?;
        row += 1;
        let rec = match line {
            Line::Eof => return Ok(()),
            Line::TooLong(n) => RawRecord { file: name.clone(), row, bytes: n, body: Body::Bad(too_large(n, max)), first: false },
            Line::Whole => {
                if buf.iter().all(|b| b.is_ascii_whitespace()) {
                    // Blank lines hold no record; they keep their number so that rows
                    // stay equal to line numbers.
                    continue;
                }
                RawRecord { file: name.clone(), row, bytes: buf.len() as u64 + 1, body: Body::Line(std::mem::take(&mut buf)), first: false }
            }
        };
        if !emit(rec) {
            return Ok(());
        }
    }
}

/// A JSON file: an array of records (streamed element by element), or, when the first
/// non-space byte is `{`, JSON Lines under a `.json` name (common on the hub).
fn read_json(
    mut r: Box<dyn BufRead + Send>,
    name: &Arc<str>,
    max: u64,
    emit: &mut dyn FnMut(RawRecord) -> bool,
) -> anyhow::Result<()> {
    let first = loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let b = buf[i];
                r.consume(i);
                break b;
            }
            None => {
                let n = buf.len();
                r.consume(n);
            }
        }
    };
    match first {
        b'{' => read_lines(r, name, max, emit),
        b'[' => {
            r.consume(1);
            stream_array(r, name, max, emit)
        }
        other => Err(anyhow!(
            "expected a JSON array (`[`) or JSON Lines (`{{`), found `{}`",
            (other as char).escape_default()
        )),
    }
}

/// Append `bytes` to the record in `buf`, unless the record (`total` bytes so far) is
/// over `max`: then it is dropped and only counted from here on.
fn keep_limited(buf: &mut Vec<u8>, bytes: &[u8], total: &mut u64, too_long: &mut bool, max: u64) {
    *total += bytes.len() as u64;
    if *too_long {
        return;
    }
    if *total > max {
        *too_long = true;
        buf.clear();
        buf.shrink_to(1 << 16);
    } else {
        buf.extend_from_slice(bytes);
    }
}

/// The elements of a JSON array, after its `[`. The array is split into elements by
/// its structure (brackets and strings), without parsing them: each element goes on
/// as a [`Body::Line`] and is parsed by the mapping stage. An element that is not valid
/// JSON is therefore a bad record, and one over `max` is skipped over without being
/// held. An array cut short, or data after it, is a bad file.
fn stream_array(
    mut r: Box<dyn BufRead + Send>,
    name: &Arc<str>,
    max: u64,
    emit: &mut dyn FnMut(RawRecord) -> bool,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let mut total = 0u64;
    let mut too_long = false;
    let mut row = 0u64;
    let (mut in_str, mut esc, mut depth) = (false, false, 0u64);
    let mut closed = false;
    while !closed {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow!("after array element {row}: {e}")),
        };
        if chunk.is_empty() {
            return Err(anyhow!(
                "invalid JSON array: the file ends inside element {} before the array's closing `]` (truncated?)",
                row + 1
            ));
        }
        let mut start = 0;
        let mut i = 0;
        let mut used = chunk.len();
        while i < chunk.len() {
            if in_str {
                // Only a quote or a backslash can change anything inside a string.
                if esc {
                    esc = false;
                    i += 1;
                    continue;
                }
                match memchr::memchr2(b'"', b'\\', &chunk[i..]) {
                    None => {
                        i = chunk.len();
                        continue;
                    }
                    Some(j) => {
                        i += j;
                        if chunk[i] == b'\\' {
                            esc = true;
                        } else {
                            in_str = false;
                        }
                        i += 1;
                        continue;
                    }
                }
            }
            match chunk[i] {
                b'"' => in_str = true,
                b'[' | b'{' => depth += 1,
                b']' | b'}' if depth > 0 => depth -= 1,
                b @ (b',' | b']') if depth == 0 => {
                    keep_limited(&mut buf, &chunk[start..i], &mut total, &mut too_long, max);
                    start = i + 1;
                    let last = b == b']';
                    let blank = !too_long && buf.iter().all(u8::is_ascii_whitespace);
                    if !(last && row == 0 && blank) {
                        row += 1;
                        let body = if too_long {
                            Body::Bad(too_large(total, max))
                        } else if blank {
                            Body::Bad(DropReason::new(Rule::Malformed, None, "empty array element (a stray comma?)"))
                        } else {
                            let lead = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
                            buf.drain(..lead);
                            Body::Line(std::mem::take(&mut buf))
                        };
                        let rec = RawRecord { file: name.clone(), row, bytes: total + 1, body, first: false };
                        if !emit(rec) {
                            return Ok(());
                        }
                    }
                    buf.clear();
                    total = 0;
                    too_long = false;
                    if last {
                        closed = true;
                        used = i + 1;
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        if !closed {
            keep_limited(&mut buf, &chunk[start..], &mut total, &mut too_long, max);
        }
        r.consume(used);
    }
    // Only white space may follow the array.
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if chunk.is_empty() {
            return Ok(());
        }
        if let Some(p) = chunk.iter().position(|b| !b.is_ascii_whitespace()) {
            return Err(anyhow!("unexpected data after the JSON array: `{}`", (chunk[p] as char).escape_default()));
        }
        let n = chunk.len();
        r.consume(n);
    }
}

/// Where a CSV scanner stands, as in `csv_core` with the settings the CSV reader uses
/// (quote `"`, quotes escaped by doubling, a record ended by `\r`, `\n` or `\r\n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CsvState {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    /// A quote inside a quoted field: the field's end, or the first of a doubled quote.
    QuoteInQuoted,
}

/// What one byte did to the record structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CsvStep {
    /// Between records (a blank line).
    Outside,
    /// The first byte of a record.
    Begin,
    Inside,
    /// The terminator that ends a record.
    End,
}

/// Follows the record structure of a CSV stream byte by byte, as the CSV parser does,
/// to know where records end without keeping them.
#[derive(Debug, Clone, Copy)]
struct CsvScan {
    state: CsvState,
    delimiter: u8,
    /// Bytes of the current (or last ended) record.
    len: u64,
    /// Records begun, the header included.
    records: u64,
}

impl CsvScan {
    fn new(delimiter: u8) -> CsvScan {
        CsvScan { state: CsvState::StartRecord, delimiter, len: 0, records: 0 }
    }

    fn step(&mut self, b: u8) -> CsvStep {
        use CsvState::*;
        let term = b == b'\n' || b == b'\r';
        let begin = self.state == StartRecord;
        if begin && term {
            return CsvStep::Outside;
        }
        let field_end = |b: u8| {
            if b == self.delimiter {
                StartField
            } else if term {
                StartRecord
            } else {
                InField
            }
        };
        self.state = match self.state {
            StartRecord | StartField if b == b'"' => InQuoted,
            StartRecord | StartField | InField => field_end(b),
            InQuoted if b == b'"' => QuoteInQuoted,
            InQuoted => InQuoted,
            QuoteInQuoted if b == b'"' => InQuoted,
            QuoteInQuoted => field_end(b),
        };
        if self.state == StartRecord {
            CsvStep::End
        } else if begin {
            self.records += 1;
            self.len = 1;
            CsvStep::Begin
        } else {
            self.len += 1;
            CsvStep::Inside
        }
    }

    /// How many of `bytes` cannot change the state (a run inside a field): they are
    /// taken in one go.
    fn run(&self, bytes: &[u8]) -> usize {
        match self.state {
            CsvState::InQuoted => memchr::memchr(b'"', bytes).unwrap_or(bytes.len()),
            CsvState::InField => memchr::memchr3(self.delimiter, b'\n', b'\r', bytes).unwrap_or(bytes.len()),
            _ => 0,
        }
    }
}

/// Records over the limit that [`CsvLimit`] cut short: (record number counting the
/// header as 0, its full length in bytes).
type Cuts = Rc<RefCell<VecDeque<(u64, u64)>>>;

/// Sits between the (decompressed) file and the CSV parser, which holds a whole record
/// in memory. When a record passes `max` bytes, the rest of it is skipped over here,
/// without being kept, and the parser is handed a terminator that ends the record (with
/// a closing quote first when the record was cut inside a quoted field): it sees a short
/// record, which the reader, told through `cuts`, reports as too large. Reading goes on
/// with the next record.
struct CsvLimit {
    inner: Box<dyn BufRead + Send>,
    scan: CsvScan,
    max: u64,
    cuts: Cuts,
    /// Bytes still to hand over after a cut.
    tail: &'static [u8],
}

impl CsvLimit {
    /// Skip the rest of the current record; its full length.
    fn skip_record(&mut self) -> io::Result<u64> {
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                return Ok(self.scan.len);
            }
            let mut i = 0;
            let mut ended = false;
            while i < chunk.len() {
                let run = self.scan.run(&chunk[i..]);
                if run > 0 {
                    self.scan.len += run as u64;
                    i += run;
                    continue;
                }
                let step = self.scan.step(chunk[i]);
                i += 1;
                if step == CsvStep::End {
                    ended = true;
                    break;
                }
            }
            self.inner.consume(i);
            if ended {
                return Ok(self.scan.len);
            }
        }
    }
}

impl Read for CsvLimit {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if !self.tail.is_empty() {
            let n = self.tail.len().min(out.len());
            out[..n].copy_from_slice(&self.tail[..n]);
            self.tail = &self.tail[n..];
            return Ok(n);
        }
        let chunk = self.inner.fill_buf()?;
        let n = chunk.len().min(out.len());
        let mut i = 0;
        let mut cut = false;
        while i < n {
            let room = self.max.saturating_sub(self.scan.len) as usize;
            let run = self.scan.run(&chunk[i..n]).min(room);
            if run > 0 {
                self.scan.len += run as u64;
                i += run;
                continue;
            }
            let mut next = self.scan;
            let step = next.step(chunk[i]);
            if matches!(step, CsvStep::Begin | CsvStep::Inside) && next.len > self.max {
                cut = true;
                break;
            }
            self.scan = next;
            i += 1;
        }
        out[..i].copy_from_slice(&chunk[..i]);
        self.inner.consume(i);
        if !cut {
            return Ok(i);
        }
        // The record is over the limit: what the parser has is all it gets.
        let inside_quotes = self.scan.state == CsvState::InQuoted;
        let record = self.scan.records.saturating_sub(1);
        let len = self.skip_record()?;
        self.cuts.borrow_mut().push_back((record, len));
        self.tail = if inside_quotes { b"\"\n" } else { b"\n" };
        let n = self.tail.len().min(out.len() - i);
        out[i..i + n].copy_from_slice(&self.tail[..n]);
        self.tail = &self.tail[n..];
        Ok(i + n)
    }
}

fn read_csv(
    r: Box<dyn BufRead + Send>,
    delimiter: u8,
    name: &Arc<str>,
    max: u64,
    emit: &mut dyn FnMut(RawRecord) -> bool,
) -> anyhow::Result<()> {
    let cuts: Cuts = Rc::default();
    let limited = CsvLimit { inner: r, scan: CsvScan::new(delimiter), max, cuts: cuts.clone(), tail: b"" };
    let mut rdr = csv::ReaderBuilder::new().delimiter(delimiter).flexible(false).from_reader(limited);
    // The record that `rec` holds, when it was cut short for being over the limit: its
    // full length.
    let cut_len = |rec: &csv::ByteRecord| -> Option<u64> {
        let n = rec.position()?.record();
        let mut q = cuts.borrow_mut();
        if q.front().is_some_and(|c| c.0 == n) { q.pop_front().map(|c| c.1) } else { None }
    };
    let headers: Vec<String> = match rdr.byte_headers() {
        Ok(h) => {
            if let Some(n) = cut_len(h) {
                return Err(anyhow!("the CSV header is {n} bytes, over max_record_bytes = {max}"));
            }
            h.iter()
                .enumerate()
                .map(|(i, b)| {
                    String::from_utf8(b.to_vec()).map_err(|_| anyhow!("header column {} is not valid UTF-8", i + 1))
                })
                .collect::<Result<_, _>>()?
        }
        Err(e) => return Err(anyhow!("cannot read the CSV header: {e}")),
    };
    if headers.is_empty() {
        return Ok(());
    }
    let mut rec = csv::ByteRecord::new();
    let mut row = 0u64;
    loop {
        let res = rdr.read_byte_record(&mut rec);
        row += 1;
        if matches!(res, Ok(false)) {
            return Ok(());
        }
        let cut = match &res {
            Ok(_) => cut_len(&rec),
            Err(e) => match e.kind() {
                csv::ErrorKind::UnequalLengths { pos: Some(p), .. } => {
                    let n = p.record();
                    let mut q = cuts.borrow_mut();
                    if q.front().is_some_and(|c| c.0 == n) { q.pop_front().map(|c| c.1) } else { None }
                }
                _ => None,
            },
        };
        let mut bytes = rec.as_slice().len() as u64;
        let body = match (cut, res) {
            (Some(n), _) => {
                bytes = n;
                Body::Bad(too_large(n, max))
            }
            (None, Ok(_)) => {
                let size = rec.as_slice().len() as u64;
                if size > max {
                    Body::Bad(too_large(size, max))
                } else {
                    let mut obj = serde_json::Map::with_capacity(headers.len());
                    let mut bad = None;
                    for (h, field) in headers.iter().zip(rec.iter()) {
                        match std::str::from_utf8(field) {
                            Ok(s) => {
                                obj.insert(h.clone(), Value::String(s.to_string()));
                            }
                            Err(e) => {
                                bad = Some(DropReason::new(
                                    Rule::InvalidUtf8,
                                    None,
                                    format!("column `{h}` is not valid UTF-8 (byte {} of the field)", e.valid_up_to()),
                                ));
                                break;
                            }
                        }
                    }
                    match bad {
                        Some(b) => Body::Bad(b),
                        None => Body::Value(Value::Object(obj)),
                    }
                }
            }
            (None, Err(e)) => match e.kind() {
                csv::ErrorKind::UnequalLengths { expected_len, len, .. } => Body::Bad(DropReason::new(
                    Rule::Malformed,
                    Some(*len as f64),
                    format!("row has {len} fields, the header has {expected_len}"),
                )),
                csv::ErrorKind::Io(_) => return Err(anyhow!("at data row {row}: {e}")),
                _ => Body::Bad(DropReason::new(Rule::Malformed, None, e.to_string())),
            },
        };
        if !emit(RawRecord { file: name.clone(), row, bytes, body, first: false }) {
            return Ok(());
        }
    }
}

fn read_parquet(file: &InputFile, name: &Arc<str>, max: u64, emit: &mut dyn FnMut(RawRecord) -> bool) -> anyhow::Result<()> {
    read_parquet_groups(file, name, max, None, emit)
}

/// The rows of a Parquet file, or of row groups `start..end` whose first row is the
/// file's row `first_row`.
fn read_parquet_groups(
    file: &InputFile,
    name: &Arc<str>,
    max: u64,
    groups: Option<(usize, usize, u64)>,
    emit: &mut dyn FnMut(RawRecord) -> bool,
) -> anyhow::Result<()> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let f = File::open(&file.path).with_context(|| format!("cannot open `{}`", file.path.display()))?;
    let reader = SerializedFileReader::new(f).map_err(|e| anyhow!("not a readable Parquet file (truncated or corrupt?): {e}"))?;
    let mut row = 0u64;
    let mut take = |row: &mut u64, r: parquet::errors::Result<parquet::record::Row>| -> anyhow::Result<bool> {
        *row += 1;
        let r = r.map_err(|e| anyhow!("Parquet row {row} cannot be decoded (corrupt file?): {e}"))?;
        let mut bytes = 0u64;
        let body = match parquet_row(&r, &mut bytes) {
            _ if bytes > max => Body::Bad(too_large(bytes, max)),
            Ok(v) => Body::Value(v),
            Err(reason) => Body::Bad(reason),
        };
        Ok(emit(RawRecord { file: name.clone(), row: *row, bytes, body, first: false }))
    };
    match groups {
        None => {
            for r in reader.get_row_iter(None).map_err(|e| anyhow!("cannot read Parquet rows: {e}"))? {
                if !take(&mut row, r)? {
                    return Ok(());
                }
            }
        }
        Some((start, end, first_row)) => {
            row = first_row - 1;
            // One row group at a time: memory follows a row group, not the part.
            for g in start..end {
                let rg = reader.get_row_group(g).map_err(|e| anyhow!("cannot read Parquet row group {g}: {e}"))?;
                let it = parquet::record::reader::RowIter::from_row_group(None, rg.as_ref())
                    .map_err(|e| anyhow!("cannot read Parquet row group {g}: {e}"))?;
                for r in it {
                    if !take(&mut row, r)? {
                        return Ok(());
                    }
                }
            }
        }
    }
    Ok(())
}

/// A Parquet row as JSON, as `Row::to_json_value` gives it, except that a `binary`
/// column (bytes without a string annotation, as some writers store text) is read as
/// UTF-8 text rather than turned into base64. `bytes` adds up the row's strings.
fn parquet_row(row: &parquet::record::Row, bytes: &mut u64) -> Result<Value, DropReason> {
    let mut obj = serde_json::Map::new();
    for (k, f) in row.get_column_iter() {
        obj.insert(k.clone(), parquet_field(k, f, bytes)?);
    }
    Ok(Value::Object(obj))
}

fn parquet_field(column: &str, f: &parquet::record::Field, bytes: &mut u64) -> Result<Value, DropReason> {
    use parquet::record::Field;
    Ok(match f {
        Field::Bytes(b) => {
            *bytes += b.len() as u64;
            match std::str::from_utf8(b.data()) {
                Ok(s) => Value::String(s.to_string()),
                Err(e) => {
                    return Err(DropReason::new(
                        Rule::InvalidUtf8,
                        None,
                        format!("binary column `{column}` is not valid UTF-8 text (byte {})", e.valid_up_to()),
                    ));
                }
            }
        }
        Field::Str(s) => {
            *bytes += s.len() as u64;
            Value::String(s.clone())
        }
        Field::Group(r) => parquet_row(r, bytes)?,
        Field::ListInternal(l) => {
            Value::Array(l.elements().iter().map(|e| parquet_field(column, e, bytes)).collect::<Result<_, _>>()?)
        }
        Field::MapInternal(m) => {
            let mut obj = serde_json::Map::new();
            for (k, v) in m.entries() {
                let key = match parquet_field(column, k, bytes)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                obj.insert(key, parquet_field(column, v, bytes)?);
            }
            Value::Object(obj)
        }
        other => {
            *bytes += 8;
            other.to_json_value()
        }
    })
}

fn read_text(
    r: Box<dyn BufRead + Send>,
    name: &Arc<str>,
    max: u64,
    emit: &mut dyn FnMut(RawRecord) -> bool,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let n = r.take(max + 1).read_to_end(&mut buf)? as u64;
    let body = if n > max {
        Body::Bad(too_large(n, max))
    } else {
        match String::from_utf8(buf) {
            Ok(s) => Body::Text(s),
            Err(e) => Body::Bad(DropReason::new(
                Rule::InvalidUtf8,
                None,
                format!("not valid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
            )),
        }
    };
    emit(RawRecord { file: name.clone(), row: 1, bytes: n, body, first: false });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &[u8], max: u64) -> Vec<Result<Vec<u8>, u64>> {
        let mut r: &[u8] = data;
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            match read_line_limited(&mut r, &mut buf, max).unwrap() {
                Line::Eof => return out,
                Line::Whole => out.push(Ok(buf.clone())),
                Line::TooLong(n) => out.push(Err(n)),
            }
        }
    }

    #[test]
    fn limited_lines_skip_over_long_ones() {
        let got = lines(b"ab\r\n0123456789\nc", 5);
        assert_eq!(got, vec![Ok(b"ab".to_vec()), Err(10), Ok(b"c".to_vec())]);
    }

    #[test]
    fn limited_lines_across_small_buffers() {
        let data = b"hello world\nsecond\n";
        let mut r = BufReader::with_capacity(3, &data[..]);
        let mut buf = Vec::new();
        assert!(matches!(read_line_limited(&mut r, &mut buf, 100).unwrap(), Line::Whole));
        assert_eq!(buf, b"hello world");
        assert!(matches!(read_line_limited(&mut r, &mut buf, 100).unwrap(), Line::Whole));
        assert_eq!(buf, b"second");
        assert!(matches!(read_line_limited(&mut r, &mut buf, 100).unwrap(), Line::Eof));
    }

    /// Per record: its row, and its text or the rule and bytes of a bad record.
    type Got = Vec<(u64, Result<String, (String, u64)>)>;

    /// What a reader made of `data` (read through small buffers, so that records
    /// cross buffer boundaries): per record, its row and either its text (a line, or a
    /// value as JSON) or the rule and bytes of a bad record.
    fn records(
        data: &[u8],
        read: impl FnOnce(Box<dyn BufRead + Send>, &mut dyn FnMut(RawRecord) -> bool) -> anyhow::Result<()>,
    ) -> anyhow::Result<Got> {
        let r: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(7, io::Cursor::new(data.to_vec())));
        let mut out = Vec::new();
        read(r, &mut |rec: RawRecord| {
            let got = match rec.body {
                Body::Line(b) => Ok(String::from_utf8(b).unwrap()),
                Body::Value(v) => Ok(v.to_string()),
                Body::Text(t) => Ok(t),
                Body::Bad(d) => Err((d.rule.id().to_string(), rec.bytes)),
            };
            out.push((rec.row, got));
            true
        })?;
        Ok(out)
    }

    fn csv(data: &[u8], delimiter: u8, max: u64) -> anyhow::Result<Got> {
        let name: Arc<str> = "t.csv".into();
        records(data, |r, emit| read_csv(r, delimiter, &name, max, emit))
    }

    fn json(data: &[u8], max: u64) -> anyhow::Result<Got> {
        let name: Arc<str> = "t.json".into();
        records(data, |r, emit| read_json(skip_bom(r)?, &name, max, emit))
    }

    fn ok(row: u64, s: &str) -> (u64, Result<String, (String, u64)>) {
        (row, Ok(s.to_string()))
    }

    fn too_large(row: u64, bytes: u64) -> (u64, Result<String, (String, u64)>) {
        (row, Err(("read.too_large".to_string(), bytes)))
    }

    #[test]
    fn csv_record_over_the_limit_is_skipped_and_the_next_one_read() {
        // Row 2 holds a quoted field with newlines, delimiters and doubled quotes: its
        // end is found by the CSV rules, not by the next newline.
        let long = "x,\"\"y\n".repeat(20);
        let data = format!("a,b\n1,short\n2,\"{long}\"\r\n3,\"after, \"\"quoted\"\"\"\n");
        let got = csv(data.as_bytes(), b',', 40).unwrap();
        assert_eq!(
            got,
            vec![
                ok(1, r#"{"a":"1","b":"short"}"#),
                too_large(2, 2 + 2 + long.len() as u64),
                ok(3, r#"{"a":"3","b":"after, \"quoted\""}"#),
            ]
        );
        // Cut outside quotes, in a TSV, and as the last record without a newline.
        let long = "z".repeat(100);
        let data = format!("a\tb\n1\t{long}\n2\tok\n3\t{long}");
        let got = csv(data.as_bytes(), b'\t', 40).unwrap();
        assert_eq!(got, vec![too_large(1, 102), ok(2, r#"{"a":"2","b":"ok"}"#), too_large(3, 102)]);
    }

    #[test]
    fn csv_records_within_the_limit_are_untouched() {
        // Row 1 is 13 bytes: exactly the limit.
        let data = b"a,b\n\n1,\"two\nlines\"\r\n\r\n\"3\",\"\"\"\"\n";
        let got = csv(data, b',', 13).unwrap();
        assert_eq!(got, vec![ok(1, r#"{"a":"1","b":"two\nlines"}"#), ok(2, r#"{"a":"3","b":"\""}"#)]);
    }

    #[test]
    fn csv_after_a_byte_order_mark_keeps_its_quoted_header() {
        let name: Arc<str> = "t.csv".into();
        let data = b"\xEF\xBB\xBF\"a\nb\",c\n1,2\n";
        let got = records(data, |r, emit| read_csv(skip_bom(r)?, b',', &name, 8, emit)).unwrap();
        assert_eq!(got, vec![ok(1, r#"{"a\nb":"1","c":"2"}"#)]);
    }

    #[test]
    fn csv_header_over_the_limit_is_a_file_error() {
        let e = csv(format!("{}\n1\n", "h".repeat(50)).as_bytes(), b',', 10).unwrap_err();
        assert!(e.to_string().contains("the CSV header is 50 bytes, over max_record_bytes = 10"), "{e}");
    }

    #[test]
    fn json_array_elements_are_split_by_structure() {
        let data = br#" [ {"t": "a ] , [ \" b"}, [1, {"x": [2]}] ,"s",
            {"t": "last"} ] "#;
        let got = json(data, 1000).unwrap();
        assert_eq!(
            got,
            vec![
                ok(1, r#"{"t": "a ] , [ \" b"}"#),
                ok(2, r#"[1, {"x": [2]}] "#),
                ok(3, r#""s""#),
                ok(4, "{\"t\": \"last\"} "),
            ]
        );
        assert_eq!(json(b"[]", 10).unwrap(), vec![]);
        assert_eq!(json(b"[ \n ]\n", 10).unwrap(), vec![]);
    }

    #[test]
    fn json_array_element_over_the_limit_is_skipped() {
        let big = "w".repeat(500);
        let data = format!(r#"[{{"t": "ok"}}, {{"t": "{big}", "n": [1, 2]}}, {{"t": "after"}}]"#);
        let got = json(data.as_bytes(), 100).unwrap();
        assert_eq!(got, vec![ok(1, r#"{"t": "ok"}"#), too_large(2, 524), ok(3, r#"{"t": "after"}"#)]);
    }

    #[test]
    fn json_array_faults() {
        let got = json(b"[1,,2,]", 10).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[1].1.as_ref().unwrap_err().0, "read.malformed");
        assert_eq!(got[3].1.as_ref().unwrap_err().0, "read.malformed");
        let e = json(br#"[{"t": "cut"#, 100).unwrap_err().to_string();
        assert!(e.contains("invalid JSON array") && e.contains("element 1"), "{e}");
        let e = json(br#"[1] [2]"#, 100).unwrap_err().to_string();
        assert!(e.contains("unexpected data after the JSON array"), "{e}");
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        assert_eq!(json(b"\xEF\xBB\xBF[{\"t\": 1}]", 100).unwrap(), vec![ok(1, "{\"t\": 1}")]);
        assert_eq!(json(b"\xEF\xBB\xBF{\"t\": 1}\n", 100).unwrap(), vec![ok(1, "{\"t\": 1}")]);
        let name: Arc<str> = "t.jsonl".into();
        let got = records(b"\xEF\xBB\xBF{\"t\": 1}\n{\"t\": 2}\n", |r, emit| read_lines(skip_bom(r)?, &name, 100, emit)).unwrap();
        assert_eq!(got, vec![ok(1, "{\"t\": 1}"), ok(2, "{\"t\": 2}")]);
        // Short files and files that only start like a mark are left whole.
        let got = records(b"\xEF\xBB", |r, emit| read_text(skip_bom(r)?, &name, 100, emit)).unwrap();
        assert_eq!(got, vec![(1, Err(("read.invalid_utf8".to_string(), 2)))]);
        let got = records(b"{}", |r, emit| read_lines(skip_bom(r)?, &name, 100, emit)).unwrap();
        assert_eq!(got, vec![ok(1, "{}")]);
    }
}
