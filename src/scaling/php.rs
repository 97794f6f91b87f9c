//! The subset of PHP's `serialize()` format that Reverb puts on the scaling channel
//! (scaling.md §4.1): read and write. Reverb nodes send the `application` of every
//! `message`/`terminate` envelope and the whole metrics request in this form, so
//! reverb-shard must both understand what they write and write what their
//! `unserialize()` accepts.
//!
//! The input comes from anyone who can publish on the Redis channel, so the reader is
//! defensive: every length and count is checked against the bytes that remain before
//! anything is allocated from it, nesting is limited to [`MAX_DEPTH`], the whole input
//! must be consumed, and no input makes it panic. References (`r:`/`R:`), custom
//! serialization (`C:`) and anything else outside the subset are errors.

use std::fmt;

/// Deepest array/object nesting accepted. Reverb's own payloads nest three levels
/// (request → application → options); the limit keeps recursion bounded.
pub const MAX_DEPTH: usize = 32;

/// A decoded value. Strings are raw bytes because PHP strings are; the scaling
/// payloads travel in JSON strings, so they are UTF-8 in practice, but nothing here
/// relies on it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Vec<u8>),
    /// Entries in serialized order; duplicate keys are kept as written.
    Array(Vec<(Key, Value)>),
    /// `props` names are as serialized: public `x`, protected `\0*\0x`, private
    /// `\0Class\0x`.
    Object {
        class: String,
        props: Vec<(Vec<u8>, Value)>,
    },
    /// `E:LEN:"CLASS:CASE";`
    Enum {
        class: String,
        case: String,
    },
}

/// An array key: PHP arrays have integer or string keys only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Int(i64),
    Str(Vec<u8>),
}

/// Why an input was rejected, and where (byte offset into the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub offset: usize,
    pub reason: &'static str,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid PHP serialized data at byte {}: {}",
            self.offset, self.reason
        )
    }
}

impl std::error::Error for Error {}

/// The serialized name of protected property `name`: `\0*\0name`.
pub fn protected(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 3);
    out.extend_from_slice(b"\0*\0");
    out.extend_from_slice(name.as_bytes());
    out
}

impl Value {
    /// A string value from UTF-8 text.
    pub fn str(s: &str) -> Value {
        Value::Str(s.as_bytes().to_vec())
    }

    /// A list (`a:N:{i:0;…i:N-1;…}`), as PHP writes a packed array.
    pub fn list(items: impl IntoIterator<Item = Value>) -> Value {
        Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Key::Int(i as i64), v))
                .collect(),
        )
    }

    /// The string bytes of a `Str`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str(b) => Some(b),
            _ => None,
        }
    }

    /// The text of a `Str` that is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The entries of an `Array`.
    pub fn as_array(&self) -> Option<&[(Key, Value)]> {
        match self {
            Value::Array(entries) => Some(entries),
            _ => None,
        }
    }

    /// The class name of an `Object`.
    pub fn class(&self) -> Option<&str> {
        match self {
            Value::Object { class, .. } => Some(class),
            _ => None,
        }
    }

    /// Property `name` of an object, whether serialized as public (`name`), protected
    /// (`\0*\0name`) or private to the object's own class (`\0Class\0name`): the
    /// writer's visibility is its business, the reader only wants the value. When a
    /// name occurs more than once the last one wins, as PHP's `unserialize()` overwrites.
    pub fn prop(&self, name: &str) -> Option<&Value> {
        let Value::Object { class, props } = self else {
            return None;
        };
        props
            .iter()
            .rev()
            .find(|(n, _)| prop_name_matches(n, name.as_bytes(), class.as_bytes()))
            .map(|(_, v)| v)
    }

    /// Entry `key` (string key) of an array; last one wins, as in PHP.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_array()?
            .iter()
            .rev()
            .find(|(k, _)| matches!(k, Key::Str(s) if s == key.as_bytes()))
            .map(|(_, v)| v)
    }
}

fn prop_name_matches(serialized: &[u8], name: &[u8], class: &[u8]) -> bool {
    if serialized == name {
        return true;
    }
    // `\0SCOPE\0name` with SCOPE `*` (protected) or the object's class (private).
    let Some(rest) = serialized.strip_prefix(b"\0") else {
        return false;
    };
    let Some(nul) = rest.iter().position(|&b| b == 0) else {
        return false;
    };
    let (scope, tail) = (&rest[..nul], &rest[nul + 1..]);
    tail == name && (scope == b"*" || scope == class)
}

/// Decodes one value that must span the whole input.
pub fn parse(input: &[u8]) -> Result<Value, Error> {
    let mut p = Parser { input, pos: 0 };
    let value = p.value(0)?;
    if p.pos != input.len() {
        return Err(p.err("trailing bytes after the value"));
    }
    Ok(value)
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, reason: &'static str) -> Error {
        Error {
            offset: self.pos,
            reason,
        }
    }

    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8, reason: &'static str) -> Result<(), Error> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(reason))
        }
    }

    /// Bytes up to (not including) `stop`, which is consumed.
    fn until(&mut self, stop: u8, reason: &'static str) -> Result<&'a [u8], Error> {
        let rest: &'a [u8] = &self.input[self.pos..];
        let Some(i) = rest.iter().position(|&b| b == stop) else {
            return Err(self.err(reason));
        };
        self.pos += i + 1;
        Ok(&rest[..i])
    }

    /// A length or count: plain decimal digits (no sign), at most 19 of them so the
    /// arithmetic cannot overflow.
    fn unsigned(&mut self, stop: u8) -> Result<usize, Error> {
        let start = self.pos;
        let digits = self.until(stop, "unterminated number")?;
        if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
            self.pos = start;
            return Err(self.err("invalid length or count"));
        }
        let mut n: u64 = 0;
        for &d in digits {
            n = n * 10 + u64::from(d - b'0');
        }
        usize::try_from(n).map_err(|_| Error {
            offset: start,
            reason: "length or count too large",
        })
    }

    /// `LEN:"BYTES"` (the part shared by `s:`, `O:` and `E:`): LEN is checked against
    /// the remaining input before the bytes are taken.
    fn counted_bytes(&mut self) -> Result<&'a [u8], Error> {
        let len = self.unsigned(b':')?;
        self.expect(b'"', "expected '\"' after the length")?;
        // The bytes plus the closing quote must still be there.
        if len >= self.remaining() {
            return Err(self.err("length runs past the end of the input"));
        }
        let start = self.pos;
        self.pos += len;
        self.expect(b'"', "string does not end where its length says")?;
        Ok(&self.input[start..start + len])
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        let Some(tag) = self.peek() else {
            return Err(self.err("unexpected end of input"));
        };
        self.pos += 1;
        match tag {
            b'N' => {
                self.expect(b';', "expected ';' after N")?;
                Ok(Value::Null)
            }
            b'b' => {
                self.expect(b':', "expected ':' after b")?;
                let v = match self.peek() {
                    Some(b'0') => false,
                    Some(b'1') => true,
                    _ => return Err(self.err("boolean must be 0 or 1")),
                };
                self.pos += 1;
                self.expect(b';', "expected ';' after boolean")?;
                Ok(Value::Bool(v))
            }
            b'i' => {
                self.expect(b':', "expected ':' after i")?;
                Ok(Value::Int(self.int()?))
            }
            b'd' => {
                self.expect(b':', "expected ':' after d")?;
                self.float()
            }
            b's' => {
                self.expect(b':', "expected ':' after s")?;
                let bytes = self.counted_bytes()?.to_vec();
                self.expect(b';', "expected ';' after string")?;
                Ok(Value::Str(bytes))
            }
            b'a' => {
                self.expect(b':', "expected ':' after a")?;
                self.array(depth + 1)
            }
            b'O' => {
                self.expect(b':', "expected ':' after O")?;
                self.object(depth + 1)
            }
            b'E' => {
                self.expect(b':', "expected ':' after E")?;
                self.enum_case()
            }
            _ => {
                self.pos -= 1;
                Err(self.err("unsupported or unknown type tag"))
            }
        }
    }

    /// `[+-]?DIGITS;` within i64 (PHP's unserialize also refuses out-of-range integers).
    fn int(&mut self) -> Result<i64, Error> {
        let start = self.pos;
        let text = self.until(b';', "unterminated integer")?;
        let digits = text.strip_prefix(b"+").unwrap_or(text);
        let body = digits.strip_prefix(b"-").unwrap_or(digits);
        let valid = !body.is_empty() && body.iter().all(u8::is_ascii_digit);
        let parsed = if valid {
            std::str::from_utf8(digits)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
        } else {
            None
        };
        parsed.ok_or(Error {
            offset: start,
            reason: "invalid integer",
        })
    }

    /// `d:…;`: a decimal/exponent number, or PHP's `INF`, `-INF`, `NAN`.
    fn float(&mut self) -> Result<Value, Error> {
        let start = self.pos;
        let text = self.until(b';', "unterminated float")?;
        let bad = Error {
            offset: start,
            reason: "invalid float",
        };
        let value = match text {
            b"INF" => f64::INFINITY,
            b"-INF" => f64::NEG_INFINITY,
            b"NAN" => f64::NAN,
            _ => {
                // Only the characters of a PHP float literal; this also keeps Rust's
                // own spellings ("inf", "nan", "infinity") out.
                let ok = !text.is_empty()
                    && text.iter().any(u8::is_ascii_digit)
                    && text.iter().all(|b| {
                        b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E')
                    });
                if !ok {
                    return Err(bad);
                }
                std::str::from_utf8(text)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .ok_or(bad)?
            }
        };
        Ok(Value::Float(value))
    }

    fn array(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        let count = self.unsigned(b':')?;
        self.expect(b'{', "expected '{' after the array count")?;
        // The smallest entry, `i:0;N;`, takes 6 bytes: a larger count cannot be honest.
        if count > self.remaining() / 6 {
            return Err(self.err("array count exceeds the input"));
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let key = match self.peek() {
                Some(b'i') => {
                    self.pos += 1;
                    self.expect(b':', "expected ':' after i")?;
                    Key::Int(self.int()?)
                }
                Some(b's') => {
                    self.pos += 1;
                    self.expect(b':', "expected ':' after s")?;
                    let bytes = self.counted_bytes()?.to_vec();
                    self.expect(b';', "expected ';' after string")?;
                    Key::Str(bytes)
                }
                _ => return Err(self.err("array key must be an integer or a string")),
            };
            let value = self.value(depth)?;
            entries.push((key, value));
        }
        self.expect(b'}', "expected '}' after the array entries")?;
        Ok(Value::Array(entries))
    }

    fn object(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        let class = self.class_name()?;
        self.expect(b':', "expected ':' after the class name")?;
        let count = self.unsigned(b':')?;
        self.expect(b'{', "expected '{' after the property count")?;
        // The smallest property, `s:0:"";N;`, takes 9 bytes.
        if count > self.remaining() / 9 {
            return Err(self.err("property count exceeds the input"));
        }
        let mut props = Vec::with_capacity(count);
        for _ in 0..count {
            if self.peek() != Some(b's') {
                return Err(self.err("property name must be a string"));
            }
            self.pos += 1;
            self.expect(b':', "expected ':' after s")?;
            let name = self.counted_bytes()?.to_vec();
            self.expect(b';', "expected ';' after the property name")?;
            let value = self.value(depth)?;
            props.push((name, value));
        }
        self.expect(b'}', "expected '}' after the properties")?;
        Ok(Value::Object { class, props })
    }

    fn class_name(&mut self) -> Result<String, Error> {
        let start = self.pos;
        let bytes = self.counted_bytes()?;
        if !valid_class_name(bytes) {
            return Err(Error {
                offset: start,
                reason: "invalid class name",
            });
        }
        // valid_class_name admits ASCII only, so this cannot fail.
        String::from_utf8(bytes.to_vec()).map_err(|_| Error {
            offset: start,
            reason: "invalid class name",
        })
    }

    fn enum_case(&mut self) -> Result<Value, Error> {
        let start = self.pos;
        let text = self.counted_bytes()?;
        let bad = Error {
            offset: start,
            reason: "enum must be CLASS:CASE",
        };
        let colon = text.iter().position(|&b| b == b':').ok_or(bad.clone())?;
        let (class, case) = (&text[..colon], &text[colon + 1..]);
        if !valid_class_name(class) || !valid_identifier(case) {
            return Err(bad);
        }
        let class = String::from_utf8(class.to_vec()).map_err(|_| bad.clone())?;
        let case = String::from_utf8(case.to_vec()).map_err(|_| bad.clone())?;
        self.expect(b';', "expected ';' after the enum")?;
        Ok(Value::Enum { class, case })
    }
}

/// Namespaced identifier: ASCII identifiers joined by `\` (PHP also allows bytes
/// >= 0x80, which no class on this channel uses).
fn valid_class_name(name: &[u8]) -> bool {
    let name = name.strip_prefix(b"\\").unwrap_or(name);
    !name.is_empty() && name.split(|&b| b == b'\\').all(valid_identifier)
}

fn valid_identifier(s: &[u8]) -> bool {
    match s.split_first() {
        Some((first, rest)) => {
            (first.is_ascii_alphabetic() || *first == b'_')
                && rest.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        }
        None => false,
    }
}

/// Appends the serialized form of `value`, exactly as PHP's `serialize()` writes it.
pub fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"N;"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"b:1;" } else { b"b:0;" }),
        Value::Int(i) => {
            out.extend_from_slice(b"i:");
            out.extend_from_slice(i.to_string().as_bytes());
            out.push(b';');
        }
        Value::Float(f) => {
            out.extend_from_slice(b"d:");
            out.extend_from_slice(float_text(*f).as_bytes());
            out.push(b';');
        }
        Value::Str(bytes) => write_str(bytes, out),
        Value::Array(entries) => {
            out.extend_from_slice(format!("a:{}:{{", entries.len()).as_bytes());
            for (key, v) in entries {
                match key {
                    Key::Int(i) => write(&Value::Int(*i), out),
                    Key::Str(s) => write_str(s, out),
                }
                write(v, out);
            }
            out.push(b'}');
        }
        Value::Object { class, props } => {
            out.extend_from_slice(
                format!("O:{}:\"{class}\":{}:{{", class.len(), props.len()).as_bytes(),
            );
            for (name, v) in props {
                write_str(name, out);
                write(v, out);
            }
            out.push(b'}');
        }
        Value::Enum { class, case } => {
            let text = format!("{class}:{case}");
            out.extend_from_slice(format!("E:{}:\"{text}\";", text.len()).as_bytes());
        }
    }
}

fn write_str(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("s:{}:\"", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\";");
}

/// PHP spells the non-finite floats `INF`, `-INF`, `NAN`; Rust's shortest round-trip
/// decimal form of a finite float is something PHP reads back exactly.
fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NAN".to_string()
    } else if f.is_infinite() {
        let text = if f > 0.0 { "INF" } else { "-INF" };
        text.to_string()
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(text: &[u8]) -> Value {
        let v = parse(text).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(text)));
        let mut out = Vec::new();
        write(&v, &mut out);
        assert_eq!(out, text, "rewrite of {}", String::from_utf8_lossy(text));
        v
    }

    #[test]
    fn scalars() {
        assert_eq!(roundtrip(b"N;"), Value::Null);
        assert_eq!(roundtrip(b"b:0;"), Value::Bool(false));
        assert_eq!(roundtrip(b"b:1;"), Value::Bool(true));
        assert_eq!(roundtrip(b"i:-12;"), Value::Int(-12));
        assert_eq!(roundtrip(b"i:0;"), Value::Int(0));
        assert_eq!(roundtrip(b"i:9223372036854775807;"), Value::Int(i64::MAX));
        assert_eq!(roundtrip(b"i:-9223372036854775808;"), Value::Int(i64::MIN));
        assert_eq!(roundtrip(b"d:1.5;"), Value::Float(1.5));
        assert_eq!(roundtrip(b"d:-0.25;"), Value::Float(-0.25));
        assert_eq!(roundtrip(b"d:INF;"), Value::Float(f64::INFINITY));
        assert_eq!(roundtrip(b"d:-INF;"), Value::Float(f64::NEG_INFINITY));
        assert!(matches!(parse(b"d:NAN;"), Ok(Value::Float(f)) if f.is_nan()));
        assert_eq!(parse(b"d:1.0E+25;").unwrap(), Value::Float(1.0e25));
        assert_eq!(parse(b"i:+7;").unwrap(), Value::Int(7));
    }

    #[test]
    fn strings_are_counted_bytes() {
        assert_eq!(roundtrip(b"s:0:\"\";"), Value::str(""));
        assert_eq!(roundtrip(b"s:5:\"a\"b;c\";"), Value::str("a\"b;c"));
        assert_eq!(
            roundtrip(b"s:5:\"\0*\0id\";"),
            Value::Str(b"\0*\0id".to_vec())
        );
        // "é" is two bytes.
        assert_eq!(roundtrip("s:2:\"é\";".as_bytes()), Value::str("é"));
        assert!(parse("s:1:\"é\";".as_bytes()).is_err());
        // Non-UTF-8 bytes are fine at this level.
        assert_eq!(roundtrip(b"s:1:\"\xff\";"), Value::Str(vec![0xff]));
    }

    #[test]
    fn arrays_objects_enums() {
        let v = roundtrip(b"a:2:{i:0;s:1:\"*\";s:4:\"host\";s:9:\"localhost\";}");
        assert_eq!(v.get("host").and_then(Value::as_str), Some("localhost"));
        assert_eq!(v.as_array().unwrap()[0], (Key::Int(0), Value::str("*")));
        assert_eq!(roundtrip(b"a:0:{}"), Value::Array(vec![]));

        let v = roundtrip(b"O:3:\"Foo\":2:{s:5:\"\0*\0id\";s:1:\"7\";s:4:\"name\";N;}");
        assert_eq!(v.class(), Some("Foo"));
        assert_eq!(v.prop("id"), Some(&Value::str("7")));
        assert_eq!(v.prop("name"), Some(&Value::Null));
        assert_eq!(v.prop("other"), None);

        let v = roundtrip(b"E:11:\"A\\B:CHANNEL\";");
        assert_eq!(
            v,
            Value::Enum {
                class: "A\\B".into(),
                case: "CHANNEL".into()
            }
        );
    }

    #[test]
    fn property_names_any_visibility_last_wins() {
        let public = parse(b"O:1:\"A\":1:{s:2:\"id\";i:1;}").unwrap();
        let protected_ = parse(b"O:1:\"A\":1:{s:5:\"\0*\0id\";i:1;}").unwrap();
        let private = parse(b"O:1:\"A\":1:{s:5:\"\0A\0id\";i:1;}").unwrap();
        for v in [&public, &protected_, &private] {
            assert_eq!(v.prop("id"), Some(&Value::Int(1)));
        }
        // Private to another class: not ours.
        let foreign = parse(b"O:1:\"A\":1:{s:5:\"\0B\0id\";i:1;}").unwrap();
        assert_eq!(foreign.prop("id"), None);
        // Malformed mangled names.
        let odd = parse(b"O:1:\"A\":2:{s:3:\"\0id\";i:1;s:4:\"\0*id\";i:2;}").unwrap();
        assert_eq!(odd.prop("id"), None);
        let twice = parse(b"O:1:\"A\":2:{s:2:\"id\";i:1;s:5:\"\0*\0id\";i:2;}").unwrap();
        assert_eq!(twice.prop("id"), Some(&Value::Int(2)));
        assert_eq!(protected("id"), b"\0*\0id");
        assert_eq!(Value::Int(1).prop("id"), None);
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let bad: &[&[u8]] = &[
            b"",
            b"N",
            b"N;N;",
            b"x:1;",
            b"b:2;",
            b"b:1",
            b"i:;",
            b"i:1",
            b"i:1.5;",
            b"i:- 1;",
            b"i:--1;",
            b"i:9223372036854775808;",
            b"d:;",
            b"d:inf;",
            b"d:nan;",
            b"d:1.5",
            b"d:abc;",
            b"s:3:\"ab\";",
            b"s:1:\"ab\";",
            b"s:-1:\"\";",
            b"s:+1:\"a\";",
            b"s:1:\"a\"",
            b"s:1:'a';",
            b"s:99999999999999999999:\"a\";",
            b"s:18446744073709551615:\"a\";",
            b"s:1:\"a\";trailing",
            b"a:1:{}",
            b"a:0:{",
            b"a:0:{};",
            b"a:1:{N;N;}",
            b"a:1:{d:1;N;}",
            b"a:1:{i:0;}",
            b"a:4294967295:{i:0;N;}",
            b"a:99999999999999999:{i:0;N;}",
            b"O:1:\"A\":1:{i:0;N;}",
            b"O:1:\"A\":4000000000:{s:0:\"\";N;}",
            b"O:0:\"\":0:{}",
            b"O:3:\"A B\":0:{}",
            b"O:2:\"1A\":0:{}",
            b"O:1:\"A\":0:{",
            b"O:1:\"A\"0:{}",
            b"E:3:\"A:B\"",
            b"E:2:\"AB\";",
            b"E:2:\"A:\";",
            b"E:2:\":B\";",
            b"E:5:\"A:B:C\";",
            b"r:1;",
            b"R:1;",
            b"C:1:\"A\":0:{}",
        ];
        for input in bad {
            assert!(
                parse(input).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn nesting_is_limited() {
        let nest = |n: usize| {
            let mut s = Vec::new();
            for _ in 0..n {
                s.extend_from_slice(b"a:1:{i:0;");
            }
            s.extend_from_slice(b"N;");
            s.extend(std::iter::repeat_n(b'}', n));
            s
        };
        assert!(parse(&nest(MAX_DEPTH)).is_ok());
        let err = parse(&nest(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(err.reason, "nested too deeply");
        // Far deeper than the stack could take if the limit were missing.
        assert!(parse(&nest(100_000)).is_err());

        let mut objects = Vec::new();
        for _ in 0..(MAX_DEPTH + 1) {
            objects.extend_from_slice(b"O:1:\"A\":1:{s:1:\"p\";");
        }
        objects.extend_from_slice(b"N;");
        objects.extend(std::iter::repeat_n(b'}', MAX_DEPTH + 1));
        assert!(parse(&objects).is_err());
    }

    #[test]
    fn error_reports_offset() {
        let e = parse(b"a:1:{i:0;x}").unwrap_err();
        assert_eq!(e.offset, 9);
        assert!(e.to_string().contains("byte 9"));
    }

    /// Deterministic pseudo-random bytes for the mutation test (no extra dependency).
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn truncations_and_mutations_never_panic() {
        let samples: &[&[u8]] = &[
            b"O:3:\"Foo\":3:{s:5:\"\0*\0id\";s:1:\"7\";s:1:\"a\";a:2:{i:0;d:1.5;s:1:\"k\";b:1;}s:1:\"e\";E:5:\"X:YZW\";}",
            b"a:1:{i:0;a:1:{i:0;a:1:{i:0;i:-3;}}}",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for sample in samples {
            assert!(parse(sample).is_ok());
            for cut in 0..sample.len() {
                assert!(parse(&sample[..cut]).is_err(), "prefix {cut} accepted");
            }
            for _ in 0..5_000 {
                let mut m = sample.to_vec();
                for _ in 0..1 + xorshift(&mut seed) % 3 {
                    let i = (xorshift(&mut seed) % m.len() as u64) as usize;
                    match xorshift(&mut seed) % 3 {
                        0 => m[i] = xorshift(&mut seed) as u8,
                        1 => {
                            m.remove(i);
                        }
                        _ => m.insert(i, b"0123456789:;{}\"sia"[i % 18]),
                    }
                    if m.is_empty() {
                        break;
                    }
                }
                if let Ok(v) = parse(&m) {
                    // Whatever is accepted writes back to something that parses again.
                    let mut out = Vec::new();
                    write(&v, &mut out);
                    assert!(parse(&out).is_ok());
                }
            }
        }
    }

    #[test]
    fn builders() {
        let mut out = Vec::new();
        write(&Value::list([Value::str("a"), Value::Int(2)]), &mut out);
        assert_eq!(out, b"a:2:{i:0;s:1:\"a\";i:1;i:2;}");
        out.clear();
        write(&Value::Float(1e25), &mut out);
        assert_eq!(parse(&out).unwrap(), Value::Float(1e25));
    }
}
