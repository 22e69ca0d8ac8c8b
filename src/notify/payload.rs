//! The alert notification payload: the webhook JSON body and its rendering as an email.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertPayload {
    /// The metric, as in the original service (`cpu`, `memory`, …).
    #[serde(rename = "type")]
    pub kind: String,
    pub value: f64,
    /// When the sample behind this event was taken, RFC 3339 UTC with Z.
    pub ts: String,
    /// When this notification was generated, RFC 3339 UTC with Z.
    pub generated_at: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// `firing`, `repeat`, `resolved` or `test`.
    pub event: String,
    pub threshold: f64,
    /// `>`, `>=`, `<` or `<=`.
    pub comparison: String,
    /// The rule's name.
    pub rule: String,
    pub rule_id: Option<i64>,
    pub host: String,
    /// `warning` or `critical`.
    pub severity: String,
    pub alert_id: Option<i64>,
    /// Start of the alert episode, RFC 3339.
    pub started_at: String,
    pub resolved_at: Option<String>,
    /// Highest (or lowest, for `<` rules) value seen in the episode so far.
    pub peak: f64,
}

/// Longest subject we produce; mail clients truncate anyway and long user strings should
/// not turn into multi-kilobyte headers.
const MAX_SUBJECT_CHARS: usize = 200;

/// A number for humans: at most two decimals, no trailing zeros (`80`, `93.2`, `0.05`).
pub fn human_number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// One line of user-controlled text: control characters (CR/LF above all, which would
/// let a rule name inject headers or forge lines) become spaces.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl AlertPayload {
    /// `cpu > 80 on web-1`, the heart of every subject and headline.
    fn condition(&self) -> String {
        format!(
            "{} {} {} on {}",
            self.kind,
            self.comparison,
            human_number(self.threshold),
            self.host
        )
    }

    fn subject(&self) -> String {
        let cond = self.condition();
        let value = human_number(self.value);
        let raw = match self.event.as_str() {
            "firing" => format!(
                "[watchpost] FIRING {}: {cond} (value {value})",
                self.severity
            ),
            "repeat" => format!(
                "[watchpost] still firing {}: {cond} (value {value})",
                self.severity
            ),
            "resolved" => format!("[watchpost] RESOLVED: {cond} (value {value})"),
            "test" => "[watchpost] test notification".to_owned(),
            other => format!("[watchpost] {other}: {cond} (value {value})"),
        };
        let clean = one_line(&raw);
        clean.chars().take(MAX_SUBJECT_CHARS).collect()
    }

    fn headline(&self) -> String {
        match self.event.as_str() {
            "firing" => format!("FIRING ({}): {}", self.severity, self.condition()),
            "repeat" => format!("Still firing ({}): {}", self.severity, self.condition()),
            "resolved" => format!("Resolved: {}", self.condition()),
            "test" => "Test notification from watchpost: this channel works.".to_owned(),
            other => format!("{other}: {}", self.condition()),
        }
    }

    /// Label/value rows shared by the text and HTML bodies.
    fn rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![
            ("Rule", self.rule.clone()),
            ("Host", self.host.clone()),
            ("Metric", self.kind.clone()),
            (
                "Value",
                format!(
                    "{} (threshold {} {})",
                    human_number(self.value),
                    self.comparison,
                    human_number(self.threshold)
                ),
            ),
            ("Peak", human_number(self.peak)),
            ("Severity", self.severity.clone()),
            ("Status", self.status.clone()),
            ("Started", self.started_at.clone()),
        ];
        if let Some(resolved) = &self.resolved_at {
            rows.push(("Resolved", resolved.clone()));
        }
        rows.push(("Sample taken", self.ts.clone()));
        if let Some(id) = self.alert_id {
            rows.push(("Alert id", id.to_string()));
        }
        if let Some(id) = self.rule_id {
            rows.push(("Rule id", id.to_string()));
        }
        rows.push(("Generated", self.generated_at.clone()));
        rows
    }

    /// Subject, plain-text and HTML bodies of the email for this event. Readable for humans:
    /// e.g. subject "[watchpost] FIRING critical: cpu > 80 on web-1 (value 93.2)",
    /// "[watchpost] RESOLVED: …", "[watchpost] still firing: …", "[watchpost] test notification".
    pub fn email(&self) -> (String, String, String) {
        let subject = self.subject();
        let headline = one_line(&self.headline());
        let rows = self.rows();

        let mut text = format!("{headline}\n\n");
        for (label, value) in &rows {
            let _ = writeln!(text, "{label}: {}", one_line(value));
        }
        text.push_str("\n-- \nSent by watchpost.\n");

        let mut html = String::from(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\
             <body style=\"font-family: sans-serif\">\n",
        );
        let _ = writeln!(html, "<h2>{}</h2>", html_escape(&headline));
        html.push_str("<table cellpadding=\"4\" style=\"border-collapse: collapse\">\n");
        for (label, value) in &rows {
            let _ = writeln!(
                html,
                "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
                html_escape(label),
                html_escape(&one_line(value))
            );
        }
        html.push_str(
            "</table>\n<p style=\"color: #666\">Sent by watchpost.</p>\n</body></html>\n",
        );
        (subject, text, html)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(event: &str) -> AlertPayload {
        AlertPayload {
            kind: "cpu".into(),
            value: 93.2,
            ts: "2024-05-01T12:00:00Z".into(),
            generated_at: "2024-05-01T12:00:01Z".into(),
            status: if event == "resolved" {
                "resolved"
            } else {
                "firing"
            }
            .into(),
            event: event.into(),
            threshold: 80.0,
            comparison: ">".into(),
            rule: "High CPU".into(),
            rule_id: Some(3),
            host: "web-1".into(),
            severity: "critical".into(),
            alert_id: Some(42),
            started_at: "2024-05-01T11:58:00Z".into(),
            resolved_at: (event == "resolved").then(|| "2024-05-01T12:00:00Z".into()),
            peak: 97.456,
        }
    }

    #[test]
    fn subjects_per_event() {
        assert_eq!(
            sample("firing").email().0,
            "[watchpost] FIRING critical: cpu > 80 on web-1 (value 93.2)"
        );
        assert_eq!(
            sample("repeat").email().0,
            "[watchpost] still firing critical: cpu > 80 on web-1 (value 93.2)"
        );
        let mut resolved = sample("resolved");
        resolved.value = 41.0;
        assert_eq!(
            resolved.email().0,
            "[watchpost] RESOLVED: cpu > 80 on web-1 (value 41)"
        );
        assert_eq!(sample("test").email().0, "[watchpost] test notification");
    }

    #[test]
    fn bodies_carry_the_details() {
        let (_, text, html) = sample("resolved").email();
        assert!(text.starts_with("Resolved: cpu > 80 on web-1\n"), "{text}");
        for needle in [
            "Rule: High CPU",
            "Peak: 97.46",
            "Value: 93.2 (threshold > 80)",
            "Resolved: 2024-05-01T12:00:00Z",
            "Alert id: 42",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        assert!(html.contains("<th align=\"left\">Rule</th><td>High CPU</td>"));
        assert!(html.contains("cpu &gt; 80 on web-1"), "{html}");
    }

    #[test]
    fn user_strings_cannot_inject_headers_or_markup() {
        let mut p = sample("firing");
        p.rule = "<script>alert('x')</script> & co".into();
        p.host = "evil\r\nBcc: victim@example.com".into();
        let (subject, text, html) = p.email();
        assert!(
            !subject.contains('\r') && !subject.contains('\n'),
            "{subject:?}"
        );
        assert!(subject.contains("evil  Bcc: victim@example.com"));
        assert!(!text.contains("evil\r\n"), "{text:?}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
        assert!(!html.contains("evil\r\n"));

        p.rule = "x".repeat(1000);
        p.host = "h".repeat(1000);
        assert!(p.email().0.chars().count() <= MAX_SUBJECT_CHARS);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(human_number(80.0), "80");
        assert_eq!(human_number(93.2), "93.2");
        assert_eq!(human_number(0.05), "0.05");
        assert_eq!(human_number(-0.001), "0");
        assert_eq!(human_number(1e3), "1000");
        assert_eq!(human_number(f64::NAN), "NaN");
    }

    #[test]
    fn json_shape_uses_type_for_the_metric() {
        let v = serde_json::to_value(sample("firing")).unwrap();
        assert_eq!(v["type"], "cpu");
        assert!(v.get("kind").is_none());
        assert_eq!(v["resolved_at"], serde_json::Value::Null);
        let back: AlertPayload = serde_json::from_value(v).unwrap();
        assert_eq!(back, sample("firing"));
    }
}
