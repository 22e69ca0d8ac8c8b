//! The Prometheus text exposition format (version 0.0.4): HELP/TYPE headers, samples, escaping.

use std::fmt::Write as _;

/// The `Content-Type` of a scrape answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `# TYPE` of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Writes one exposition document into a growing buffer. Metric and label *names* are the
/// caller's constants; label *values* and help texts are escaped here, because values such
/// as host names are user data.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: String,
}

impl Encoder {
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: String::with_capacity(bytes),
        }
    }

    /// `# HELP` and `# TYPE` lines; every family is announced once, before its samples.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        self.buf.push_str("# HELP ");
        self.buf.push_str(name);
        self.buf.push(' ');
        escape_help(help, &mut self.buf);
        self.buf.push_str("\n# TYPE ");
        self.buf.push_str(name);
        self.buf.push(' ');
        self.buf.push_str(kind.as_str());
        self.buf.push('\n');
    }

    /// One sample line with a floating-point value.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.series(name, labels);
        push_f64(value, &mut self.buf);
        self.buf.push('\n');
    }

    /// One sample line with an integer value (counters stay exact past 2^53).
    pub fn sample_u64(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.series(name, labels);
        // Writing to a String cannot fail.
        let _ = write!(self.buf, "{value}");
        self.buf.push('\n');
    }

    fn series(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.buf.push_str(name);
        if !labels.is_empty() {
            self.buf.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.buf.push(',');
                }
                self.buf.push_str(k);
                self.buf.push_str("=\"");
                escape_label_value(v, &mut self.buf);
                self.buf.push('"');
            }
            self.buf.push('}');
        }
        self.buf.push(' ');
    }

    pub fn finish(self) -> String {
        self.buf
    }
}

/// Label values: backslash, double quote and line feed are the three characters the
/// format escapes (`\\`, `\"`, `\n`); everything else, other control characters and any
/// UTF-8 included, is taken literally by the parser.
pub fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help texts escape backslash and line feed only (a quote is literal there).
pub fn escape_help(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Go's `ParseFloat` spellings for the special values; Rust's shortest round-trip form
/// (never an exponent) for the rest.
fn push_f64(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &str) -> String {
        let mut out = String::new();
        escape_label_value(s, &mut out);
        out
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(escaped("plain-host.example"), "plain-host.example");
        assert_eq!(escaped(r#"a"b"#), r#"a\"b"#);
        assert_eq!(escaped(r"a\b"), r"a\\b");
        assert_eq!(escaped("a\nb"), r"a\nb");
        // The escape of a backslash is not re-escaped, and a literal `\n` (two characters)
        // stays distinguishable from a line feed.
        assert_eq!(escaped("\\n"), r"\\n");
        assert_eq!(escaped("\"\\\n"), r#"\"\\\n"#);
        // Other characters, multi-byte ones included, pass unchanged.
        assert_eq!(escaped("hôst\t{x}=,"), "hôst\t{x}=,");
    }

    #[test]
    fn a_hostile_host_name_stays_on_one_line_and_inside_its_quotes() {
        let host = "evil\"} 1\nwatchpost_fake 2\\";
        let mut enc = Encoder::default();
        enc.family("m", Kind::Gauge, "h");
        enc.sample("m", &[("host", host)], 0.5);
        let out = enc.finish();
        assert_eq!(
            out,
            "# HELP m h\n# TYPE m gauge\nm{host=\"evil\\\"} 1\\nwatchpost_fake 2\\\\\"} 0.5\n"
        );
        assert_eq!(out.lines().count(), 3);
        // Undo the escaping the way a parser does and get the name back.
        let line = out.lines().nth(2).unwrap();
        let inner = &line["m{host=\"".len()..line.rfind("\"}").unwrap()];
        let mut back = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => back.push('\n'),
                    Some(other) => back.push(other),
                    None => panic!("dangling backslash"),
                }
            } else {
                back.push(c);
            }
        }
        assert_eq!(back, host);
    }

    #[test]
    fn help_escapes_backslash_and_newline_but_not_quotes() {
        let mut enc = Encoder::default();
        enc.family("m", Kind::Counter, "a \"b\" \\ c\nd");
        assert_eq!(
            enc.finish(),
            "# HELP m a \"b\" \\\\ c\\nd\n# TYPE m counter\n"
        );
    }

    #[test]
    fn values() {
        let mut enc = Encoder::default();
        enc.sample("a", &[], 42.0);
        enc.sample("b", &[("x", "1"), ("y", "2")], 0.25);
        enc.sample("c", &[], f64::NAN);
        enc.sample("d", &[], f64::INFINITY);
        enc.sample("e", &[], f64::NEG_INFINITY);
        enc.sample_u64("f", &[], u64::MAX);
        enc.sample("g", &[], 1e-7);
        assert_eq!(
            enc.finish(),
            "a 42\nb{x=\"1\",y=\"2\"} 0.25\nc NaN\nd +Inf\ne -Inf\nf 18446744073709551615\ng 0.0000001\n"
        );
    }
}
