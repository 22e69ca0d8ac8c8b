//! Validation of rule input shared by the JSON API and the dashboard form.

use super::model::{format_duration_secs, Comparison, RuleMetric, Severity};
use crate::domain::ParseError;
use crate::store::{Rule, RuleInput};

pub const MAX_FOR_SECS: i64 = 7 * 86_400;
pub const MIN_REPEAT_SECS: i64 = 10;
pub const MAX_REPEAT_SECS: i64 = 30 * 86_400;
pub const DEFAULT_REPEAT_SECS: i64 = 4 * 3600;
pub const MAX_HOSTS: usize = 100;

/// A rule as submitted, before validation. Durations in seconds.
#[derive(Debug, Clone, Default)]
pub struct RuleDraft {
    pub name: Option<String>,
    pub metric: String,
    pub comparison: Option<String>,
    pub threshold: f64,
    pub for_secs: Option<i64>,
    pub hysteresis: Option<f64>,
    pub keep_firing_for_secs: Option<i64>,
    pub severity: Option<String>,
    pub repeat_interval_secs: Option<i64>,
    pub hosts: Vec<String>,
    pub enabled: Option<bool>,
}

fn clean_text(field: &str, s: &str, max: usize) -> Result<String, ParseError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(ParseError::new(format!("{field} must not be empty")));
    }
    if t.chars().count() > max {
        return Err(ParseError::new(format!(
            "{field} must be at most {max} characters"
        )));
    }
    if t.chars().any(char::is_control) {
        return Err(ParseError::new(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(t.to_owned())
}

fn duration(
    field: &str,
    v: Option<i64>,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ParseError> {
    let v = v.unwrap_or(default);
    if v < min || v > max {
        return Err(ParseError::new(format!(
            "{field} must be between {} and {}",
            format_duration_secs(min),
            format_duration_secs(max)
        )));
    }
    Ok(v)
}

/// Checks a draft. For a managed (threshold) rule, metric and comparison cannot change:
/// the rule mirrors `/thresholds` or `/admin/thresholds`.
pub fn validate(d: RuleDraft, managed: Option<&Rule>) -> Result<RuleInput, ParseError> {
    let metric = RuleMetric::parse(d.metric.trim()).ok_or_else(|| {
        let names: Vec<&str> = RuleMetric::ALL.iter().map(|m| m.as_str()).collect();
        ParseError::new(format!("metric must be one of: {}", names.join(", ")))
    })?;
    let comparison = match d.comparison.as_deref().map(str::trim) {
        None | Some("") => Comparison::Gt,
        Some(c) => Comparison::parse(c)
            .ok_or_else(|| ParseError::new("comparison must be one of: >, >=, <, <="))?,
    };
    if let Some(m) = managed {
        if m.metric != metric.as_str() || m.comparison != comparison.as_str() {
            return Err(ParseError::new(
                "this is a built-in rule: its metric and comparison cannot change",
            ));
        }
    }
    let t = d.threshold;
    if !t.is_finite() {
        return Err(ParseError::new("threshold must be a finite number"));
    }
    if metric.is_percent() && !(0.0..=100.0).contains(&t) {
        return Err(ParseError::new(format!(
            "threshold for {} must be between 0 and 100",
            metric.as_str()
        )));
    }
    if !metric.is_percent() && !(0.0..=1e15).contains(&t) {
        return Err(ParseError::new(format!(
            "threshold for {} must be between 0 and 1e15",
            metric.as_str()
        )));
    }
    let hysteresis = d.hysteresis.unwrap_or(0.0);
    let max_h = if metric.is_percent() { 100.0 } else { 1e15 };
    if !hysteresis.is_finite() || !(0.0..=max_h).contains(&hysteresis) {
        return Err(ParseError::new(format!(
            "hysteresis must be between 0 and {max_h}"
        )));
    }
    // A clear point the value can never reach would keep the alert firing forever.
    if comparison.is_upper() && hysteresis > t {
        return Err(ParseError::new(
            "hysteresis must not exceed the threshold (the alert could never clear)",
        ));
    }
    if !comparison.is_upper() && metric.is_percent() && t + hysteresis > 100.0 {
        return Err(ParseError::new(
            "threshold + hysteresis must not exceed 100 (the alert could never clear)",
        ));
    }
    let severity = match d.severity.as_deref().map(str::trim) {
        None | Some("") => Severity::Warning,
        Some(s) => Severity::parse(s)
            .ok_or_else(|| ParseError::new("severity must be warning or critical"))?,
    };
    let for_secs = duration("for", d.for_secs, 0, 0, MAX_FOR_SECS)?;
    let keep = duration(
        "keep_firing_for",
        d.keep_firing_for_secs,
        0,
        0,
        MAX_FOR_SECS,
    )?;
    let repeat = duration(
        "repeat_interval",
        d.repeat_interval_secs,
        DEFAULT_REPEAT_SECS,
        MIN_REPEAT_SECS,
        MAX_REPEAT_SECS,
    )?;
    if d.hosts.len() > MAX_HOSTS {
        return Err(ParseError::new(format!("at most {MAX_HOSTS} hosts")));
    }
    let mut hosts: Vec<String> = Vec::with_capacity(d.hosts.len());
    for h in &d.hosts {
        let h = clean_text("host name", h, 253)?;
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    let name = match d.name.as_deref().map(str::trim) {
        None | Some("") => match managed {
            Some(m) => m.name.clone(),
            None => format!("{} {} {}", metric.as_str(), comparison.as_str(), t),
        },
        Some(n) => clean_text("name", n, 100)?,
    };
    Ok(RuleInput {
        name,
        metric: metric.as_str().to_owned(),
        comparison: comparison.as_str().to_owned(),
        threshold: t,
        for_secs,
        hysteresis,
        keep_firing_for_secs: keep,
        severity: severity.as_str().to_owned(),
        repeat_interval_secs: repeat,
        hosts,
        enabled: d.enabled.unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(metric: &str, threshold: f64) -> RuleDraft {
        RuleDraft {
            metric: metric.into(),
            threshold,
            ..RuleDraft::default()
        }
    }

    #[test]
    fn defaults_fill_in() {
        let r = validate(draft("cpu", 90.0), None).unwrap();
        assert_eq!(r.name, "cpu > 90");
        assert_eq!(r.comparison, ">");
        assert_eq!(r.severity, "warning");
        assert_eq!(r.repeat_interval_secs, 4 * 3600);
        assert_eq!((r.for_secs, r.keep_firing_for_secs), (0, 0));
        assert!(r.enabled && r.hosts.is_empty());
    }

    #[test]
    fn bad_values_are_refused_with_reasons() {
        let cases: Vec<(RuleDraft, &str)> = vec![
            (draft("cpuu", 1.0), "metric must be one of"),
            (draft("cpu", 101.0), "between 0 and 100"),
            (draft("load1", -1.0), "between 0 and 1e15"),
            (draft("cpu", f64::NAN), "finite"),
            (
                RuleDraft {
                    comparison: Some("=".into()),
                    ..draft("cpu", 1.0)
                },
                "comparison",
            ),
            (
                RuleDraft {
                    severity: Some("page".into()),
                    ..draft("cpu", 1.0)
                },
                "severity",
            ),
            (
                RuleDraft {
                    for_secs: Some(-1),
                    ..draft("cpu", 1.0)
                },
                "for must be",
            ),
            (
                RuleDraft {
                    repeat_interval_secs: Some(1),
                    ..draft("cpu", 1.0)
                },
                "repeat_interval",
            ),
            (
                RuleDraft {
                    hysteresis: Some(-2.0),
                    ..draft("cpu", 1.0)
                },
                "hysteresis",
            ),
            (
                RuleDraft {
                    name: Some("a\nb".into()),
                    ..draft("cpu", 1.0)
                },
                "control",
            ),
            (
                RuleDraft {
                    hosts: vec!["".into()],
                    ..draft("cpu", 1.0)
                },
                "host name",
            ),
        ];
        for (d, want) in cases {
            let err = validate(d, None).unwrap_err().0;
            assert!(err.contains(want), "{err} should mention {want}");
        }
    }

    #[test]
    fn hosts_are_deduplicated() {
        let r = validate(
            RuleDraft {
                hosts: vec!["a".into(), " a ".into(), "b".into()],
                ..draft("disk", 90.0)
            },
            None,
        )
        .unwrap();
        assert_eq!(r.hosts, vec!["a".to_owned(), "b".to_owned()]);
    }
}
