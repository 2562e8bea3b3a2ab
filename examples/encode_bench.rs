//! The physical bound of a tokenizing pipeline: how fast the `tokenizers` crate alone
//! encodes a corpus, with no reading, parsing, filtering or writing around it.
//!
//! ```sh
//! cargo run --release --example encode_bench -- TOKENIZER.json THREADS FILE.jsonl [FILE.jsonl …]
//! ```
//!
//! Loads the text of every JSON line into memory first (untimed: a `text` field, or an
//! instruction record's `instruction`, `input` and `output` joined), then times
//! encoding all texts on a rayon pool of THREADS threads, twice: `encode_fast` (no
//! offsets) and `encode` (with offsets, what curate uses when a mask needs them).
//! Prints one JSON object: bytes, documents, tokens, and for each the elapsed seconds,
//! the process's CPU seconds (user + system) and MB/s.

use std::io::BufRead;
use std::time::Instant;

use rayon::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: encode_bench TOKENIZER.json THREADS FILE.jsonl [FILE.jsonl …]");
        std::process::exit(2);
    }
    let tok = tokenizers::Tokenizer::from_file(&args[1])?;
    let threads: usize = args[2].parse()?;
    let mut texts: Vec<String> = Vec::new();
    for f in &args[3..] {
        let r = std::io::BufReader::new(std::fs::File::open(f)?);
        for line in r.lines() {
            let v: serde_json::Value = match serde_json::from_str(&line?) {
                Ok(v) => v,
                Err(_) => continue,
            };
            // A text record's `text`; an instruction record's instruction, input and
            // output, as a template would put them in one sequence.
            let text = match v.get("text").and_then(|t| t.as_str()) {
                Some(t) => Some(t.to_string()),
                None => {
                    let parts: Vec<&str> =
                        ["instruction", "input", "output"].iter().filter_map(|k| v.get(*k).and_then(|t| t.as_str())).filter(|t| !t.is_empty()).collect();
                    (!parts.is_empty()).then(|| parts.join("\n\n"))
                }
            };
            if let Some(t) = text {
                texts.push(t);
            }
        }
    }
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    // CPU seconds of this process (user + system), which other load on the machine
    // does not inflate the way it inflates elapsed time.
    let cpu = || {
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `u` is a valid, writable rusage; RUSAGE_SELF is a constant.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(u.ru_utime) + tv(u.ru_stime)
    };
    let time = |offsets: bool| -> (f64, f64, usize) {
        let c = cpu();
        let t = Instant::now();
        let tokens: usize = pool.install(|| {
            texts
                .par_iter()
                .map(|s| {
                    let e = if offsets { tok.encode(s.as_str(), false) } else { tok.encode_fast(s.as_str(), false) };
                    e.map(|e| e.len()).unwrap_or(0)
                })
                .sum()
        });
        (t.elapsed().as_secs_f64(), cpu() - c, tokens)
    };
    let (fast_s, fast_cpu, tokens) = time(false);
    // ENCODE_BENCH_FAST_ONLY=1 skips the second, offsets pass.
    let (off_s, off_cpu, _) = if std::env::var_os("ENCODE_BENCH_FAST_ONLY").is_some() { (f64::NAN, f64::NAN, 0) } else { time(true) };
    let mb = bytes as f64 / 1e6;
    println!(
        "{}",
        serde_json::json!({
            "threads": threads,
            "bytes": bytes,
            "documents": texts.len(),
            "tokens": tokens,
            "encode_fast_seconds": fast_s,
            "encode_fast_cpu_seconds": fast_cpu,
            "encode_fast_mb_s": mb / fast_s,
            "encode_offsets_seconds": off_s,
            "encode_offsets_cpu_seconds": off_cpu,
            "encode_offsets_mb_s": mb / off_s,
        })
    );
    Ok(())
}
