//! Diagnostics and positions: [`Diag`] (`file:line:col: message`), where each value
//! of a rule file was written ([`Origin`], [`Val`]), and [`Doc`], which maps TOML byte
//! spans to lines and columns. Shared by rule loading and rule tests, so both report
//! problems the same way.

use std::fmt;
use std::sync::Arc;

use toml::Spanned;

/// One problem in a rule (or rule test) file: `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub file: String,
    /// 1-based; 0 when the problem is with the file as a whole (unreadable).
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.col, self.message
            )
        }
    }
}

/// Where a value was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub file: Arc<str>,
    pub line: usize,
    pub col: usize,
    /// The value is a one-line string without escapes, so an offset inside it maps
    /// exactly to a column.
    pub simple: bool,
}

impl Origin {
    pub(crate) fn whole(file: &Arc<str>) -> Origin {
        Origin {
            file: file.clone(),
            line: 0,
            col: 0,
            simple: false,
        }
    }

    pub(crate) fn diag(&self, message: impl Into<String>) -> Diag {
        Diag {
            file: self.file.to_string(),
            line: self.line,
            col: self.col,
            message: message.into(),
        }
    }

    /// The position `offset` bytes into the string value `s` this origin points at.
    pub(super) fn inside(&self, s: &str, offset: usize) -> Origin {
        let mut o = self.clone();
        if self.simple {
            o.col += 1 + s[..offset.min(s.len())].chars().count();
        }
        o
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Val<T> {
    pub v: T,
    pub at: Origin,
}

/// A TOML document being read: maps byte spans to line and column.
pub(crate) struct Doc<'a> {
    pub name: Arc<str>,
    pub text: &'a str,
}

impl Doc<'_> {
    pub(crate) fn origin(&self, span: std::ops::Range<usize>) -> Origin {
        let start = span.start.min(self.text.len());
        let before = &self.text[..start];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Origin {
            file: self.name.clone(),
            line: before.matches('\n').count() + 1,
            col: self.text[line_start..start].chars().count() + 1,
            simple: false,
        }
    }

    pub(crate) fn val<T>(&self, s: Spanned<T>) -> Val<T> {
        let at = self.origin(s.span());
        Val {
            v: s.into_inner(),
            at,
        }
    }

    pub(crate) fn string(&self, s: Spanned<String>) -> Val<String> {
        let span = s.span();
        let mut at = self.origin(span.clone());
        let raw = self.text.get(span).unwrap_or("");
        let v = s.into_inner();
        at.simple = !v.contains('\n')
            && (raw == format!("\"{v}\"") || raw == format!("'{v}'"))
            && !v.contains('\\');
        Val { v, at }
    }

    pub(crate) fn strings(&self, s: Spanned<Vec<Spanned<String>>>) -> Val<Vec<Val<String>>> {
        let at = self.origin(s.span());
        Val {
            v: s.into_inner().into_iter().map(|x| self.string(x)).collect(),
            at,
        }
    }

    /// A TOML parse or type error as a diagnostic (one line).
    pub(crate) fn toml_error(&self, e: &toml::de::Error) -> Diag {
        let at = match e.span() {
            Some(span) => self.origin(span),
            None => Origin {
                line: 1,
                col: 1,
                ..Origin::whole(&self.name)
            },
        };
        // `scope = node` makes toml report "invalid float, expected `nan`" (it read
        // the `n`); say what was found and what was meant instead.
        if let Some(span) = e.span() {
            let word: String = self.text[span.start.min(self.text.len())..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                .collect();
            let bare = word.starts_with(|c: char| c.is_ascii_alphabetic())
                && !["true", "false", "nan", "inf"].contains(&word.as_str());
            if bare && e.message().starts_with("invalid") {
                return at.diag(format!(
                    "invalid TOML: unquoted value `{word}`; expected a quoted string (\"{word}\"), a number, true or false"
                ));
            }
        }
        let msg = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        // serde's "invalid type: string \"many\", expected i64": name the field and
        // the type in a rule author's words.
        if let (Some(rest), Some(span)) = (msg.strip_prefix("invalid type: "), e.span()) {
            if let Some((found, expected)) = rest.split_once(", expected ") {
                let line_start = self.text[..span.start.min(self.text.len())]
                    .rfind('\n')
                    .map_or(0, |i| i + 1);
                let field = self.text[line_start..]
                    .split_once('=')
                    .map(|(k, _)| k.trim())
                    .filter(|k| !k.is_empty() && !k.contains(['\n', '[', '"']));
                let what = field.map_or_else(String::new, |f| format!("{f}: "));
                return at.diag(format!(
                    "{what}expected {}, found {found}",
                    plain_type(expected)
                ));
            }
        }
        at.diag(format!("invalid TOML: {msg}"))
    }
}

/// serde's name of a type ("i64", "a boolean", "a sequence") as a rule author says it.
fn plain_type(expected: &str) -> &str {
    match expected.trim_matches('`') {
        "i64" | "u64" | "usize" | "i32" | "u32" => "a whole number (such as 20)",
        "f64" | "a float" => "a number (such as 0.5)",
        "a boolean" | "bool" => "true or false",
        "a string" => "a quoted string",
        "a sequence" => "a list in brackets, such as [\"a\", \"b\"]",
        other => other,
    }
}

/// One line for an error chain: the first problem, and how many more there are.
pub fn summarize(diags: &[Diag]) -> String {
    match diags {
        [] => "invalid rules".into(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!(
            "{first} (and {} more problem{}; `dnsdoc rules check` lists them all)",
            rest.len(),
            if rest.len() == 1 { "" } else { "s" }
        ),
    }
}
