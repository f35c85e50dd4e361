//! Message templates: text with `{placeholder}`s, checked when the rule is loaded so a
//! typo is an error in `rules check`, not a literal "{vaule}" in an incident channel.

/// Placeholders every rule may use, besides the metrics of its scope.
pub const BUILTIN_VARS: &[(&str, &str)] = &[
    ("value", "the metric's value, with its unit"),
    ("threshold", "the threshold that was crossed"),
    ("severity", "INFO, WARNING or CRITICAL"),
    ("info", "the INFO threshold"),
    ("warning", "the WARNING threshold"),
    ("critical", "the CRITICAL threshold"),
    ("samples", "the value of the sample-count metric"),
    ("min_samples", "the rule's minimum sample size"),
    (
        "subject",
        "the subject, e.g. \"process dig (pid 42)\" or \"node\"",
    ),
    ("metric", "the metric's name"),
    ("rule", "the rule id"),
    ("window", "the window length, e.g. \"10.0 s\""),
    (
        "coredns_period",
        "what the coredns.* counters cover: \"in the 30.0 s between two scrapes\" or \"since CoreDNS started\"",
    ),
];

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Var(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub source: String,
    parts: Vec<Part>,
}

/// A template syntax error: byte offset into the template text and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl Template {
    /// Parses `{name}` placeholders; `{{` and `}}` are literal braces.
    pub fn parse(s: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut it = s.char_indices().peekable();
        while let Some((i, c)) = it.next() {
            match c {
                '{' if it.peek().map(|p| p.1) == Some('{') => {
                    it.next();
                    lit.push('{');
                }
                '}' if it.peek().map(|p| p.1) == Some('}') => {
                    it.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, c) in it.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(TemplateError {
                            offset: i,
                            message: "unclosed `{`; write `{{` for a literal brace".into(),
                        });
                    }
                    let name = name.trim().to_string();
                    if name.is_empty() {
                        return Err(TemplateError {
                            offset: i,
                            message: "empty placeholder `{}`".into(),
                        });
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(name));
                }
                '}' => {
                    return Err(TemplateError {
                        offset: i,
                        message: "unmatched `}`; write `}}` for a literal brace".into(),
                    })
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template {
            source: s.to_string(),
            parts,
        })
    }

    /// Placeholder names, in order, with their byte offsets in the source.
    pub fn vars(&self) -> Vec<(usize, &str)> {
        let mut out = Vec::new();
        let mut from = 0;
        for p in &self.parts {
            if let Part::Var(name) = p {
                let at = self.source[from..]
                    .find(&format!("{{{name}"))
                    .map_or(0, |o| from + o);
                from = at + 1;
                out.push((at, name.as_str()));
            }
        }
        out
    }

    /// Fills the placeholders.
    pub fn render(&self, lookup: &dyn Fn(&str) -> String) -> String {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => s.push_str(l),
                Part::Var(v) => s.push_str(&lookup(v)),
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders() {
        let t = Template::parse("p99 {value} over {samples} {{literal}}").unwrap();
        let names: Vec<_> = t.vars().into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["value", "samples"]);
        assert_eq!(t.vars()[1].0, 17);
        let out = t.render(&|v| format!("<{v}>"));
        assert_eq!(out, "p99 <value> over <samples> {literal}");
    }

    #[test]
    fn reports_where_the_syntax_is_wrong() {
        assert_eq!(Template::parse("a {value").unwrap_err().offset, 2);
        assert_eq!(Template::parse("ab }").unwrap_err().offset, 3);
        assert!(Template::parse("{ }")
            .unwrap_err()
            .message
            .contains("empty"));
    }
}
