//! HELM run-spec files: the list of evaluation scenarios a HELM run covers, and the
//! benchmark datasets they name.
//!
//! A run-spec file (`run_specs.conf`) is HOCON; in practice it is a list of entries
//! such as
//!
//! ```text
//! entries: [
//!   # MMLU
//!   {description: "mmlu:model=neurips/local,subject=philosophy,data_augmentation=canonical", priority: 1}
//!   {description: "gsm:model=neurips/local", priority: 1},
//! ]
//! ```
//!
//! where each description is `scenario:key=value,key=value`. This module reads that
//! subset of HOCON (comments with `#` or `//`, optional commas, quoted or bare
//! values), then maps each scenario curate knows to a [`Benchmark`] and the dataset to
//! fetch for it ([`EvalDataset`]). Scenarios it does not know are errors that name the
//! line, so a run never silently skips a benchmark.
//!
//! `max_eval_instances` limits how many items HELM samples; decontamination ignores it
//! and checks every item of the split, since which ones HELM samples depends on its seed.

use std::fmt;

/// A problem in a run-spec file, with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct HelmError {
    pub line: usize,
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> HelmError {
    HelmError { line, message: message.into() }
}

/// One run-spec entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// The whole description, e.g. `mmlu:model=neurips/local,subject=philosophy`.
    pub description: String,
    /// The scenario name before the colon, e.g. `mmlu`.
    pub scenario: String,
    /// The `key=value` arguments, in order.
    pub args: Vec<(String, String)>,
    pub priority: Option<i64>,
    /// Line of the entry's opening brace.
    pub line: usize,
}

impl RunSpec {
    /// An argument's value; an empty value (`subtask=`) reads as `None`.
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open(char),
    Close(char),
    Sep,
    Str(String),
}

fn tokenize(text: &str) -> Result<Vec<(Tok, usize)>, HelmError> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() || c == ',' => {}
            '#' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '{' | '[' => out.push((Tok::Open(c), line)),
            '}' | ']' => out.push((Tok::Close(c), line)),
            ':' | '=' => out.push((Tok::Sep, line)),
            '"' => {
                let start = line;
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(err(start, "unterminated string")),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(e) => s.push(e),
                            None => return Err(err(start, "unterminated string")),
                        },
                        Some('\n') => return Err(err(start, "a string may not span lines")),
                        Some(c) => s.push(c),
                    }
                }
                out.push((Tok::Str(s), start));
            }
            c => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, ',' | ':' | '=' | '{' | '}' | '[' | ']' | '#' | '"') {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push((Tok::Str(s), line));
            }
        }
    }
    Ok(out)
}

/// Reads a run-spec file's entries.
pub fn parse_run_specs(text: &str) -> Result<Vec<RunSpec>, HelmError> {
    let toks = tokenize(text)?;
    let mut i = 0;
    let last_line = text.lines().count().max(1);
    let line_at = |i: usize| toks.get(i).map(|t| t.1).unwrap_or(last_line);
    // An optional root object around `entries`.
    let rooted = matches!(toks.first(), Some((Tok::Open('{'), _)));
    if rooted {
        i += 1;
    }
    match toks.get(i) {
        Some((Tok::Str(k), _)) if k == "entries" => i += 1,
        _ => return Err(err(line_at(i), "expected `entries: [ … ]`")),
    }
    if matches!(toks.get(i), Some((Tok::Sep, _))) {
        i += 1;
    }
    if !matches!(toks.get(i), Some((Tok::Open('['), _))) {
        return Err(err(line_at(i), "expected `[` after `entries`"));
    }
    i += 1;
    let mut specs = Vec::new();
    loop {
        match toks.get(i) {
            Some((Tok::Close(']'), _)) => {
                i += 1;
                break;
            }
            Some((Tok::Open('{'), line)) => {
                let line = *line;
                i += 1;
                let mut description = None;
                let mut priority = None;
                loop {
                    match toks.get(i) {
                        Some((Tok::Close('}'), _)) => {
                            i += 1;
                            break;
                        }
                        Some((Tok::Str(key), kline)) => {
                            let (key, kline) = (key.clone(), *kline);
                            i += 1;
                            if !matches!(toks.get(i), Some((Tok::Sep, _))) {
                                return Err(err(kline, format!("expected `:` after `{key}`")));
                            }
                            i += 1;
                            let Some((Tok::Str(value), vline)) = toks.get(i) else {
                                return Err(err(line_at(i), format!("expected a value for `{key}`")));
                            };
                            i += 1;
                            match key.as_str() {
                                "description" => description = Some(value.clone()),
                                "priority" => {
                                    priority = Some(value.parse::<i64>().map_err(|_| {
                                        err(*vline, format!("`priority` must be an integer, not `{value}`"))
                                    })?)
                                }
                                // Other keys (groups, tags) do not concern decontamination.
                                _ => {}
                            }
                        }
                        None => return Err(err(line, "entry is not closed with `}`")),
                        Some((_, l)) => return Err(err(*l, "expected a key or `}` in an entry")),
                    }
                }
                let Some(description) = description else {
                    return Err(err(line, "entry has no `description`"));
                };
                let (scenario, args) = parse_description(&description).map_err(|m| err(line, m))?;
                specs.push(RunSpec { description, scenario, args, priority, line });
            }
            None => return Err(err(last_line, "`entries` is not closed with `]`")),
            Some((_, l)) => return Err(err(*l, "expected `{` to start an entry or `]` to end the list")),
        }
    }
    if rooted {
        if !matches!(toks.get(i), Some((Tok::Close('}'), _))) {
            return Err(err(line_at(i), "expected `}` closing the file"));
        }
        i += 1;
    }
    if let Some((_, l)) = toks.get(i) {
        return Err(err(*l, "unexpected text after the entries"));
    }
    Ok(specs)
}

/// Splits `scenario:key=value,key=value`.
pub fn parse_description(desc: &str) -> Result<(String, Vec<(String, String)>), String> {
    let (scenario, rest) = desc.split_once(':').unwrap_or((desc, ""));
    let scenario = scenario.trim();
    if scenario.is_empty() {
        return Err(format!("description {desc:?} has no scenario name"));
    }
    let mut args = Vec::new();
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(format!("argument {part:?} in {desc:?} is not `key=value`"));
        };
        args.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok((scenario.to_string(), args))
}

/// A benchmark a run spec names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Benchmark {
    /// MMLU (Hendrycks et al. 2021), one subject.
    Mmlu { subject: String },
    /// GSM8K (Cobbe et al. 2021), HELM scenario `gsm`.
    Gsm8k,
    /// TruthfulQA (Lin et al. 2022); HELM's `mc_single` task uses the multiple-choice data.
    TruthfulQa { task: String },
    /// BBQ (Parrish et al. 2022); `subject` is a category or `all`.
    Bbq { subject: String },
    /// CNN/DailyMail summarisation, HELM scenario `summarization_cnndm`.
    CnnDailyMail,
    /// A BIG-bench task (Srivastava et al. 2022), with its subtask when it has several.
    BigBench { task: String, subtask: Option<String> },
}

/// Scenario names curate maps, for messages.
pub const KNOWN_SCENARIOS: &[&str] = &["mmlu", "gsm", "truthful_qa", "bbq", "summarization_cnndm", "big_bench"];

impl Benchmark {
    /// The benchmark a run spec names.
    pub fn from_run_spec(spec: &RunSpec) -> Result<Benchmark, HelmError> {
        let need = |key: &str| {
            spec.arg(key)
                .map(str::to_string)
                .ok_or_else(|| err(spec.line, format!("`{}` needs a `{key}` argument", spec.scenario)))
        };
        Ok(match spec.scenario.as_str() {
            "mmlu" => Benchmark::Mmlu { subject: need("subject")? },
            "gsm" => Benchmark::Gsm8k,
            "truthful_qa" => Benchmark::TruthfulQa { task: spec.arg("task").unwrap_or("mc_single").to_string() },
            "bbq" => Benchmark::Bbq { subject: spec.arg("subject").unwrap_or("all").to_string() },
            "summarization_cnndm" => Benchmark::CnnDailyMail,
            "big_bench" => {
                Benchmark::BigBench { task: need("task")?, subtask: spec.arg("subtask").map(str::to_string) }
            }
            other => {
                return Err(err(
                    spec.line,
                    format!("scenario `{other}` is not one curate can map (known: {})", KNOWN_SCENARIOS.join(", ")),
                ));
            }
        })
    }

    /// The family name, the unit of the report's contamination table: `mmlu`, `gsm8k`,
    /// `truthful_qa`, `bbq`, `cnn_dailymail`, `big_bench`.
    pub fn family(&self) -> &'static str {
        match self {
            Benchmark::Mmlu { .. } => "mmlu",
            Benchmark::Gsm8k => "gsm8k",
            Benchmark::TruthfulQa { .. } => "truthful_qa",
            Benchmark::Bbq { .. } => "bbq",
            Benchmark::CnnDailyMail => "cnn_dailymail",
            Benchmark::BigBench { .. } => "big_bench",
        }
    }

    /// The dataset to fetch for it. Hub ids are the dataset's canonical repository
    /// where it has one; BBQ and BIG-bench are published on GitHub and HELM reads them
    /// there, so their ids are hub mirrors of those files, which a recipe can replace.
    pub fn dataset(&self) -> EvalDataset {
        match self {
            Benchmark::Mmlu { subject } => EvalDataset {
                hub_id: "cais/mmlu",
                config: Some(subject.clone()),
                split: Some("test"),
                text_fields: &["question"],
            },
            Benchmark::Gsm8k => EvalDataset {
                hub_id: "openai/gsm8k",
                config: Some("main".into()),
                split: Some("test"),
                text_fields: &["question", "answer"],
            },
            Benchmark::TruthfulQa { .. } => EvalDataset {
                hub_id: "truthfulqa/truthful_qa",
                config: Some("multiple_choice".into()),
                split: Some("validation"),
                text_fields: &["question"],
            },
            Benchmark::Bbq { subject } => EvalDataset {
                hub_id: "heegyu/bbq",
                config: (subject != "all").then(|| subject.clone()),
                split: Some("test"),
                text_fields: &["context", "question"],
            },
            Benchmark::CnnDailyMail => EvalDataset {
                hub_id: "abisee/cnn_dailymail",
                config: Some("3.0.0".into()),
                split: Some("test"),
                text_fields: &["article", "highlights"],
            },
            Benchmark::BigBench { task, .. } => EvalDataset {
                hub_id: "tasksource/bigbench",
                config: Some(task.clone()),
                split: None,
                text_fields: &["inputs"],
            },
        }
    }
}

impl fmt::Display for Benchmark {
    /// `mmlu:philosophy`, `gsm8k`, `truthful_qa:mc_single`, `bbq:all`, `cnn_dailymail`,
    /// `big_bench:logical_deduction/three_objects`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Benchmark::Mmlu { subject } => write!(f, "mmlu:{subject}"),
            Benchmark::Gsm8k => f.write_str("gsm8k"),
            Benchmark::TruthfulQa { task } => write!(f, "truthful_qa:{task}"),
            Benchmark::Bbq { subject } => write!(f, "bbq:{subject}"),
            Benchmark::CnnDailyMail => f.write_str("cnn_dailymail"),
            Benchmark::BigBench { task, subtask: None } => write!(f, "big_bench:{task}"),
            Benchmark::BigBench { task, subtask: Some(s) } => write!(f, "big_bench:{task}/{s}"),
        }
    }
}

/// A dataset to fetch and index for one benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalDataset {
    pub hub_id: &'static str,
    /// The dataset configuration (subset); `None` means all of them.
    pub config: Option<String>,
    /// The split; `None` means every split.
    pub split: Option<&'static str>,
    /// The fields whose text is indexed, each one item.
    pub text_fields: &'static [&'static str],
}

/// Every benchmark a run-spec file names, each once (a benchmark listed twice, say
/// with different `max_eval_instances`, is one), in order of first mention; or every
/// entry that could not be mapped.
pub fn benchmarks(specs: &[RunSpec]) -> Result<Vec<Benchmark>, Vec<HelmError>> {
    let mut out: Vec<Benchmark> = Vec::new();
    let mut errors = Vec::new();
    for s in specs {
        match Benchmark::from_run_spec(s) {
            Ok(b) if !out.contains(&b) => out.push(b),
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"entries: [
    # a BIG-bench task with no subtask
    {description: "big_bench:model=m,max_train_instances=3,task=emoji_movie,subtask=", priority: 1}
    // and one with
    {description: "big_bench:model=m,task=logical_deduction,subtask=three_objects,max_eval_instances=6",priority: 2},

    {description: "mmlu:model=m,subject=philosophy,data_augmentation=canonical", priority: 1}
    {description: "mmlu:model=m,subject=philosophy,data_augmentation=canonical,max_eval_instances=4", priority: 1}
    {description: "truthful_qa:task=mc_single,model=m", priority: 1},
    {description: "summarization_cnndm:model=m", priority: 1},
    {description: "gsm:model=m", priority: 1}
    {description: "bbq:subject=all,model=m", priority: 1},
]
"#;

    #[test]
    fn parses_entries_comments_and_optional_commas() {
        let specs = parse_run_specs(SAMPLE).unwrap();
        assert_eq!(specs.len(), 8);
        assert_eq!(specs[0].scenario, "big_bench");
        assert_eq!(specs[0].arg("task"), Some("emoji_movie"));
        assert_eq!(specs[0].arg("subtask"), None);
        assert_eq!(specs[0].line, 3);
        assert_eq!(specs[1].priority, Some(2));
        assert_eq!(specs[1].arg("max_eval_instances"), Some("6"));
    }

    #[test]
    fn maps_each_scenario_to_its_dataset() {
        let specs = parse_run_specs(SAMPLE).unwrap();
        let b = benchmarks(&specs).unwrap();
        let names: Vec<String> = b.iter().map(|b| b.to_string()).collect();
        assert_eq!(
            names,
            [
                "big_bench:emoji_movie",
                "big_bench:logical_deduction/three_objects",
                "mmlu:philosophy",
                "truthful_qa:mc_single",
                "cnn_dailymail",
                "gsm8k",
                "bbq:all"
            ]
        );
        let mmlu = b[2].dataset();
        assert_eq!((mmlu.hub_id, mmlu.config.as_deref(), mmlu.split), ("cais/mmlu", Some("philosophy"), Some("test")));
        let cnn = Benchmark::CnnDailyMail.dataset();
        assert_eq!((cnn.config.as_deref(), cnn.split), (Some("3.0.0"), Some("test")));
        let gsm = Benchmark::Gsm8k.dataset();
        assert_eq!((gsm.hub_id, gsm.config.as_deref(), gsm.split), ("openai/gsm8k", Some("main"), Some("test")));
        assert_eq!(b[3].dataset().config.as_deref(), Some("multiple_choice"));
        assert_eq!(b[6].dataset().config, None, "bbq `all` means every category");
        assert_eq!(b[0].dataset().config.as_deref(), Some("emoji_movie"));
        assert_eq!(b[1].family(), "big_bench");
    }

    #[test]
    fn unknown_scenarios_and_missing_arguments_name_the_line() {
        let text = "entries: [\n{description: \"samsum:model=m\", priority: 1}\n{description: \"mmlu:model=m\"}\n]";
        let specs = parse_run_specs(text).unwrap();
        let errs = benchmarks(&specs).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].line, 2);
        assert!(errs[0].message.contains("`samsum`"), "{}", errs[0]);
        assert_eq!(errs[1].to_string(), "line 3: `mmlu` needs a `subject` argument");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let cases = [
            ("entries: [\n{description: \"gsm:model=m}\n]", 2, "string may not span lines"),
            ("entries: [\n{priority: 1}\n]", 2, "no `description`"),
            ("entries: [\n{description: \"gsm\", priority: x}\n]", 2, "integer"),
            ("entries: [\n{description: \"gsm\"}\n", 2, "not closed"),
            ("runs: []", 1, "expected `entries"),
            ("entries: [\n{description: \"gsm:model\"}\n]", 2, "not `key=value`"),
        ];
        for (text, line, needle) in cases {
            let e = parse_run_specs(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(needle), "{text:?}: {e}");
        }
        assert_eq!(parse_run_specs("{ entries = [ ] }").unwrap(), vec![]);
    }

    /// The real run-spec files of the challenge, when present beside the project.
    #[test]
    #[ignore = "needs ../shared/data"]
    fn shared_data_parses_the_challenge_run_specs() {
        let dir = crate::testdata::shared_data("helm");
        for (file, entries, mmlu) in [("run_specs.conf", 30, 17), ("run_specs_full_coarse_600_budget.conf", 88, 55)] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let specs = parse_run_specs(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(specs.len(), entries, "{file}");
            let b = benchmarks(&specs).unwrap_or_else(|e| panic!("{file}: {e:?}"));
            assert_eq!(b.iter().filter(|b| b.family() == "mmlu").count(), mmlu, "{file}");
            for fam in ["gsm8k", "truthful_qa", "bbq", "cnn_dailymail", "big_bench"] {
                assert!(b.iter().any(|b| b.family() == fam), "{file}: no {fam}");
            }
            eprintln!("{file}: {} entries, {} benchmarks", specs.len(), b.len());
        }
    }
}
