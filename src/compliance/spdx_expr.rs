//! SPDX license expressions: parsed by the `spdx` crate, turned into a small tree, and
//! read into one license class (use level and flags) with the rules of
//! docs/compliance-data.md ("Reading an SPDX expression"):
//!
//! - `A AND B`: both apply; the most restrictive use level, and every flag of either;
//! - `A OR B`: the licensee chooses; the least restrictive known alternative, and the
//!   choice is reported;
//! - `A WITH exception`: `A`'s class; the exception is reported, not modelled;
//! - an id not in `licenses.toml`, `NOASSERTION`, or a class whose use is `unspecified`
//!   under an `AND` makes the whole license unknown.
//!
//! ```
//! use curate::compliance::spdx_expr::parse;
//! let e = parse("MIT AND (CC-BY-SA-4.0 OR CC-BY-4.0)").unwrap();
//! assert_eq!(e.to_string(), "MIT AND (CC-BY-SA-4.0 OR CC-BY-4.0)");
//! ```

use std::fmt;

use serde::Serialize;

use super::cfg::{LicenseClass, UseLevel};

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lic {
    Leaf { id: String, exception: Option<String> },
    And(Vec<Lic>),
    Or(Vec<Lic>),
}

/// Parse an SPDX expression. Ids are case-sensitive, as SPDX writes them; deprecated
/// ids (`GPL-3.0`) are accepted; `LicenseRef-*` is accepted as any name.
pub fn parse(text: &str) -> Result<Lic, String> {
    use spdx::expression::{ExprNode, Operator};
    let mode = spdx::ParseMode { allow_deprecated: true, allow_postfix_plus_on_gpl: true, ..spdx::ParseMode::STRICT };
    let expr = spdx::Expression::parse_mode(text, mode).map_err(|e| e.reason.to_string())?;
    let mut stack: Vec<Lic> = Vec::new();
    for node in expr.iter() {
        match node {
            ExprNode::Req(r) => stack.push(Lic::Leaf {
                id: r.req.license.to_string(),
                exception: r.req.addition.as_ref().map(|a| a.to_string()),
            }),
            ExprNode::Op(op) => {
                let b = stack.pop().ok_or("malformed expression")?;
                let a = stack.pop().ok_or("malformed expression")?;
                let and = *op == Operator::And;
                let mut parts = Vec::new();
                for x in [a, b] {
                    match x {
                        Lic::And(v) if and => parts.extend(v),
                        Lic::Or(v) if !and => parts.extend(v),
                        x => parts.push(x),
                    }
                }
                stack.push(if and { Lic::And(parts) } else { Lic::Or(parts) });
            }
        }
    }
    match (stack.pop(), stack.is_empty()) {
        (Some(l), true) => Ok(l),
        _ => Err("malformed expression".into()),
    }
}

/// For an expression that does not parse: the same expression with each id in the
/// case SPDX writes it (`mit` → `MIT`, `apache-2.0 or mit` → `Apache-2.0 OR MIT`),
/// when that parses.
pub fn suggest(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.is_empty() {
            return;
        }
        let w = std::mem::take(word);
        let fixed = match w.to_ascii_uppercase().as_str() {
            "AND" | "OR" | "WITH" => w.to_ascii_uppercase(),
            _ if w.len() > 11 && w[..11].eq_ignore_ascii_case("licenseref-") => format!("LicenseRef-{}", &w[11..]),
            _ => {
                let plus = w.ends_with('+');
                let base = w.trim_end_matches('+');
                let id = spdx::identifiers::LICENSES.iter().map(|l| l.name).find(|n| n.eq_ignore_ascii_case(base));
                let ex = spdx::identifiers::EXCEPTIONS.iter().map(|e| e.name).find(|n| n.eq_ignore_ascii_case(base));
                match id.or(ex) {
                    Some(n) => format!("{n}{}", if plus { "+" } else { "" }),
                    None => w,
                }
            }
        };
        out.push_str(&fixed);
    };
    for c in text.chars() {
        if c.is_whitespace() || c == '(' || c == ')' {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    (out != text && parse(&out).is_ok()).then_some(out)
}

impl Lic {
    /// Every license id, in order of appearance.
    pub fn ids(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |id, _| out.push(id));
        out
    }

    fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a str, Option<&'a str>)) {
        match self {
            Lic::Leaf { id, exception } => f(id, exception.as_deref()),
            Lic::And(v) | Lic::Or(v) => v.iter().for_each(|x| x.walk(f)),
        }
    }

    /// `a AND b AND …` of several expressions, flattened, without repeats.
    pub fn all_of(parts: impl IntoIterator<Item = Lic>) -> Option<Lic> {
        let mut out: Vec<Lic> = Vec::new();
        for p in parts {
            let items = match p {
                Lic::And(v) => v,
                x => vec![x],
            };
            for i in items {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        match out.len() {
            0 => None,
            1 => out.pop(),
            _ => Some(Lic::And(out)),
        }
    }
}

impl fmt::Display for Lic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, v: &[Lic], op: &str| -> fmt::Result {
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                match x {
                    Lic::Leaf { .. } => write!(f, "{x}")?,
                    _ => write!(f, "({x})")?,
                }
            }
            Ok(())
        };
        match self {
            Lic::Leaf { id, exception: None } => write!(f, "{id}"),
            Lic::Leaf { id, exception: Some(e) } => write!(f, "{id} WITH {e}"),
            Lic::And(v) => join(f, v, "AND"),
            Lic::Or(v) => join(f, v, "OR"),
        }
    }
}

/// The class of a whole expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExprClass {
    /// Every id is in `licenses.toml` with a known use level, none is `NOASSERTION`.
    pub known: bool,
    #[serde(rename = "use")]
    pub use_: UseLevel,
    pub attribution: bool,
    pub share_alike: bool,
    pub no_derivatives: bool,
    /// The ids the class rests on: all of them under AND, the chosen one under OR.
    pub rests_on: Vec<String>,
    /// Ids that made the license unknown.
    pub unknown: Vec<String>,
    /// `WITH` exceptions, reported but not modelled.
    pub exceptions: Vec<String>,
    /// The alternatives chosen under each OR, as `chosen (over a, b)`.
    pub choices: Vec<String>,
}

impl UseLevel {
    /// Restrictiveness: commercial < non-commercial < academic-only.
    fn rank(self) -> u8 {
        match self {
            UseLevel::Commercial => 0,
            UseLevel::NonCommercial => 1,
            UseLevel::AcademicOnly => 2,
            UseLevel::Unspecified => 3,
        }
    }
}

/// Read an expression into one class; `lookup` finds a license id's class.
pub fn classify<'a>(l: &Lic, lookup: &dyn Fn(&str) -> Option<&'a LicenseClass>) -> ExprClass {
    match l {
        Lic::Leaf { id, exception } => match lookup(id) {
            Some(c) => {
                let known = c.use_ != UseLevel::Unspecified;
                ExprClass {
                    known,
                    use_: c.use_,
                    attribution: c.attribution,
                    share_alike: c.share_alike,
                    no_derivatives: c.no_derivatives,
                    rests_on: vec![id.clone()],
                    unknown: if known { vec![] } else { vec![id.clone()] },
                    exceptions: exception.iter().cloned().collect(),
                    choices: vec![],
                }
            }
            None => ExprClass {
                known: false,
                use_: UseLevel::Unspecified,
                attribution: false,
                share_alike: false,
                no_derivatives: false,
                rests_on: vec![id.clone()],
                unknown: vec![id.clone()],
                exceptions: exception.iter().cloned().collect(),
                choices: vec![],
            },
        },
        Lic::And(parts) => {
            let cs: Vec<ExprClass> = parts.iter().map(|p| classify(p, lookup)).collect();
            let known = cs.iter().all(|c| c.known);
            let most = cs.iter().map(|c| c.use_).max_by_key(|u| u.rank()).unwrap_or(UseLevel::Unspecified);
            ExprClass {
                known,
                use_: if known { most } else { UseLevel::Unspecified },
                attribution: cs.iter().any(|c| c.attribution),
                share_alike: cs.iter().any(|c| c.share_alike),
                no_derivatives: cs.iter().any(|c| c.no_derivatives),
                rests_on: cs.iter().flat_map(|c| c.rests_on.clone()).collect(),
                unknown: cs.iter().flat_map(|c| c.unknown.clone()).collect(),
                exceptions: cs.iter().flat_map(|c| c.exceptions.clone()).collect(),
                choices: cs.iter().flat_map(|c| c.choices.clone()).collect(),
            }
        }
        Lic::Or(parts) => {
            let cs: Vec<ExprClass> = parts.iter().map(|p| classify(p, lookup)).collect();
            // The least restrictive known alternative; among equals, the one with the
            // fewest duties; among those, the first written.
            let burden = |c: &ExprClass| (c.use_.rank(), c.no_derivatives, c.share_alike, c.attribution);
            let best = cs.iter().enumerate().filter(|(_, c)| c.known).min_by_key(|(i, c)| (burden(c), *i)).map(|(i, _)| i);
            match best {
                Some(i) => {
                    let mut c = cs[i].clone();
                    let others: Vec<String> =
                        parts.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| p.to_string()).collect();
                    c.choices.push(format!("{} (over {})", parts[i], others.join(", ")));
                    c
                }
                None => ExprClass {
                    known: false,
                    use_: UseLevel::Unspecified,
                    attribution: cs.iter().any(|c| c.attribution),
                    share_alike: cs.iter().any(|c| c.share_alike),
                    no_derivatives: cs.iter().any(|c| c.no_derivatives),
                    rests_on: cs.iter().flat_map(|c| c.rests_on.clone()).collect(),
                    unknown: cs.iter().flat_map(|c| c.unknown.clone()).collect(),
                    exceptions: cs.iter().flat_map(|c| c.exceptions.clone()).collect(),
                    choices: vec![],
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_miscased_expression_gets_its_spdx_spelling() {
        assert_eq!(suggest("mit").as_deref(), Some("MIT"));
        assert_eq!(suggest("apache-2.0 or mit").as_deref(), Some("Apache-2.0 OR MIT"));
        assert_eq!(suggest("(cc-by-sa-4.0 and licenseref-x)").as_deref(), Some("(CC-BY-SA-4.0 AND LicenseRef-x)"));
        assert_eq!(suggest("gpl-3.0-only with classpath-exception-2.0").as_deref(), Some("GPL-3.0-only WITH Classpath-exception-2.0"));
        assert_eq!(suggest("MIT"), None, "already right");
        assert_eq!(suggest("mit license"), None, "no spelling of it parses");
    }

    fn class(id: &str, use_: UseLevel, attribution: bool, share_alike: bool, no_derivatives: bool) -> LicenseClass {
        LicenseClass {
            id: id.into(),
            name: id.into(),
            use_,
            attribution,
            share_alike,
            no_derivatives,
            url: String::new(),
            text: None,
            hub_tags: vec![],
            dpi_names: vec![],
            why: String::new(),
            output_terms: vec![],
        }
    }

    fn classes() -> Vec<LicenseClass> {
        vec![
            class("MIT", UseLevel::Commercial, true, false, false),
            class("CC0-1.0", UseLevel::Commercial, false, false, false),
            class("CC-BY-SA-4.0", UseLevel::Commercial, true, true, false),
            class("CC-BY-NC-4.0", UseLevel::NonCommercial, true, false, false),
            class("CC-BY-NC-ND-4.0", UseLevel::NonCommercial, true, false, true),
            class("GPL-3.0-only", UseLevel::Commercial, true, true, false),
            class("LicenseRef-Academic-Research-Only", UseLevel::AcademicOnly, false, false, false),
            class("NOASSERTION", UseLevel::Unspecified, false, false, false),
        ]
    }

    fn of(expr: &str) -> ExprClass {
        let cs = classes();
        classify(&parse(expr).unwrap(), &|id| cs.iter().find(|c| c.id == id))
    }

    #[test]
    fn and_takes_the_most_restrictive_leaf_and_every_flag() {
        let c = of("MIT AND CC-BY-NC-4.0 AND CC-BY-SA-4.0");
        assert!(c.known);
        assert_eq!(c.use_, UseLevel::NonCommercial);
        assert!(c.attribution && c.share_alike && !c.no_derivatives);
        let c = of("CC-BY-SA-4.0 AND LicenseRef-Academic-Research-Only");
        assert_eq!(c.use_, UseLevel::AcademicOnly);
    }

    #[test]
    fn or_takes_the_least_restrictive_known_alternative_and_reports_it() {
        let c = of("CC-BY-NC-4.0 OR MIT");
        assert_eq!(c.use_, UseLevel::Commercial);
        assert_eq!(c.rests_on, vec!["MIT"]);
        assert_eq!(c.choices, vec!["MIT (over CC-BY-NC-4.0)"]);
        // Equal use levels: fewer duties wins.
        let c = of("CC-BY-SA-4.0 OR CC0-1.0");
        assert_eq!(c.rests_on, vec!["CC0-1.0"]);
        // An unknown alternative is simply not chosen.
        let c = of("LicenseRef-Nobody-Knows OR CC-BY-NC-4.0");
        assert!(c.known);
        assert_eq!(c.use_, UseLevel::NonCommercial);
    }

    #[test]
    fn with_uses_the_base_license_and_reports_the_exception() {
        let c = of("GPL-3.0-only WITH Classpath-exception-2.0");
        assert!(c.known && c.share_alike);
        assert_eq!(c.exceptions, vec!["Classpath-exception-2.0"]);
    }

    #[test]
    fn unknown_ids_and_noassertion_under_and_make_the_license_unknown() {
        let c = of("MIT AND LicenseRef-Nobody-Knows");
        assert!(!c.known);
        assert_eq!(c.unknown, vec!["LicenseRef-Nobody-Knows"]);
        assert_eq!(c.use_, UseLevel::Unspecified);
        assert!(!of("NOASSERTION").known);
        assert!(!of("Apache-2.0").known, "an SPDX id missing from licenses.toml is unknown");
    }

    #[test]
    fn nested_expressions_print_with_parentheses_and_flatten() {
        let e = parse("(MIT AND CC0-1.0) AND (CC-BY-4.0 OR CC-BY-SA-4.0)").unwrap();
        assert_eq!(e.to_string(), "MIT AND CC0-1.0 AND (CC-BY-4.0 OR CC-BY-SA-4.0)");
        assert_eq!(e.ids(), vec!["MIT", "CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0"]);
        assert!(parse("mit").is_err(), "ids are case-sensitive");
        assert!(parse("MIT AND").is_err());
        assert_eq!(parse("LicenseRef-Llama2-Community").unwrap().to_string(), "LicenseRef-Llama2-Community");
    }
}
