//! Laravel `.env` syntax (phpdotenv 5, as Laravel reads it; config.md §1.3): `KEY=value`
//! lines, `#` comment lines, `export KEY=value`, single quotes (literal), double quotes
//! (escapes `\" \\ \$ \n \t \r \f \v`, may span lines), unquoted values ending at `#` or
//! whitespace, and `${NAME}` expansion in double-quoted and unquoted values. A name is
//! looked up in the process environment first (it wins over the file, as Laravel's
//! immutable repository does), then in the entries above; an unknown name stays as written.
//! Keyword values (`null`, `(true)`, …) are interpreted later, by `env.rs`.

use std::collections::HashMap;

use super::ConfigError;

/// One `NAME=value` of the file, value already unquoted and expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub name: String,
    pub value: String,
    /// 1-based line where the entry starts.
    pub line: usize,
}

/// Parses the text of a `.env` file called `label` in messages.
pub(super) fn parse(
    src: &str,
    label: &str,
    process_env: &HashMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Entry>, ConfigError> {
    let lines: Vec<&str> = src
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut entries: Vec<Entry> = Vec::new();
    let mut defined: HashMap<String, String> = HashMap::new();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let line = lines[i];
        i += 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fail = |what: String| ConfigError::new(format!("{label} line {line_no}: {what}"));
        let Some(eq) = line.find('=') else {
            warnings.push(format!(
                "{label} line {line_no}: ignored `{trimmed}` (no `=`)"
            ));
            continue;
        };
        let name = parse_name(&line[..eq])
            .ok_or_else(|| fail(format!("invalid variable name `{}`", line[..eq].trim())))?;

        let mut parser = ValueParser::default();
        parser
            .feed(line[eq + 1..].trim_start())
            .map_err(|e| fail(format!("{name}: {e}")))?;
        // A double-quoted value may continue on the following lines.
        while parser.in_double_quotes() && i < lines.len() {
            parser
                .feed("\n")
                .and_then(|_| parser.feed(lines[i]))
                .map_err(|e| ConfigError::new(format!("{label} line {}: {name}: {e}", i + 1)))?;
            i += 1;
        }
        let value = parser.finish().map_err(|e| fail(format!("{name}: {e}")))?;
        let value = expand(&value, |var| {
            process_env.get(var).or_else(|| defined.get(var)).cloned()
        });
        defined.insert(name.clone(), value.clone());
        entries.push(Entry {
            name,
            value,
            line: line_no,
        });
    }
    Ok(entries)
}

/// Strips `export ` and quotes from a name and checks its characters.
fn parse_name(raw: &str) -> Option<String> {
    let mut name = raw.trim();
    if let Some(rest) = name.strip_prefix("export") {
        if rest.starts_with(|c: char| c.is_whitespace()) {
            name = rest.trim_start();
        }
    }
    if name.len() >= 3
        && ((name.starts_with('"') && name.ends_with('"'))
            || (name.starts_with('\'') && name.ends_with('\'')))
    {
        name = &name[1..name.len() - 1];
    }
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.');
    valid.then(|| name.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Initial,
    Unquoted,
    SingleQuoted,
    DoubleQuoted,
    Escape,
    /// After an unquoted value or a closing quote: only whitespace or a comment may follow.
    After,
    Comment,
}

/// A value being read: characters, each marked expandable (`$` outside single quotes and
/// not escaped) or not.
#[derive(Debug, Default)]
struct ValueParser {
    state: State,
    chars: Vec<(char, bool)>,
}

impl ValueParser {
    fn in_double_quotes(&self) -> bool {
        matches!(self.state, State::DoubleQuoted | State::Escape)
    }

    fn feed(&mut self, text: &str) -> Result<(), String> {
        for c in text.chars() {
            self.state = match self.state {
                State::Initial => match c {
                    '\'' => State::SingleQuoted,
                    '"' => State::DoubleQuoted,
                    '#' => State::Comment,
                    c if c.is_whitespace() => State::Initial,
                    c => {
                        self.chars.push((c, c == '$'));
                        State::Unquoted
                    }
                },
                State::Unquoted => match c {
                    '#' => State::Comment,
                    c if c.is_whitespace() => State::After,
                    c => {
                        self.chars.push((c, c == '$'));
                        State::Unquoted
                    }
                },
                State::SingleQuoted => match c {
                    '\'' => State::After,
                    c => {
                        self.chars.push((c, false));
                        State::SingleQuoted
                    }
                },
                State::DoubleQuoted => match c {
                    '"' => State::After,
                    '\\' => State::Escape,
                    c => {
                        self.chars.push((c, c == '$'));
                        State::DoubleQuoted
                    }
                },
                State::Escape => {
                    let unescaped = match c {
                        '"' | '\\' | '$' => c,
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'f' => '\u{0c}',
                        'v' => '\u{0b}',
                        other => {
                            return Err(format!(
                                "unexpected escape sequence `\\{other}` in a double-quoted value \
                                 (known: \\\" \\\\ \\$ \\n \\t \\r \\f \\v)"
                            ))
                        }
                    };
                    self.chars.push((unescaped, false));
                    State::DoubleQuoted
                }
                State::After => match c {
                    '#' => State::Comment,
                    c if c.is_whitespace() => State::After,
                    c => {
                        return Err(format!(
                            "unexpected `{c}` after whitespace or a closing quote: put a value \
                             that contains spaces in double quotes"
                        ))
                    }
                },
                State::Comment => State::Comment,
            };
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<(char, bool)>, String> {
        match self.state {
            State::SingleQuoted => Err("missing closing quote `'`".to_string()),
            State::DoubleQuoted | State::Escape => Err("missing closing quote `\"`".to_string()),
            _ => Ok(self.chars),
        }
    }
}

/// Replaces `${NAME}` at expandable `$` characters; unknown names stay as written.
fn expand(chars: &[(char, bool)], lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut k = 0;
    while k < chars.len() {
        let (c, expandable) = chars[k];
        if c == '$' && expandable && chars.get(k + 1).map(|p| p.0) == Some('{') {
            let name_start = k + 2;
            let mut end = name_start;
            while end < chars.len() && is_name_char(chars[end].0) {
                end += 1;
            }
            if end > name_start && chars.get(end).map(|p| p.0) == Some('}') {
                let name: String = chars[name_start..end].iter().map(|p| p.0).collect();
                match lookup(&name) {
                    Some(value) => out.push_str(&value),
                    None => out.push_str(&format!("${{{name}}}")),
                }
                k = end + 1;
                continue;
            }
        }
        out.push(c);
        k += 1;
    }
    out
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(src: &str, env: &[(&str, &str)]) -> Vec<(String, String)> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut w = Vec::new();
        parse(src, ".env", &env, &mut w)
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.value))
            .collect()
    }

    fn one(src: &str) -> String {
        let v = parse_ok(src, &[]);
        assert_eq!(v.len(), 1, "{v:?}");
        v[0].1.clone()
    }

    fn parse_err(src: &str) -> String {
        let mut w = Vec::new();
        parse(src, ".env", &HashMap::new(), &mut w)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn plain_and_spacing() {
        assert_eq!(one("A=b"), "b");
        assert_eq!(one("  A  =  b  "), "b");
        assert_eq!(one("A="), "");
        assert_eq!(one("A=base64:abc=="), "base64:abc==");
        assert_eq!(one("A=b\r\n"), "b");
    }

    #[test]
    fn quotes() {
        assert_eq!(one("A=\"hello world\""), "hello world");
        assert_eq!(one("A='hello world'"), "hello world");
        assert_eq!(one("A=\"it's\" # c"), "it's");
        assert_eq!(one("A='say \"hi\"'"), "say \"hi\"");
    }

    #[test]
    fn quotes_then_text_is_an_error() {
        assert!(parse_err("A='a'b").contains("line 1: A: unexpected `b`"));
    }

    #[test]
    fn double_quote_escapes_and_single_quote_literals() {
        assert_eq!(one(r#"A="a\"b\\c\nd\te""#), "a\"b\\c\nd\te");
        assert_eq!(one(r"A='a\nb'"), r"a\nb");
        let e = parse_err(r#"A="\q""#);
        assert!(
            e.contains("line 1: A: unexpected escape sequence `\\q`"),
            "{e}"
        );
    }

    #[test]
    fn multiline_double_quoted_value() {
        let v = parse_ok("A=\"one\ntwo\"\nB=3\n", &[]);
        assert_eq!(v[0], ("A".into(), "one\ntwo".into()));
        assert_eq!(v[1], ("B".into(), "3".into()));
        let e = parse_err("A=\"one\ntwo\n");
        assert!(e.contains("missing closing quote"), "{e}");
        let e = parse_err("A='one\nB=2\n");
        assert!(e.contains("line 1: A: missing closing quote"), "{e}");
    }

    #[test]
    fn export_prefix_and_quoted_names() {
        assert_eq!(parse_ok("export A=1", &[])[0], ("A".into(), "1".into()));
        assert_eq!(parse_ok("export\tA=1", &[])[0], ("A".into(), "1".into()));
        assert_eq!(
            parse_ok("exportA=1", &[])[0],
            ("exportA".into(), "1".into())
        );
        assert_eq!(parse_ok("\"A\"=1", &[])[0], ("A".into(), "1".into()));
        let e = parse_err("\nA B=1");
        assert!(
            e.contains(".env line 2: invalid variable name `A B`"),
            "{e}"
        );
    }

    #[test]
    fn comments() {
        let v = parse_ok(
            "# full line\n   # indented\nA=1 # trailing\nB=\"x # y\" # c\nC=a#b\nD=#only\nE='#'\n",
            &[],
        );
        let m: HashMap<_, _> = v.into_iter().collect();
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "x # y");
        assert_eq!(m["C"], "a"); // phpdotenv: `#` starts a comment in an unquoted value
        assert_eq!(m["D"], "");
        assert_eq!(m["E"], "#");
    }

    #[test]
    fn unquoted_whitespace_is_an_error() {
        let e = parse_err("X=1\nAPP_NAME=My App\n");
        assert!(
            e.starts_with(".env line 2: APP_NAME: unexpected `A`"),
            "{e}"
        );
        assert!(e.contains("double quotes"), "{e}");
    }

    #[test]
    fn expansion() {
        let v = parse_ok(
            "REVERB_APP_KEY=abc\n\
             VITE_KEY=\"${REVERB_APP_KEY}\"\n\
             UNQ=${REVERB_APP_KEY}-x\n\
             SINGLE='${REVERB_APP_KEY}'\n\
             ESC=\"\\${REVERB_APP_KEY}\"\n\
             MISSING=\"${NOPE}\"\n\
             FROM_ENV=${HOME_DIR}/x\n\
             BARE=$REVERB_APP_KEY\n",
            &[("HOME_DIR", "/home/u")],
        );
        let m: HashMap<_, _> = v.into_iter().collect();
        assert_eq!(m["VITE_KEY"], "abc");
        assert_eq!(m["UNQ"], "abc-x");
        assert_eq!(m["SINGLE"], "${REVERB_APP_KEY}");
        assert_eq!(m["ESC"], "${REVERB_APP_KEY}");
        assert_eq!(m["MISSING"], "${NOPE}");
        assert_eq!(m["FROM_ENV"], "/home/u/x");
        assert_eq!(m["BARE"], "$REVERB_APP_KEY");
    }

    #[test]
    fn expansion_prefers_the_process_environment() {
        let v = parse_ok("A=file\nB=${A}\n", &[("A", "process")]);
        assert_eq!(v[1].1, "process");
    }

    #[test]
    fn lines_without_equals_are_ignored_with_a_warning() {
        let mut w = Vec::new();
        let v = parse("JUNK\nA=1\n", ".env", &HashMap::new(), &mut w).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].line, 2);
        assert!(
            w[0].contains(".env line 1") && w[0].contains("JUNK"),
            "{w:?}"
        );
    }
}
