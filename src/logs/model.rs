//! The vocabulary of the analyzer: normalised levels and the line formats it recognises.

use serde::Serialize;

/// A normalised severity. Order is by severity, `Unknown` last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Notice,
    Warn,
    Error,
    Critical,
    /// A line with no recognisable level.
    Unknown,
}

impl Level {
    pub const ALL: [Level; 8] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Notice,
        Level::Warn,
        Level::Error,
        Level::Critical,
        Level::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Notice => "NOTICE",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
            Level::Unknown => "UNKNOWN",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// A level word in any case: `warning`/`warn`, `err`/`error`/`severe`,
    /// `crit`/`critical`/`fatal`/`emerg`/`emergency`/`alert`/`panic`, `information`/`info`,
    /// `notice`, `debug`/`dbg`, `trace`/`finest`/`finer`/`fine`, `verbose`. Bytes, so the
    /// hot path never has to decode UTF-8.
    pub fn from_word(word: &[u8]) -> Option<Level> {
        if word.is_empty() || word.len() > 13 {
            return None;
        }
        let mut buf = [0u8; 13];
        for (i, b) in word.iter().enumerate() {
            buf[i] = b.to_ascii_lowercase();
        }
        Some(match &buf[..word.len()] {
            b"trace" | b"finest" | b"finer" | b"fine" | b"verbose" => Level::Trace,
            b"debug" | b"dbg" => Level::Debug,
            b"info" | b"information" | b"informational" => Level::Info,
            b"notice" => Level::Notice,
            b"warn" | b"warning" => Level::Warn,
            b"error" | b"err" | b"severe" => Level::Error,
            b"critical" | b"crit" | b"fatal" | b"emerg" | b"emergency" | b"alert" | b"panic" => {
                Level::Critical
            }
            _ => return None,
        })
    }

    /// Syslog severity 0–7 (RFC 5424 §6.2.1).
    pub fn from_syslog_severity(sev: u8) -> Level {
        match sev {
            0..=2 => Level::Critical,
            3 => Level::Error,
            4 => Level::Warn,
            5 => Level::Notice,
            6 => Level::Info,
            _ => Level::Debug,
        }
    }

    /// An HTTP status as an access-log level: 5xx error, 4xx warn, else info.
    pub fn from_http_status(status: u16) -> Level {
        match status {
            500..=599 => Level::Error,
            400..=499 => Level::Warn,
            _ => Level::Info,
        }
    }
}

/// The line formats the analyzer tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `<34>Oct 11 22:14:15 host app[123]: message` or without the priority.
    SyslogRfc3164,
    /// `<165>1 2003-10-11T22:14:15.003Z host app 123 ID47 [sd] message`.
    SyslogRfc5424,
    /// Apache `[Wed Oct 11 14:32:52.123 2000] [core:error] [pid 1] …` and nginx
    /// `2024/01/02 03:04:05 [error] 123#0: *1 …`.
    ApacheError,
    /// NCSA common/combined access log (nginx and Apache); level from the status.
    AccessLog,
    /// Python logging `2024-01-02 03:04:05,678 - name - ERROR - message` and
    /// `ERROR:name:message`.
    Python,
    /// log4j/logback `2024-01-02 03:04:05.678 [thread] ERROR com.x.Y - message`.
    Java,
    /// One JSON object per line with `level`/`severity`/`lvl` in any case.
    Json,
    /// `time=… level=error msg="…"`.
    Logfmt,
    /// Go/klog `E0102 03:04:05.678901   123 file.go:42] message`.
    Klog,
    /// Anything else: a level word near the start, if any.
    Generic,
}

impl Format {
    pub const ALL: [Format; 10] = [
        Format::SyslogRfc3164,
        Format::SyslogRfc5424,
        Format::ApacheError,
        Format::AccessLog,
        Format::Python,
        Format::Java,
        Format::Json,
        Format::Logfmt,
        Format::Klog,
        Format::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::SyslogRfc3164 => "syslog_rfc3164",
            Format::SyslogRfc5424 => "syslog_rfc5424",
            Format::ApacheError => "apache_error",
            Format::AccessLog => "access_log",
            Format::Python => "python",
            Format::Java => "java",
            Format::Json => "json",
            Format::Logfmt => "logfmt",
            Format::Klog => "klog",
            Format::Generic => "generic",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_words_normalise() {
        assert_eq!(Level::from_word(b"WARNING"), Some(Level::Warn));
        assert_eq!(Level::from_word(b"Err"), Some(Level::Error));
        assert_eq!(Level::from_word(b"SEVERE"), Some(Level::Error));
        assert_eq!(Level::from_word(b"fatal"), Some(Level::Critical));
        assert_eq!(Level::from_word(b"EMERG"), Some(Level::Critical));
        assert_eq!(Level::from_word(b"notice"), Some(Level::Notice));
        assert_eq!(Level::from_word(b"informational"), Some(Level::Info));
        assert_eq!(Level::from_word(b"errors"), None);
        assert_eq!(Level::from_word(b""), None);
        assert_eq!(Level::from_word("é".as_bytes()), None);
    }

    #[test]
    fn names_are_stable() {
        for (i, l) in Level::ALL.iter().enumerate() {
            assert_eq!(l.index(), i);
            assert_eq!(
                serde_json::to_string(l).unwrap(),
                format!("\"{}\"", l.as_str())
            );
        }
        for (i, f) in Format::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
            assert_eq!(
                serde_json::to_string(f).unwrap(),
                format!("\"{}\"", f.as_str())
            );
        }
    }
}
