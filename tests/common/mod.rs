//! Shared helpers for the integration tests: a temp folder per test, a way to run the
//! binary, and readers for the Parquet outputs.

#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Output;

use arrow_array::{Array, RecordBatch, StringArray, UInt64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir { tmp: tempfile::tempdir().expect("temp dir") }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    pub fn write(&self, p: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(p);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Write `recipe.toml` with a `[recipe]` header and the given body.
    pub fn recipe(&self, body: &str) -> PathBuf {
        self.write("recipe.toml", format!("[recipe]\nname = \"t\"\nseed = 7\n\n{body}\n"))
    }

    /// Run `curate` with arguments, in this folder.
    pub fn curate(&self, args: &[&str]) -> Output {
        assert_cmd::Command::cargo_bin("curate")
            .unwrap()
            .current_dir(self.path())
            .args(args)
            .output()
            .expect("curate runs")
    }

    pub fn out(&self) -> PathBuf {
        self.join("out/t")
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert the run succeeded, showing stderr otherwise.
pub fn ok(o: &Output) {
    assert!(o.status.success(), "curate failed ({:?}):\n{}", o.status.code(), stderr(o));
}

/// Assert the run failed with exit code 2 and return stderr.
pub fn fails(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "expected exit 2, got {:?}:\n{err}", o.status.code());
    assert!(!err.contains("panicked"), "a panic is never an error message:\n{err}");
    err
}

pub fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(f).unwrap().build().unwrap().map(|b| b.unwrap()).collect()
}

/// One string column of a Parquet file (nulls as None).
pub fn strings(path: &Path, column: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for b in read_parquet(path) {
        let col = b.column_by_name(column).unwrap_or_else(|| panic!("no column {column}"));
        let a = col.as_any().downcast_ref::<StringArray>().expect("string column");
        for i in 0..a.len() {
            out.push(if a.is_null(i) { None } else { Some(a.value(i).to_string()) });
        }
    }
    out
}

pub fn u64s(path: &Path, column: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for b in read_parquet(path) {
        let a = b.column_by_name(column).unwrap().as_any().downcast_ref::<UInt64Array>().unwrap().clone();
        out.extend(a.iter().map(|v| v.unwrap()));
    }
    out
}

/// `(rule, file, row)` of every ledger entry.
pub fn ledger(out: &Path) -> Vec<(String, String, u64)> {
    let p = out.join("ledger.parquet");
    let rules = strings(&p, "rule");
    let files = strings(&p, "file");
    let rows = u64s(&p, "row");
    rules.into_iter().zip(files).zip(rows).map(|((r, f), n)| (r.unwrap(), f.unwrap(), n)).collect()
}

pub fn report(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

/// A path in the project's shared data folder beside the checkout (`../shared/data`).
/// Tests that use it are `#[ignore = "needs ../shared/data"]` and named
/// `shared_data_*`; `scripts/test.sh` runs them when the folder is there. Run, they
/// fail when what they need is missing: a skip is never a pass.
pub fn shared_data(rel: &str) -> PathBuf {
    let p = repo().join("../shared/data").join(rel);
    assert!(p.exists(), "`{}` is missing: this test needs the project's shared data folder beside the checkout", p.display());
    p
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// An output file's bytes as far as they must be the same from run to run: none for
/// `timings.json`; `report.html` without its timings section (which shows
/// `timings.json`); any other file whole.
#[allow(dead_code)]
pub fn deterministic_part(rel: &str, bytes: Vec<u8>) -> Option<Vec<u8>> {
    match rel {
        "timings.json" => None,
        "report.html" => {
            let page = String::from_utf8(bytes).expect("report.html is UTF-8");
            let start = page.find("<section id=\"timings\">").expect("report.html has a timings section");
            let end = start + page[start..].find("</section>").expect("the timings section ends");
            Some(format!("{}{}", &page[..start], &page[end..]).into_bytes())
        }
        _ => Some(bytes),
    }
}
