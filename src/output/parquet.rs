//! Parquet writers for `documents.parquet` and `ledger.parquet`, streaming: rows are
//! buffered into record batches of a few thousand and handed to the Arrow writer, which
//! flushes row groups of bounded size, so memory does not grow with the corpus.
//!
//! The schemas are documented in `docs/outputs.md`; chats are stored as a list of
//! `{role, content}` structs, the shape Hugging Face `datasets` reads as messages.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use arrow_array::builder::{
    ArrayBuilder, Float64Builder, ListBuilder, StringBuilder, StructBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::document::{Content, Document};
use crate::hash::hex128;
use crate::ledger::{Entry, LEDGER_SAMPLES, LedgerSample};
use crate::recipe::Source;

const BATCH_ROWS: usize = 4096;

pub(crate) fn props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("valid zstd level")))
        .set_max_row_group_row_count(Some(64 * 1024))
        .set_max_row_group_bytes(Some(128 * 1024 * 1024))
        .set_created_by(format!("curate {}", env!("CARGO_PKG_VERSION")))
        .build()
}

fn open_with(path: &Path, schema: SchemaRef, props: WriterProperties) -> anyhow::Result<ArrowWriter<File>> {
    let f = File::create(path).with_context(|| format!("cannot create `{}`", path.display()))?;
    ArrowWriter::try_new(f, schema, Some(props)).with_context(|| format!("cannot start `{}`", path.display()))
}

fn message_fields() -> Fields {
    Fields::from(vec![Field::new("role", DataType::Utf8, false), Field::new("content", DataType::Utf8, false)])
}

pub fn documents_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("file", DataType::Utf8, false),
        Field::new("row", DataType::UInt64, false),
        Field::new("sub", DataType::UInt32, true),
        Field::new("license", DataType::Utf8, true),
        Field::new("origin", DataType::Utf8, true),
        Field::new("generated_by", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), false),
        Field::new("text", DataType::Utf8, true),
        Field::new(
            "messages",
            DataType::List(Arc::new(Field::new("item", DataType::Struct(message_fields()), true))),
            true,
        ),
        Field::new("content_hash", DataType::Utf8, false),
        Field::new("chars", DataType::UInt64, false),
        Field::new("words", DataType::UInt64, false),
    ]))
}

/// The columns of one table being built, row by row.
trait Columns {
    /// The arrays of the rows appended since the last call, in schema order.
    fn take(&mut self) -> Vec<ArrayRef>;
}

/// Streams the rows of one table to a Parquet file in batches of [`BATCH_ROWS`]: the
/// one writer behind `documents.parquet`, `ledger.parquet` and `docs.parquet` (each
/// of those only says how a row fills its columns). Batches are cut every
/// `BATCH_ROWS` rows whoever pushes them, so the file's bytes depend only on its rows.
struct TableWriter<C> {
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    cols: C,
    pending: usize,
    rows: u64,
    name: String,
}

impl<C: Columns> TableWriter<C> {
    fn create(path: &Path, schema: SchemaRef, cols: C, props: WriterProperties) -> anyhow::Result<Self> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(TableWriter { writer: open_with(path, schema.clone(), props)?, schema, cols, pending: 0, rows: 0, name })
    }

    /// Count the row just appended to the columns; write a batch when one is full.
    fn row_done(&mut self) -> anyhow::Result<()> {
        self.pending += 1;
        self.rows += 1;
        if self.pending >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let batch = RecordBatch::try_new(self.schema.clone(), self.cols.take())
            .with_context(|| format!("building a batch of `{}`", self.name))?;
        self.writer.write(&batch).with_context(|| format!("writing `{}`", self.name))?;
        self.pending = 0;
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<u64> {
        self.flush()?;
        self.writer.close().with_context(|| format!("closing `{}`", self.name))?;
        Ok(self.rows)
    }
}

fn list_of_strings() -> ListBuilder<StringBuilder> {
    ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new("item", DataType::Utf8, true)))
}

struct DocumentColumns {
    id: StringBuilder,
    source: StringBuilder,
    file: StringBuilder,
    row: UInt64Builder,
    sub: UInt32Builder,
    license: StringBuilder,
    origin: StringBuilder,
    generated_by: ListBuilder<StringBuilder>,
    text: StringBuilder,
    messages: ListBuilder<StructBuilder>,
    content_hash: StringBuilder,
    chars: UInt64Builder,
    words: UInt64Builder,
}

impl Columns for DocumentColumns {
    fn take(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.id.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.file.finish()),
            Arc::new(self.row.finish()),
            Arc::new(self.sub.finish()),
            Arc::new(self.license.finish()),
            Arc::new(self.origin.finish()),
            Arc::new(self.generated_by.finish()),
            Arc::new(self.text.finish()),
            Arc::new(self.messages.finish()),
            Arc::new(self.content_hash.finish()),
            Arc::new(self.chars.finish()),
            Arc::new(self.words.finish()),
        ]
    }
}

/// Streams kept documents, with their source's provenance, to `documents.parquet`.
pub struct DocumentsWriter {
    t: TableWriter<DocumentColumns>,
}

impl DocumentsWriter {
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        Self::create_with(path, props())
    }

    fn create_with(path: &Path, props: WriterProperties) -> anyhow::Result<Self> {
        let msg = StructBuilder::new(
            message_fields(),
            vec![Box::new(StringBuilder::new()) as Box<dyn ArrayBuilder>, Box::new(StringBuilder::new())],
        );
        let cols = DocumentColumns {
            id: StringBuilder::new(),
            source: StringBuilder::new(),
            file: StringBuilder::new(),
            row: UInt64Builder::new(),
            sub: UInt32Builder::new(),
            license: StringBuilder::new(),
            origin: StringBuilder::new(),
            generated_by: list_of_strings(),
            text: StringBuilder::new(),
            messages: ListBuilder::new(msg).with_field(Arc::new(Field::new("item", DataType::Struct(message_fields()), true))),
            content_hash: StringBuilder::new(),
            chars: UInt64Builder::new(),
            words: UInt64Builder::new(),
        };
        Ok(DocumentsWriter { t: TableWriter::create(path, documents_schema(), cols, props)? })
    }

    pub fn push(&mut self, doc: &Document, source: &Source) -> anyhow::Result<()> {
        let c = &mut self.t.cols;
        c.id.append_value(hex128(doc.id));
        c.source.append_value(&source.name);
        c.file.append_value(&*doc.locator.file);
        c.row.append_value(doc.locator.row);
        c.sub.append_option(doc.locator.sub);
        c.license.append_option(source.provenance.license.as_deref());
        c.origin.append_option(source.provenance.origin.map(|o| o.as_str()));
        for g in &source.provenance.generated_by {
            c.generated_by.values().append_value(g);
        }
        c.generated_by.append(true);
        match &doc.content {
            Content::Text(t) => {
                c.text.append_value(t);
                c.messages.append(false);
            }
            Content::Messages(ms) => {
                c.text.append_null();
                let s = c.messages.values();
                for m in ms {
                    s.field_builder::<StringBuilder>(0).expect("role column").append_value(m.role.as_str());
                    s.field_builder::<StringBuilder>(1).expect("content column").append_value(&m.content);
                    s.append(true);
                }
                c.messages.append(true);
            }
        }
        c.content_hash.append_value(hex128(doc.content_hash));
        c.chars.append_value(doc.chars);
        c.words.append_value(doc.words);
        self.t.row_done()
    }

    /// Finish the file; returns the number of rows written.
    pub fn finish(self) -> anyhow::Result<u64> {
        self.t.finish()
    }
}

pub fn ledger_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("doc_id", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("file", DataType::Utf8, false),
        Field::new("row", DataType::UInt64, false),
        Field::new("sub", DataType::UInt32, true),
        Field::new("stage", DataType::Utf8, false),
        Field::new("rule", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
        Field::new("detail", DataType::Utf8, false),
        Field::new("duplicate_of", DataType::Utf8, true),
    ]))
}

struct LedgerColumns {
    doc_id: StringBuilder,
    source: StringBuilder,
    file: StringBuilder,
    row: UInt64Builder,
    sub: UInt32Builder,
    stage: StringBuilder,
    rule: StringBuilder,
    value: Float64Builder,
    detail: StringBuilder,
    duplicate_of: StringBuilder,
}

impl Columns for LedgerColumns {
    fn take(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.doc_id.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.file.finish()),
            Arc::new(self.row.finish()),
            Arc::new(self.sub.finish()),
            Arc::new(self.stage.finish()),
            Arc::new(self.rule.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.detail.finish()),
            Arc::new(self.duplicate_of.finish()),
        ]
    }
}

/// Streams ledger entries to `ledger.parquet`.
pub struct LedgerWriter {
    t: TableWriter<LedgerColumns>,
    /// The first [`LEDGER_SAMPLES`] rows of each rule, in ledger order, for the report.
    samples: std::collections::BTreeMap<&'static str, Vec<LedgerSample>>,
}

impl LedgerWriter {
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let cols = LedgerColumns {
            doc_id: StringBuilder::new(),
            source: StringBuilder::new(),
            file: StringBuilder::new(),
            row: UInt64Builder::new(),
            sub: UInt32Builder::new(),
            stage: StringBuilder::new(),
            rule: StringBuilder::new(),
            value: Float64Builder::new(),
            detail: StringBuilder::new(),
            duplicate_of: StringBuilder::new(),
        };
        Ok(LedgerWriter { t: TableWriter::create(path, ledger_schema(), cols, props())?, samples: Default::default() })
    }

    pub fn push(&mut self, e: &Entry, source_name: &str) -> anyhow::Result<()> {
        let c = &mut self.t.cols;
        c.doc_id.append_value(hex128(e.doc_id));
        c.source.append_value(source_name);
        c.file.append_value(&*e.locator.file);
        c.row.append_value(e.locator.row);
        c.sub.append_option(e.locator.sub);
        c.stage.append_value(e.reason.rule.stage().as_str());
        c.rule.append_value(e.reason.rule.id());
        c.value.append_option(e.reason.value);
        c.detail.append_value(&e.reason.detail);
        c.duplicate_of.append_option(e.reason.duplicate_of.map(hex128));
        let samples = self.samples.entry(e.reason.rule.id()).or_default();
        if samples.len() < LEDGER_SAMPLES {
            samples.push(LedgerSample {
                doc_id: hex128(e.doc_id),
                source: source_name.to_string(),
                file: e.locator.file.to_string(),
                row: e.locator.row,
                sub: e.locator.sub,
                value: e.reason.value,
                detail: e.reason.detail.clone(),
            });
        }
        self.t.row_done()
    }

    /// The first rows of each rule so far, in ledger order.
    pub fn samples(&self) -> &std::collections::BTreeMap<&'static str, Vec<LedgerSample>> {
        &self.samples
    }

    pub fn finish(self) -> anyhow::Result<u64> {
        self.t.finish()
    }
}

pub fn shard_docs_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("split", DataType::Utf8, false),
        Field::new("pack", DataType::UInt64, false),
        Field::new("sequence", DataType::UInt64, false),
        Field::new("id", DataType::Utf8, false),
        Field::new("copy", DataType::UInt32, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("file", DataType::Utf8, false),
        Field::new("row", DataType::UInt64, false),
        Field::new("sub", DataType::UInt32, true),
        Field::new("license", DataType::Utf8, true),
        Field::new("generated_by", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), false),
        Field::new("content_hash", DataType::Utf8, false),
        Field::new("tokens", DataType::UInt32, false),
        Field::new("loss_tokens", DataType::UInt32, false),
    ]))
}

struct ShardDocColumns {
    split: StringBuilder,
    pack: UInt64Builder,
    sequence: UInt64Builder,
    id: StringBuilder,
    copy: UInt32Builder,
    source: StringBuilder,
    file: StringBuilder,
    row: UInt64Builder,
    sub: UInt32Builder,
    license: StringBuilder,
    generated_by: ListBuilder<StringBuilder>,
    content_hash: StringBuilder,
    tokens: UInt32Builder,
    loss_tokens: UInt32Builder,
}

impl Columns for ShardDocColumns {
    fn take(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.split.finish()),
            Arc::new(self.pack.finish()),
            Arc::new(self.sequence.finish()),
            Arc::new(self.id.finish()),
            Arc::new(self.copy.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.file.finish()),
            Arc::new(self.row.finish()),
            Arc::new(self.sub.finish()),
            Arc::new(self.license.finish()),
            Arc::new(self.generated_by.finish()),
            Arc::new(self.content_hash.finish()),
            Arc::new(self.tokens.finish()),
            Arc::new(self.loss_tokens.finish()),
        ]
    }
}

/// Streams `docs.parquet`: one row per sequence written to the shards.
pub struct ShardDocsWriter {
    t: TableWriter<ShardDocColumns>,
}

impl ShardDocsWriter {
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let cols = ShardDocColumns {
            split: StringBuilder::new(),
            pack: UInt64Builder::new(),
            sequence: UInt64Builder::new(),
            id: StringBuilder::new(),
            copy: UInt32Builder::new(),
            source: StringBuilder::new(),
            file: StringBuilder::new(),
            row: UInt64Builder::new(),
            sub: UInt32Builder::new(),
            license: StringBuilder::new(),
            generated_by: list_of_strings(),
            content_hash: StringBuilder::new(),
            tokens: UInt32Builder::new(),
            loss_tokens: UInt32Builder::new(),
        };
        Ok(ShardDocsWriter { t: TableWriter::create(path, shard_docs_schema(), cols, props())? })
    }

    pub fn push(
        &mut self,
        split: crate::pack::Split,
        pack: u64,
        sequence: u64,
        d: &crate::shards::TokDoc,
        copy: u32,
        source: &Source,
    ) -> anyhow::Result<()> {
        let c = &mut self.t.cols;
        c.split.append_value(match split {
            crate::pack::Split::Train => "train",
            crate::pack::Split::Valid => "valid",
        });
        c.pack.append_value(pack);
        c.sequence.append_value(sequence);
        c.id.append_value(hex128(d.id));
        c.copy.append_value(copy);
        c.source.append_value(&source.name);
        c.file.append_value(&*d.locator.file);
        c.row.append_value(d.locator.row);
        c.sub.append_option(d.locator.sub);
        c.license.append_option(source.provenance.license.as_deref());
        for g in &source.provenance.generated_by {
            c.generated_by.values().append_value(g);
        }
        c.generated_by.append(true);
        c.content_hash.append_value(hex128(d.content_hash));
        c.tokens.append_value(d.tokens);
        c.loss_tokens.append_value(d.loss);
        self.t.row_done()
    }

    pub fn finish(self) -> anyhow::Result<()> {
        self.t.finish().map(|_| ())
    }
}

/// Properties for the documents a task hands to the next one: LZ4, cheap to write and
/// read back, where the outputs use zstd; smaller row groups, since a writer holds one
/// row group in memory and these are read back in order only.
fn scratch_props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        .set_max_row_group_row_count(Some(8 * 1024))
        .set_max_row_group_bytes(Some(16 * 1024 * 1024))
        .set_created_by(format!("curate {}", env!("CARGO_PKG_VERSION")))
        .build()
}

impl DocumentsWriter {
    /// A documents file between tasks (same schema, lighter compression).
    pub fn create_scratch(path: &Path) -> anyhow::Result<Self> {
        DocumentsWriter::create_with(path, scratch_props())
    }
}

/// Read a documents file back, in order. With `content` false only the keys are read
/// (id, source, locator, hash, lengths; the content is an empty text), which skips the
/// text columns entirely.
pub fn read_documents(
    path: &Path,
    sources: &std::collections::HashMap<&str, usize>,
    content: bool,
    f: &mut dyn FnMut(Document) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use anyhow::anyhow;
    use arrow_array::{Array, ListArray, StringArray, StructArray, UInt32Array, UInt64Array};
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use crate::document::{Locator, Message};
    use crate::recipe::Role;

    let file = File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(file).with_context(|| format!("cannot read `{}`", path.display()))?;
    let mask = if content {
        ProjectionMask::all()
    } else {
        ProjectionMask::roots(b.parquet_schema(), [0, 1, 2, 3, 4, 10, 11, 12])
    };
    let reader = b.with_projection(mask).with_batch_size(4096).build().with_context(|| format!("cannot read `{}`", path.display()))?;
    let hex = |s: &str| u128::from_str_radix(s, 16).map_err(|_| anyhow!("`{}`: bad id `{s}`", path.display()));
    for batch in reader {
        let b = batch.with_context(|| format!("cannot read `{}`", path.display()))?;
        let col = |name: &str| b.column_by_name(name).ok_or_else(|| anyhow!("`{}` lacks column `{name}`", path.display()));
        let strs = |name: &str| -> anyhow::Result<StringArray> {
            col(name)?.as_any().downcast_ref::<StringArray>().cloned().ok_or_else(|| anyhow!("`{}`: bad column `{name}`", path.display()))
        };
        let u64s = |name: &str| -> anyhow::Result<UInt64Array> {
            col(name)?.as_any().downcast_ref::<UInt64Array>().cloned().ok_or_else(|| anyhow!("`{}`: bad column `{name}`", path.display()))
        };
        let (ids, srcs, files, hashes) = (strs("id")?, strs("source")?, strs("file")?, strs("content_hash")?);
        let (rows, chars, words) = (u64s("row")?, u64s("chars")?, u64s("words")?);
        let subs = col("sub")?.as_any().downcast_ref::<UInt32Array>().cloned().ok_or_else(|| anyhow!("bad column `sub`"))?;
        let texts = if content { Some(strs("text")?) } else { None };
        let msgs = if content {
            Some(col("messages")?.as_any().downcast_ref::<ListArray>().cloned().ok_or_else(|| anyhow!("bad column `messages`"))?)
        } else {
            None
        };
        for i in 0..b.num_rows() {
            let source = *sources.get(srcs.value(i)).ok_or_else(|| anyhow!("`{}`: unknown source `{}`", path.display(), srcs.value(i)))?;
            let content = match (&texts, &msgs) {
                (Some(t), _) if !t.is_null(i) => Content::Text(t.value(i).to_string()),
                (Some(_), Some(m)) => {
                    let list = m.value(i);
                    let s = list.as_any().downcast_ref::<StructArray>().ok_or_else(|| anyhow!("bad messages column"))?;
                    let roles = s.column(0).as_any().downcast_ref::<StringArray>().ok_or_else(|| anyhow!("bad role column"))?;
                    let contents = s.column(1).as_any().downcast_ref::<StringArray>().ok_or_else(|| anyhow!("bad content column"))?;
                    Content::Messages(
                        (0..s.len())
                            .map(|j| Message { role: Role::parse(roles.value(j)).unwrap_or(Role::User), content: contents.value(j).to_string() })
                            .collect(),
                    )
                }
                _ => Content::Text(String::new()),
            };
            f(Document {
                id: hex(ids.value(i))?,
                source,
                locator: Locator { file: files.value(i).into(), row: rows.value(i), sub: (!subs.is_null(i)).then(|| subs.value(i)) },
                content,
                content_hash: hex(hashes.value(i))?,
                chars: chars.value(i),
                words: words.value(i),
            })?;
        }
    }
    Ok(())
}
