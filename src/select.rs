//! The `where` row filter: a SQL boolean expression over a source's own columns.
//!
//! ```toml
//! where = "source IN ('data/CoT/gsm_train.json', 'data/CoT/aqua_rat.json') AND length(output) > 20"
//! ```
//!
//! The expression is parsed with `sqlparser` when the recipe loads (so a typo is a
//! recipe error with its line) and compiled into a small tree that is evaluated per
//! row, with SQL's three-valued logic: a comparison with NULL is unknown, and only a
//! row whose expression is TRUE is kept. Supported: column names (nested with
//! `a.b`), string / number / boolean / NULL literals, `= != <> < <= > >=`, `AND OR NOT`,
//! `IN (…)`, `BETWEEN`, `LIKE` / `ILIKE` (with `%` and `_`), `IS [NOT] NULL`, `+ - * /`,
//! and the functions `lower`, `upper`, `length`, `trim`, `coalesce`.
//!
//! A column that the first record of a file does not have is an error (a typo would
//! otherwise select nothing, silently); a column missing from a later row is NULL.
//!
//! A chain of `AND` (or of `OR`) is one node, evaluated in a loop; other nesting
//! (parentheses, `NOT`, arithmetic, comparisons) may go [`MAX_DEPTH`] levels deep, so
//! that evaluation, which recurses, cannot overflow a worker's stack. The whole
//! expression holds at most [`MAX_TOKENS`] names, values and operators (a chain of
//! some 25,000 terms), since the SQL parser's own tree is as deep as a chain is long.

use serde_json::Value;
use sqlparser::ast::{self, BinaryOperator, Expr, UnaryOperator};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

/// How deeply a `where` expression may nest, not counting `AND`/`OR` chains.
pub const MAX_DEPTH: usize = 64;

/// How many names, values and operators (commas aside) a `where` may hold.
pub const MAX_TOKENS: usize = 100_000;

#[derive(Debug, Clone)]
pub struct WhereExpr {
    text: String,
    expr: E,
    columns: Vec<Vec<String>>,
}

impl PartialEq for WhereExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

#[derive(Debug, Clone)]
enum E {
    Col(Vec<String>),
    Lit(V),
    Not(Box<E>),
    /// `a AND b AND …`, all terms of a chain in one node, so that a long chain is
    /// evaluated in a loop rather than by recursion.
    And(Vec<E>),
    Or(Vec<E>),
    Cmp(Cmp, Box<E>, Box<E>),
    Arith(Arith, Box<E>, Box<E>),
    Neg(Box<E>),
    In { e: Box<E>, list: Vec<E>, negated: bool },
    Between { e: Box<E>, lo: Box<E>, hi: Box<E>, negated: bool },
    Like { e: Box<E>, re: regex::Regex, negated: bool },
    IsNull(Box<E>, bool),
    Func(F, Vec<E>),
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy)]
enum F {
    Lower,
    Upper,
    Length,
    Trim,
    Coalesce,
}

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
}

impl WhereExpr {
    pub fn parse(text: &str) -> Result<WhereExpr, String> {
        let dialect = GenericDialect {};
        let tokens = Tokenizer::new(&dialect, text).with_unescape(true).tokenize_with_location().map_err(|e| e.to_string())?;
        // The SQL parser builds a chain as deep as it is long, and drops it by
        // recursion: bound its length before parsing.
        let n = tokens.iter().filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::Comma)).count();
        if n > MAX_TOKENS {
            return Err(format!(
                "the expression has {n} names, values and operators, more than {MAX_TOKENS}; for a long list of values use `IN (…)`"
            ));
        }
        let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
        let expr = parser.parse_expr().map_err(|e| e.to_string())?;
        let rest = parser.peek_token();
        if rest.token != Token::EOF {
            return Err(format!("unexpected `{}` after the expression", rest.token));
        }
        let mut columns = Vec::new();
        let expr = compile(&expr, &mut columns, 0)?;
        columns.sort();
        columns.dedup();
        Ok(WhereExpr { text: text.to_string(), expr, columns })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Columns the expression reads whose top-level key `row` lacks.
    pub fn missing_columns(&self, row: &Value) -> Vec<String> {
        let Some(obj) = row.as_object() else {
            return self.columns.iter().map(|c| c.join(".")).collect();
        };
        self.columns
            .iter()
            .filter(|c| !obj.contains_key(&c[0]))
            .map(|c| c.join("."))
            .collect()
    }

    /// True when the row is selected (the expression is TRUE, not FALSE or NULL).
    pub fn matches(&self, row: &Value) -> bool {
        matches!(eval(&self.expr, row), V::Bool(true))
    }

    /// Every string literal the expression names (`IN` lists, comparisons), in order
    /// and without repeats: the column values a `where` spells out.
    pub fn string_literals(&self) -> Vec<String> {
        fn walk(e: &E, out: &mut Vec<String>) {
            match e {
                E::Lit(V::Str(s)) => {
                    if !out.contains(s) {
                        out.push(s.clone());
                    }
                }
                E::Col(_) | E::Lit(_) => {}
                E::Not(x) | E::Neg(x) | E::IsNull(x, _) | E::Like { e: x, .. } => walk(x, out),
                E::And(xs) | E::Or(xs) => xs.iter().for_each(|x| walk(x, out)),
                E::Cmp(_, a, b) | E::Arith(_, a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                E::In { e, list, .. } => {
                    walk(e, out);
                    list.iter().for_each(|x| walk(x, out));
                }
                E::Between { e, lo, hi, .. } => {
                    walk(e, out);
                    walk(lo, out);
                    walk(hi, out);
                }
                E::Func(_, args) => args.iter().for_each(|x| walk(x, out)),
            }
        }
        let mut out = Vec::new();
        walk(&self.expr, &mut out);
        out
    }

    /// Whether some row holding the `known` column values could be selected, whatever
    /// its other columns hold. Sound rather than exact: an expression that reads an
    /// unknown column is assumed able to select, unless an `AND` with a known FALSE (or
    /// an `OR` with a known TRUE) settles it. The compliance stage uses this to learn
    /// which catalogued subsets (`source = '…'`) a `where` can let through.
    pub fn may_match(&self, known: &serde_json::Map<String, Value>) -> bool {
        let row = Value::Object(known.clone());
        match partial(&self.expr, &row) {
            None => true,
            Some(v) => v == V::Bool(true),
        }
    }
}

/// Evaluation with some columns unknown: `None` when the value depends on them.
fn partial(e: &E, row: &Value) -> Option<V> {
    let truth_of = |x: &E| partial(x, row).map(|v| truth(&v));
    match e {
        E::And(terms) | E::Or(terms) => {
            // The value that settles the chain: FALSE for AND, TRUE for OR.
            let settles = matches!(e, E::Or(_));
            let mut unknown_column = false;
            let mut null = false;
            for t in terms {
                match truth_of(t) {
                    Some(Some(b)) if b == settles => return Some(V::Bool(settles)),
                    Some(Some(_)) => {}
                    Some(None) => null = true,
                    None => unknown_column = true,
                }
            }
            if unknown_column {
                None
            } else if null {
                Some(V::Null)
            } else {
                Some(V::Bool(!settles))
            }
        }
        E::Not(x) => truth_of(x).map(|t| from_truth(t.map(|b| !b))),
        _ if columns_known(e, row) => Some(eval(e, row)),
        _ => None,
    }
}

/// Every column the expression reads is present in `row`.
fn columns_known(e: &E, row: &Value) -> bool {
    let k = |x: &E| columns_known(x, row);
    match e {
        E::Col(path) => row.as_object().is_some_and(|o| o.contains_key(&path[0])),
        E::Lit(_) => true,
        E::Not(x) | E::Neg(x) | E::IsNull(x, _) => k(x),
        E::Like { e, .. } => k(e),
        E::And(terms) | E::Or(terms) => terms.iter().all(k),
        E::Cmp(_, a, b) | E::Arith(_, a, b) => k(a) && k(b),
        E::In { e, list, .. } => k(e) && list.iter().all(k),
        E::Between { e, lo, hi, .. } => k(e) && k(lo) && k(hi),
        E::Func(_, args) => args.iter().all(k),
    }
}

/// The terms of a chain of `op` (`a AND b AND c`, parsed as `(a AND b) AND c`), in
/// order, found without recursion; parentheses around a part of the chain are looked
/// through.
fn chain<'a>(e: &'a Expr, op: &BinaryOperator) -> Vec<&'a Expr> {
    let mut terms = Vec::new();
    let mut stack = vec![e];
    while let Some(x) = stack.pop() {
        match x {
            Expr::BinaryOp { left, op: o, right } if o == op => {
                stack.push(right);
                stack.push(left);
            }
            Expr::Nested(inner) if matches!(&**inner, Expr::BinaryOp { op: o, .. } if o == op) => stack.push(inner),
            _ => terms.push(x),
        }
    }
    terms
}

fn compile(e: &Expr, cols: &mut Vec<Vec<String>>, depth: usize) -> Result<E, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the expression nests more than {MAX_DEPTH} levels deep (chains of AND or OR do not count; for a long list of values use `IN (…)`)"
        ));
    }
    let d = depth + 1;
    let compile = |x: &Expr, cols: &mut Vec<Vec<String>>| compile(x, cols, d);
    let b = |x: &Expr, cols: &mut Vec<Vec<String>>| compile(x, cols).map(Box::new);
    Ok(match e {
        Expr::BinaryOp { op: op @ (BinaryOperator::And | BinaryOperator::Or), .. } => {
            let terms = chain(e, op).into_iter().map(|t| compile(t, cols)).collect::<Result<Vec<_>, _>>()?;
            if *op == BinaryOperator::And { E::And(terms) } else { E::Or(terms) }
        }
        Expr::Identifier(id) => {
            let c = vec![id.value.clone()];
            cols.push(c.clone());
            E::Col(c)
        }
        Expr::CompoundIdentifier(ids) => {
            let c: Vec<String> = ids.iter().map(|i| i.value.clone()).collect();
            cols.push(c.clone());
            E::Col(c)
        }
        Expr::Value(v) => E::Lit(literal(&v.value)?),
        Expr::Nested(x) => compile(x, cols)?,
        Expr::UnaryOp { op: UnaryOperator::Not, expr } => E::Not(b(expr, cols)?),
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => E::Neg(b(expr, cols)?),
        Expr::UnaryOp { op: UnaryOperator::Plus, expr } => compile(expr, cols)?,
        Expr::BinaryOp { left, op, right } => {
            let (l, r) = (b(left, cols)?, b(right, cols)?);
            match op {
                BinaryOperator::Eq => E::Cmp(Cmp::Eq, l, r),
                BinaryOperator::NotEq => E::Cmp(Cmp::Ne, l, r),
                BinaryOperator::Lt => E::Cmp(Cmp::Lt, l, r),
                BinaryOperator::LtEq => E::Cmp(Cmp::Le, l, r),
                BinaryOperator::Gt => E::Cmp(Cmp::Gt, l, r),
                BinaryOperator::GtEq => E::Cmp(Cmp::Ge, l, r),
                BinaryOperator::Plus => E::Arith(Arith::Add, l, r),
                BinaryOperator::Minus => E::Arith(Arith::Sub, l, r),
                BinaryOperator::Multiply => E::Arith(Arith::Mul, l, r),
                BinaryOperator::Divide => E::Arith(Arith::Div, l, r),
                other => return Err(format!("operator `{other}` is not supported")),
            }
        }
        Expr::In { expr, target: ast::InTarget::List(list), negated, global: false } => E::In {
            e: b(expr, cols)?,
            list: list.iter().map(|x| compile(x, cols)).collect::<Result<_, _>>()?,
            negated: *negated,
        },
        Expr::Between { expr, negated, low, high } => {
            E::Between { e: b(expr, cols)?, lo: b(low, cols)?, hi: b(high, cols)?, negated: *negated }
        }
        Expr::Like { negated, any: false, expr, pattern, escape_char: None } => {
            E::Like { e: b(expr, cols)?, re: like_regex(pattern, false)?, negated: *negated }
        }
        Expr::ILike { negated, any: false, expr, pattern, escape_char: None } => {
            E::Like { e: b(expr, cols)?, re: like_regex(pattern, true)?, negated: *negated }
        }
        Expr::IsNull(x) => E::IsNull(b(x, cols)?, false),
        Expr::IsNotNull(x) => E::IsNull(b(x, cols)?, true),
        Expr::IsTrue(x) => E::Cmp(Cmp::Eq, b(x, cols)?, Box::new(E::Lit(V::Bool(true)))),
        Expr::IsFalse(x) => E::Cmp(Cmp::Eq, b(x, cols)?, Box::new(E::Lit(V::Bool(false)))),
        Expr::Function(f) => {
            let name = f.name.to_string().to_ascii_lowercase();
            let func = match name.as_str() {
                "lower" => F::Lower,
                "upper" => F::Upper,
                "length" | "char_length" | "len" => F::Length,
                "trim" => F::Trim,
                "coalesce" => F::Coalesce,
                _ => return Err(format!("function `{name}` is not supported (lower, upper, length, trim, coalesce)")),
            };
            let ast::FunctionArguments::List(list) = &f.args else {
                return Err(format!("`{name}` needs arguments in parentheses"));
            };
            let mut args = Vec::new();
            for a in &list.args {
                match a {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => args.push(compile(x, cols)?),
                    other => return Err(format!("argument `{other}` of `{name}` is not supported")),
                }
            }
            let arity_ok = match func {
                F::Coalesce => !args.is_empty(),
                _ => args.len() == 1,
            };
            if !arity_ok {
                return Err(format!("`{name}` takes {} argument(s)", if matches!(func, F::Coalesce) { "1 or more" } else { "1" }));
            }
            E::Func(func, args)
        }
        Expr::Trim { expr, trim_where: None, trim_what: None, trim_characters: None } => {
            E::Func(F::Trim, vec![compile(expr, cols)?])
        }
        other => return Err(format!("`{other}` is not supported in `where`")),
    })
}

fn literal(v: &ast::Value) -> Result<V, String> {
    Ok(match v {
        ast::Value::Number(n, _) => V::Num(n.parse::<f64>().map_err(|_| format!("bad number `{n}`"))?),
        ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => V::Str(s.clone()),
        ast::Value::Boolean(b) => V::Bool(*b),
        ast::Value::Null => V::Null,
        other => return Err(format!("literal `{other}` is not supported")),
    })
}

fn like_regex(pattern: &Expr, case_insensitive: bool) -> Result<regex::Regex, String> {
    let Expr::Value(v) = pattern else {
        return Err("the LIKE pattern must be a string literal".into());
    };
    let V::Str(p) = literal(&v.value)? else {
        return Err("the LIKE pattern must be a string literal".into());
    };
    let mut re = String::from(if case_insensitive { "(?si)^" } else { "(?s)^" });
    for c in p.chars() {
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).map_err(|e| e.to_string())
}

fn lookup<'a>(row: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = row;
    for p in path {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

fn from_json(v: Option<&Value>) -> V {
    match v {
        None | Some(Value::Null) => V::Null,
        Some(Value::Bool(b)) => V::Bool(*b),
        Some(Value::Number(n)) => n.as_f64().map(V::Num).unwrap_or(V::Null),
        Some(Value::String(s)) => V::Str(s.clone()),
        Some(other) => V::Str(other.to_string()),
    }
}

fn as_num(v: &V) -> Option<f64> {
    match v {
        V::Num(n) => Some(*n),
        V::Str(s) => s.trim().parse().ok(),
        V::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        V::Null => None,
    }
}

/// SQL comparison; a number compared with a string that reads as a number compares
/// numerically (CSV columns are strings).
fn compare(a: &V, b: &V) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (V::Null, _) | (_, V::Null) => None,
        (V::Str(x), V::Str(y)) => Some(x.cmp(y)),
        (V::Bool(x), V::Bool(y)) => Some(x.cmp(y)),
        _ => as_num(a)?.partial_cmp(&as_num(b)?),
    }
}

fn truth(v: &V) -> Option<bool> {
    match v {
        V::Bool(b) => Some(*b),
        V::Null => None,
        V::Num(n) => Some(*n != 0.0),
        V::Str(_) => None,
    }
}

fn from_truth(t: Option<bool>) -> V {
    t.map(V::Bool).unwrap_or(V::Null)
}

fn eval(e: &E, row: &Value) -> V {
    use std::cmp::Ordering::*;
    match e {
        E::Col(path) => from_json(lookup(row, path)),
        E::Lit(v) => v.clone(),
        E::Not(x) => from_truth(truth(&eval(x, row)).map(|b| !b)),
        E::And(terms) | E::Or(terms) => {
            // Three-valued: FALSE settles an AND (TRUE an OR) whatever the other terms
            // are, NULL otherwise wins over TRUE (FALSE).
            let settles = matches!(e, E::Or(_));
            let mut null = false;
            for t in terms {
                match truth(&eval(t, row)) {
                    Some(b) if b == settles => return V::Bool(settles),
                    Some(_) => {}
                    None => null = true,
                }
            }
            if null { V::Null } else { V::Bool(!settles) }
        }
        E::Cmp(op, a, b) => {
            let ord = compare(&eval(a, row), &eval(b, row));
            from_truth(ord.map(|o| match op {
                Cmp::Eq => o == Equal,
                Cmp::Ne => o != Equal,
                Cmp::Lt => o == Less,
                Cmp::Le => o != Greater,
                Cmp::Gt => o == Greater,
                Cmp::Ge => o != Less,
            }))
        }
        E::Arith(op, a, b) => match (as_num(&eval(a, row)), as_num(&eval(b, row))) {
            (Some(x), Some(y)) => match op {
                Arith::Add => V::Num(x + y),
                Arith::Sub => V::Num(x - y),
                Arith::Mul => V::Num(x * y),
                Arith::Div if y == 0.0 => V::Null,
                Arith::Div => V::Num(x / y),
            },
            _ => V::Null,
        },
        E::Neg(x) => as_num(&eval(x, row)).map(|n| V::Num(-n)).unwrap_or(V::Null),
        E::In { e, list, negated } => {
            let v = eval(e, row);
            if v == V::Null {
                return V::Null;
            }
            let mut saw_null = false;
            for item in list {
                match compare(&v, &eval(item, row)) {
                    Some(Equal) => return V::Bool(!negated),
                    None => saw_null = true,
                    _ => {}
                }
            }
            if saw_null { V::Null } else { V::Bool(*negated) }
        }
        E::Between { e, lo, hi, negated } => {
            let v = eval(e, row);
            let (a, b) = (compare(&v, &eval(lo, row)), compare(&v, &eval(hi, row)));
            from_truth(match (a, b) {
                (Some(a), Some(b)) => Some((a != Less && b != Greater) != *negated),
                _ => None,
            })
        }
        E::Like { e, re, negated } => match eval(e, row) {
            V::Null => V::Null,
            V::Str(s) => V::Bool(re.is_match(&s) != *negated),
            V::Num(n) => V::Bool(re.is_match(&n.to_string()) != *negated),
            V::Bool(b) => V::Bool(re.is_match(&b.to_string()) != *negated),
        },
        E::IsNull(x, negated) => V::Bool((eval(x, row) == V::Null) != *negated),
        E::Func(f, args) => {
            let first = || eval(&args[0], row);
            match f {
                F::Lower => match first() {
                    V::Str(s) => V::Str(s.to_lowercase()),
                    v => v,
                },
                F::Upper => match first() {
                    V::Str(s) => V::Str(s.to_uppercase()),
                    v => v,
                },
                F::Trim => match first() {
                    V::Str(s) => V::Str(s.trim().to_string()),
                    v => v,
                },
                F::Length => match lookup_len(&args[0], row) {
                    Some(n) => V::Num(n as f64),
                    None => match first() {
                        V::Str(s) => V::Num(s.chars().count() as f64),
                        V::Num(n) => V::Num(n.to_string().chars().count() as f64),
                        V::Bool(b) => V::Num(b.to_string().len() as f64),
                        V::Null => V::Null,
                    },
                },
                F::Coalesce => args.iter().map(|a| eval(a, row)).find(|v| *v != V::Null).unwrap_or(V::Null),
            }
        }
    }
}

/// `length(list_column)` counts elements, as SQL engines over JSON do.
fn lookup_len(e: &E, row: &Value) -> Option<usize> {
    if let E::Col(p) = e {
        return lookup(row, p).and_then(|v| v.as_array()).map(|a| a.len());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(expr: &str, row: Value) -> bool {
        WhereExpr::parse(expr).unwrap().matches(&row)
    }

    #[test]
    fn in_list_selects_subsets() {
        let e = "source IN ('data/CoT/gsm_train.json', 'data/CoT/aqua_rat.json')";
        assert!(sel(e, json!({"source": "data/CoT/gsm_train.json"})));
        assert!(!sel(e, json!({"source": "data/PoT/gsm_gpt4.json"})));
        assert!(sel(&format!("NOT ({e})"), json!({"source": "x"})));
        assert!(sel("source NOT IN ('a')", json!({"source": "b"})));
    }

    #[test]
    fn null_is_never_selected() {
        assert!(!sel("x = 1", json!({"x": null})));
        assert!(!sel("NOT (x = 1)", json!({"x": null})));
        assert!(sel("x IS NULL", json!({"x": null})));
        assert!(sel("x IS NULL OR x > 3", json!({})));
        assert!(!sel("x IN (1, NULL)", json!({"x": 2})));
    }

    #[test]
    fn numbers_strings_and_functions() {
        assert!(sel("n > 2 AND n <= 3.5", json!({"n": 3})));
        assert!(sel("n > 2", json!({"n": "10"})), "CSV strings compare as numbers");
        assert!(sel("length(text) BETWEEN 3 AND 5", json!({"text": "abcd"})));
        assert!(sel("lower(cat) = 'qa'", json!({"cat": "QA"})));
        assert!(sel("meta.lang = 'en'", json!({"meta": {"lang": "en"}})));
        assert!(sel("length(instances) = 2", json!({"instances": [1, 2]})));
        assert!(sel("a + b * 2 = 7", json!({"a": 1, "b": 3})));
        assert!(sel("coalesce(x, 'd') = 'd'", json!({"x": null})));
    }

    #[test]
    fn like_patterns() {
        assert!(sel("name LIKE 'data/CoT/%'", json!({"name": "data/CoT/x.json"})));
        assert!(!sel("name LIKE 'data/CoT/%'", json!({"name": "data/PoT/x.json"})));
        assert!(sel("name ILIKE 'A_C'", json!({"name": "abc"})));
        assert!(sel("name NOT LIKE '%.json'", json!({"name": "a.csv"})));
        assert!(sel("name LIKE 'a.c'", json!({"name": "a.c"})));
        assert!(!sel("name LIKE 'a.c'", json!({"name": "abc"})), "dot is literal in LIKE");
    }

    #[test]
    fn bad_expressions_are_refused_at_parse() {
        assert!(WhereExpr::parse("x = = 1").is_err());
        assert!(WhereExpr::parse("x = 1 garbage").is_err());
        assert!(WhereExpr::parse("frobnicate(x)").unwrap_err().contains("not supported"));
        assert!(WhereExpr::parse("x IN (SELECT 1)").is_err());
    }

    #[test]
    fn missing_columns_are_found() {
        let e = WhereExpr::parse("soruce = 'a' AND meta.x = 1").unwrap();
        assert_eq!(e.missing_columns(&json!({"source": "a", "meta": {}})), vec!["soruce".to_string()]);
    }

    #[test]
    fn may_match_settles_known_columns_and_assumes_the_rest() {
        let known = |v: &str| {
            let mut m = serde_json::Map::new();
            m.insert("source".into(), Value::String(v.into()));
            m
        };
        let w = WhereExpr::parse("source IN ('a', 'b')").unwrap();
        assert!(w.may_match(&known("a")));
        assert!(!w.may_match(&known("c")));
        // Another column could go either way: only a known FALSE under AND settles it.
        let w = WhereExpr::parse("source = 'a' AND length(output) > 20").unwrap();
        assert!(w.may_match(&known("a")));
        assert!(!w.may_match(&known("c")));
        let w = WhereExpr::parse("source = 'a' OR lang = 'en'").unwrap();
        assert!(w.may_match(&known("c")), "lang is unknown, so the row may be selected");
        let w = WhereExpr::parse("NOT (source LIKE 'data/PoT/%')").unwrap();
        assert!(w.may_match(&known("data/CoT/x")));
        assert!(!w.may_match(&known("data/PoT/x")));
        let w = WhereExpr::parse("length(output) > 20").unwrap();
        assert!(w.may_match(&known("anything")));
    }

    #[test]
    fn long_and_or_chains_are_evaluated_without_recursion() {
        let terms: Vec<String> = (0..10_000).map(|i| format!("n <> {i}")).collect();
        let and = WhereExpr::parse(&terms.join(" AND ")).unwrap();
        let or = WhereExpr::parse(&format!("{} OR n = 20000", terms.join(" OR ").replace("<>", "="))).unwrap();
        // A small stack: evaluation that recursed once per term would overflow it.
        let t = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                assert!(and.matches(&json!({"n": 10_001})));
                assert!(!and.matches(&json!({"n": 5_000})));
                assert!(!and.matches(&json!({})), "NULL is not selected");
                assert!(or.matches(&json!({"n": 20_000})));
                assert!(!or.matches(&json!({"n": -1})));
                assert!(and.may_match(&serde_json::Map::new()));
                drop((and, or));
            })
            .unwrap();
        t.join().unwrap();
    }

    #[test]
    fn chains_keep_three_valued_logic() {
        assert!(!sel("a = 1 AND (b = 1 AND c = 1)", json!({"a": 1, "b": 1, "c": null})));
        assert!(sel("a = 1 OR (b = 1 OR c = 1)", json!({"a": null, "b": null, "c": 1})));
        assert!(sel("NOT (a = 1 AND b = 1)", json!({"a": 1, "b": 2})));
        assert!(!sel("NOT (a = 1 AND b = 1)", json!({"a": 1, "b": null})), "NOT NULL is NULL");
        assert!(sel("(a = 1 OR b = 1) AND c = 1", json!({"a": 2, "b": 1, "c": 1})));
    }

    #[test]
    fn overlong_expressions_are_refused_before_parsing() {
        // 400,000 terms: the SQL parser's tree of it overflowed the main stack.
        let terms = vec!["n <> 1"; 400_000].join(" AND ");
        let e = WhereExpr::parse(&terms).unwrap_err();
        assert!(e.contains("1599999 names, values and operators, more than 100000"), "{e}");
        // Commas do not count: a long IN list is fine.
        let list: Vec<String> = (0..60_000).map(|i| format!("'v{i}'")).collect();
        let w = WhereExpr::parse(&format!("name IN ({})", list.join(", "))).unwrap();
        assert!(w.matches(&json!({"name": "v59999"})));
    }

    #[test]
    fn deep_nesting_is_refused_at_parse() {
        let sum = vec!["n"; 1_000].join(" + ");
        let e = WhereExpr::parse(&format!("{sum} > 3")).unwrap_err();
        assert!(e.contains(&format!("nests more than {MAX_DEPTH} levels")), "{e}");
        // Parentheses are bounded by the SQL parser itself.
        let nested = format!("{}n = 1{}", "(".repeat(500), ")".repeat(500));
        assert!(WhereExpr::parse(&nested).is_err());
    }
}
