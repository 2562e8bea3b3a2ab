//! File readers: each turns one input file into a stream of raw records, in file order,
//! without holding the file in memory.
//!
//! A reader separates two kinds of trouble. A *bad record* (a malformed JSON line, a
//! row that is not UTF-8, a record over the size limit) is handed on as a
//! [`Body::Bad`] so that the source's `on_error` decides: stop with an error naming the
//! file and row, or ledger it and go on. A *bad file* (missing, unreadable, a truncated
//! Parquet footer, a corrupt gzip stream, a JSON array cut short) is an error at once:
//! going on would give a silently shorter output.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
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
    Ok(match file.compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(BufReader::with_capacity(1 << 20, flate2::bufread::MultiGzDecoder::new(buffered))),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            1 << 20,
            zstd::stream::read::Decoder::with_buffer(buffered)
                .with_context(|| format!("cannot start zstd decoding of `{}`", file.path.display()))?,
        )),
    })
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
        ReaderKind::Jsonl => read_lines(open(file)?, &name, max_record_bytes, emit).with_context(ctx),
        ReaderKind::Json => read_json(open(file)?, &name, max_record_bytes, emit).with_context(ctx),
        ReaderKind::Csv => read_csv(open(file)?, b',', &name, max_record_bytes, emit).with_context(ctx),
        ReaderKind::Tsv => read_csv(open(file)?, b'\t', &name, max_record_bytes, emit).with_context(ctx),
        ReaderKind::Parquet => read_parquet(file, &name, emit).with_context(ctx),
        ReaderKind::Txt => read_text(open(file)?, &name, max_record_bytes, emit).with_context(ctx),
    }
}

/// Outcome of reading one line under a size limit.
enum Line {
    Eof,
    Line,
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
    Ok(if too_long { Line::TooLong(total) } else { Line::Line })
}

fn too_large(bytes: u64, max: u64) -> DropReason {
    DropReason::new(
        Rule::TooLarge,
        Some(bytes as f64),
        format!("record is {} bytes, over max_record_bytes = {max}", bytes),
    )
}

fn read_lines(
    mut r: Box<dyn BufRead + Send>,
    name: &Arc<str>,
    max: u64,
    emit: &mut dyn FnMut(RawRecord) -> bool,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let mut row = 0u64;
    loop {
        let line = read_line_limited(&mut *r, &mut buf, max).with_context(|| format!("after line {row}"))?;
        row += 1;
        let rec = match line {
            Line::Eof => return Ok(()),
            Line::TooLong(n) => RawRecord { file: name.clone(), row, bytes: n, body: Body::Bad(too_large(n, max)), first: false },
            Line::Line => {
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
        b'[' => stream_array(r, name, emit),
        other => Err(anyhow!(
            "expected a JSON array (`[`) or JSON Lines (`{{`), found `{}`",
            (other as char).escape_default()
        )),
    }
}

fn stream_array(r: Box<dyn BufRead + Send>, name: &Arc<str>, emit: &mut dyn FnMut(RawRecord) -> bool) -> anyhow::Result<()> {
    use serde::de::{Deserializer, SeqAccess, Visitor};
    struct V<'a> {
        name: &'a Arc<str>,
        emit: &'a mut dyn FnMut(RawRecord) -> bool,
        stopped: bool,
    }
    impl<'de> Visitor<'de> for V<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of records")
        }
        fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
            let mut row = 0u64;
            while let Some(v) = seq.next_element::<Value>()? {
                row += 1;
                let rec = RawRecord { file: self.name.clone(), row, bytes: 0, body: Body::Value(v), first: false };
                if !(self.emit)(rec) {
                    self.stopped = true;
                    // Stop reading: the rest of the file is not needed.
                    return Err(serde::de::Error::custom(STOPPED));
                }
            }
            Ok(())
        }
    }
    const STOPPED: &str = "\u{0}stopped";
    let mut de = serde_json::Deserializer::from_reader(r);
    let v = V { name, emit, stopped: false };
    match de.deserialize_seq(v) {
        Ok(()) => {
            de.end().map_err(|e| anyhow!("unexpected data after the JSON array at line {}, column {}", e.line(), e.column()))?;
            Ok(())
        }
        Err(e) if e.to_string().starts_with(STOPPED) => Ok(()),
        Err(e) => Err(anyhow!("invalid JSON array: {e}")),
    }
}

fn read_csv(
    r: Box<dyn BufRead + Send>,
    delimiter: u8,
    name: &Arc<str>,
    max: u64,
    emit: &mut dyn FnMut(RawRecord) -> bool,
) -> anyhow::Result<()> {
    let mut rdr = csv::ReaderBuilder::new().delimiter(delimiter).flexible(false).from_reader(r);
    let headers: Vec<String> = match rdr.byte_headers() {
        Ok(h) => h
            .iter()
            .enumerate()
            .map(|(i, b)| {
                String::from_utf8(b.to_vec()).map_err(|_| anyhow!("header column {} is not valid UTF-8", i + 1))
            })
            .collect::<Result<_, _>>()?,
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
        let body = match res {
            Ok(false) => return Ok(()),
            Ok(true) => {
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
            Err(e) => match e.kind() {
                csv::ErrorKind::UnequalLengths { expected_len, len, .. } => Body::Bad(DropReason::new(
                    Rule::Malformed,
                    Some(*len as f64),
                    format!("row has {len} fields, the header has {expected_len}"),
                )),
                csv::ErrorKind::Io(_) => return Err(anyhow!("at data row {row}: {e}")),
                _ => Body::Bad(DropReason::new(Rule::Malformed, None, e.to_string())),
            },
        };
        let bytes = rec.as_slice().len() as u64;
        if !emit(RawRecord { file: name.clone(), row, bytes, body, first: false }) {
            return Ok(());
        }
    }
}

fn read_parquet(file: &InputFile, name: &Arc<str>, emit: &mut dyn FnMut(RawRecord) -> bool) -> anyhow::Result<()> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let f = File::open(&file.path).with_context(|| format!("cannot open `{}`", file.path.display()))?;
    let reader = SerializedFileReader::new(f).map_err(|e| anyhow!("not a readable Parquet file (truncated or corrupt?): {e}"))?;
    let rows = reader.get_row_iter(None).map_err(|e| anyhow!("cannot read Parquet rows: {e}"))?;
    let mut row = 0u64;
    for r in rows {
        row += 1;
        let r = r.map_err(|e| anyhow!("Parquet row {row} cannot be decoded (corrupt file?): {e}"))?;
        let rec = RawRecord { file: name.clone(), row, bytes: 0, body: Body::Value(r.to_json_value()), first: false };
        if !emit(rec) {
            return Ok(());
        }
    }
    Ok(())
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
                Line::Line => out.push(Ok(buf.clone())),
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
        assert!(matches!(read_line_limited(&mut r, &mut buf, 100).unwrap(), Line::Line));
        assert_eq!(buf, b"hello world");
        assert!(matches!(read_line_limited(&mut r, &mut buf, 100).unwrap(), Line::Line));
        assert_eq!(buf, b"second");
        assert!(matches!(read_line_limited(&mut r, &mut buf, 100).unwrap(), Line::Eof));
    }
}
