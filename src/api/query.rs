//! Query strings and path segments as PHP decodes them: percent-decoding, `+` is a
//! space in queries, `k[]=a&k[]=b` is a list (joined `a,b`), a repeated plain key keeps
//! the last value.

use std::collections::BTreeMap;

/// Decoded parameters, sorted by key (byte order), as the signature needs them.
pub type Params = BTreeMap<String, Param>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    One(String),
    List(Vec<String>),
}

impl Param {
    /// The value as it enters the signed string.
    pub fn joined(&self) -> String {
        match self {
            Param::One(v) => v.clone(),
            Param::List(items) => items.join(","),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Param::One(v) => Some(v),
            Param::List(_) => None,
        }
    }
}

pub fn parse(query: &str) -> Params {
    let mut params = Params::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key, true);
        let value = decode(value, true);
        match key.strip_suffix("[]") {
            Some(list_key) => match params
                .entry(list_key.to_string())
                .or_insert_with(|| Param::List(Vec::new()))
            {
                Param::List(items) => items.push(value),
                one => *one = Param::List(vec![value]),
            },
            None => {
                params.insert(key, Param::One(value));
            }
        }
    }
    params
}

/// Percent-decode (`%XX`); malformed escapes stay as written. `plus` turns `+` into a space.
pub fn decode(s: &str, plus: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(decode("a%20b+c", true), "a b c");
        assert_eq!(decode("a+b", false), "a+b");
        assert_eq!(decode("100%", true), "100%");
        assert_eq!(decode("%zz", true), "%zz");
        assert_eq!(decode("%41", true), "A");
    }

    #[test]
    fn lists_and_repeats() {
        let p = parse("b=1&a=x&a=y&k[]=1&k[]=2&info=user_count%2Coccupied");
        assert_eq!(p["a"], Param::One("y".into()));
        assert_eq!(p["k"].joined(), "1,2");
        assert_eq!(p["info"].as_str(), Some("user_count,occupied"));
        assert_eq!(
            p.keys().cloned().collect::<Vec<_>>(),
            vec!["a", "b", "info", "k"]
        );
    }
}
