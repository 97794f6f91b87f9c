//! The end of every run: one [`Report`] holding the parameters, the counts and rates
//! by section, latency percentiles (microseconds), failures by cause and the server's
//! CPU and memory when known, printed either as a human-readable table or as exactly
//! one JSON object (stable keys, for scripts that diff runs).

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use super::fail::Failures;

/// One value in the report.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Int(u64),
    /// A float and how many decimals the table shows.
    Float(f64, usize),
    Text(String),
    /// Not measured (e.g. no samples).
    None,
}

impl Val {
    fn json(&self) -> Value {
        match self {
            Val::Int(n) => json!(n),
            Val::Float(f, decimals) if f.is_finite() => {
                let scale = 10f64.powi(*decimals as i32 + 1);
                json!((f * scale).round() / scale)
            }
            Val::Float(..) | Val::None => Value::Null,
            Val::Text(t) => json!(t),
        }
    }

    fn table(&self) -> String {
        match self {
            Val::Int(n) => thousands(*n),
            Val::Float(f, decimals) if f.is_finite() => {
                let text = format!("{f:.decimals$}");
                match text.split_once('.') {
                    Some((whole, frac)) => {
                        let sign = if whole.starts_with('-') { "-" } else { "" };
                        let n: u64 = whole.trim_start_matches('-').parse().unwrap_or(0);
                        format!("{sign}{}.{frac}", thousands(n))
                    }
                    None if *f < 0.0 => format!("-{}", thousands(f.abs() as u64)),
                    None => thousands(*f as u64),
                }
            }
            Val::Float(..) | Val::None => "-".into(),
            Val::Text(t) => t.clone(),
        }
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[derive(Debug, Clone)]
struct Row {
    key: String,
    label: String,
    val: Val,
    unit: String,
}

/// A titled group of rows; one JSON object.
#[derive(Debug, Clone)]
pub struct Section {
    key: String,
    title: String,
    rows: Vec<Row>,
}

impl Section {
    pub fn new(key: &str, title: &str) -> Section {
        Section {
            key: key.into(),
            title: title.into(),
            rows: Vec::new(),
        }
    }

    pub fn put(&mut self, key: &str, label: &str, val: Val, unit: &str) -> &mut Section {
        self.rows.push(Row {
            key: key.into(),
            label: label.into(),
            val,
            unit: unit.into(),
        });
        self
    }

    pub fn int(&mut self, key: &str, label: &str, n: u64) -> &mut Section {
        self.put(key, label, Val::Int(n), "")
    }

    pub fn float(
        &mut self,
        key: &str,
        label: &str,
        f: f64,
        decimals: usize,
        unit: &str,
    ) -> &mut Section {
        self.put(key, label, Val::Float(f, decimals), unit)
    }

    /// A rate per second over `seconds` (none when no time passed).
    pub fn rate(&mut self, key: &str, label: &str, count: u64, seconds: f64) -> &mut Section {
        let val = if seconds > 0.0 {
            Val::Float(count as f64 / seconds, 1)
        } else {
            Val::None
        };
        self.put(key, label, val, "/s")
    }

    fn json(&self) -> Value {
        let mut map = Map::new();
        for row in &self.rows {
            map.insert(row.key.clone(), row.val.json());
        }
        Value::Object(map)
    }
}

/// Percentiles of a histogram of microseconds, as a section.
pub fn latency_section(key: &str, title: &str, h: &Histogram<u64>) -> Section {
    let mut s = Section::new(key, title);
    s.int("count", "samples", h.len());
    let empty = h.is_empty();
    let q = |q: f64| {
        if empty {
            Val::None
        } else {
            Val::Int(h.value_at_quantile(q))
        }
    };
    s.put(
        "min",
        "min",
        if empty { Val::None } else { Val::Int(h.min()) },
        "µs",
    );
    s.put("p50", "p50", q(0.50), "µs");
    s.put("p90", "p90", q(0.90), "µs");
    s.put("p99", "p99", q(0.99), "µs");
    s.put("p99_9", "p99.9", q(0.999), "µs");
    s.put(
        "max",
        "max",
        if empty { Val::None } else { Val::Int(h.max()) },
        "µs",
    );
    s.put(
        "mean",
        "mean",
        if empty {
            Val::None
        } else {
            Val::Float(h.mean(), 1)
        },
        "µs",
    );
    s
}

/// A new latency histogram: 1 µs to 1 hour, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Everything a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: String,
    /// One line saying what ran, for the table's heading.
    pub title: String,
    pub interrupted: bool,
    parameters: Map<String, Value>,
    pub elapsed_s: f64,
    sections: Vec<Section>,
    pub failures: Failures,
    /// `None` without --server-pid (JSON `null`).
    pub server: Option<Section>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(scenario: &str, title: String) -> Report {
        Report {
            scenario: scenario.into(),
            title,
            interrupted: false,
            parameters: Map::new(),
            elapsed_s: 0.0,
            sections: Vec::new(),
            failures: Failures::default(),
            server: None,
            notes: Vec::new(),
        }
    }

    pub fn param(&mut self, key: &str, value: Value) {
        self.parameters.insert(key.into(), value);
    }

    pub fn push(&mut self, section: Section) {
        self.sections.push(section);
    }

    /// The one JSON object `--json` prints.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("tool".into(), json!("reverb-shard bench"));
        map.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
        map.insert("scenario".into(), json!(self.scenario));
        map.insert("interrupted".into(), json!(self.interrupted));
        map.insert("parameters".into(), Value::Object(self.parameters.clone()));
        map.insert("elapsed_s".into(), Val::Float(self.elapsed_s, 2).json());
        for section in &self.sections {
            map.insert(section.key.clone(), section.json());
        }
        let mut by_cause = Map::new();
        let mut examples = Map::new();
        for (cause, n, example) in self.failures.iter() {
            by_cause.insert(cause.into(), json!(n));
            examples.insert(cause.into(), json!(example));
        }
        map.insert(
            "failures".into(),
            json!({"total": self.failures.total(), "by_cause": by_cause, "examples": examples}),
        );
        map.insert(
            "server".into(),
            self.server.as_ref().map_or(Value::Null, Section::json),
        );
        map.insert("notes".into(), json!(self.notes));
        Value::Object(map)
    }

    /// The human-readable table.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "reverb-shard bench {}: {}", self.scenario, self.title);
        let params: Vec<String> = self
            .parameters
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                Value::Array(items) => format!(
                    "{k}={}",
                    items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                other => format!("{k}={other}"),
            })
            .collect();
        let _ = writeln!(out, "  {}", params.join("  "));
        let _ = writeln!(
            out,
            "  elapsed {:.2} s{}",
            self.elapsed_s,
            if self.interrupted {
                "  (interrupted: partial results)"
            } else {
                ""
            }
        );
        let mut sections: Vec<&Section> = self.sections.iter().collect();
        if let Some(server) = &self.server {
            sections.push(server);
        }
        for section in sections {
            let _ = writeln!(out, "\n{}", section.title);
            for row in &section.rows {
                let _ = writeln!(
                    out,
                    "  {:<38}{:>14} {}",
                    row.label,
                    row.val.table(),
                    row.unit
                );
            }
        }
        let _ = writeln!(out, "\nfailures");
        if self.failures.is_empty() {
            let _ = writeln!(out, "  none");
        }
        for (cause, n, example) in self.failures.iter() {
            let _ = writeln!(out, "  {cause:<38}{:>14}   e.g. {example}", thousands(n));
        }
        if self.server.is_none() {
            let _ = writeln!(
                out,
                "\nserver: not measured (give --server-pid PID for its CPU and memory)"
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "\nnote: {note}");
        }
        // Trailing spaces from empty units.
        out.lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::fail::Fail;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(Val::Float(1234.56, 1).table(), "1,234.6");
        assert_eq!(Val::Float(f64::NAN, 1).table(), "-");
        assert_eq!(Val::Float(-4600.0, 0).table(), "-4,600");
        assert_eq!(Val::Float(-12.5, 1).table(), "-12.5");
        assert_eq!(Val::Float(2.0 / 3.0, 2).json(), json!(0.667));
    }

    #[test]
    fn json_and_table_agree() {
        let mut r = Report::new("fanout", "test".into());
        r.param("subscribers", json!(10));
        r.elapsed_s = 1.234;
        let mut s = Section::new("deliveries", "deliveries");
        s.int("deliveries", "deliveries", 1000)
            .rate("per_s", "per second", 1000, 2.0);
        r.push(s);
        let mut h = histogram();
        for v in 1..=100 {
            h.record(v).unwrap();
        }
        r.push(latency_section("latency_us", "latency", &h));
        r.failures.add(&Fail::Refused);
        let j = r.to_json();
        assert_eq!(j["scenario"], "fanout");
        assert_eq!(j["deliveries"]["deliveries"], 1000);
        assert_eq!(j["deliveries"]["per_s"], 500.0);
        assert_eq!(j["latency_us"]["p50"], 50);
        assert_eq!(j["latency_us"]["max"], 100);
        assert_eq!(j["failures"]["by_cause"]["refused"], 1);
        assert_eq!(j["server"], Value::Null);
        let t = r.to_table();
        assert!(t.contains("1,000"), "{t}");
        assert!(t.contains("refused"), "{t}");
        let empty = latency_section("l", "l", &histogram()).json();
        assert_eq!(empty["p99"], Value::Null);
    }
}
