//! SMTP transport: multipart text+HTML alert emails through lettre, classified into an [`Outcome`].

use super::{elapsed_ms, Attempt, Outcome};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Most recipients one channel may list: more is a mailing list, not an alert channel.
pub const MAX_RECIPIENTS: usize = 20;
/// RFC 5321 path limit for one address.
pub const MAX_ADDRESS_LEN: usize = 254;
/// A `From` with a display name may be a little longer than a bare address.
const MAX_MAILBOX_LEN: usize = 320;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain for a loopback relay, implicit TLS on port 465, STARTTLS (required) otherwise.
    Auto,
    /// STARTTLS, required: no fallback to plaintext (that would be a downgrade).
    StartTls,
    /// Implicit TLS (SMTPS).
    Tls,
    /// Plaintext; only allowed to a loopback relay.
    None,
}

#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub tls: SmtpTls,
    /// Per SMTP command (connect, each reply); a whole send is bounded by a multiple of it.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpConfig {
    // Hand-written so the password never reaches a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("tls", &self.tls)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Sends alert emails through one configured relay.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Kept only to scrub it from error text, should a server ever echo it back.
    password: Option<String>,
    /// Upper bound on one whole send (connect, EHLO, MAIL, RCPT…, DATA, QUIT).
    send_timeout: Duration,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// Whether `host` names this machine, the only place plaintext SMTP is acceptable.
fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_end_matches('.');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Mailer {
    /// Refuses plaintext (None, or Auto resolving to plain) unless the host is localhost / 127.0.0.0/8 / ::1.
    /// Auto: loopback host → plain, port 465 → implicit TLS (`relay`), otherwise STARTTLS required (`starttls_relay`).
    pub fn new(cfg: &SmtpConfig) -> Result<Self, String> {
        let host = cfg.host.trim();
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("SMTP host must be a host name or IP address".into());
        }
        if cfg.port == 0 {
            return Err("SMTP port must be between 1 and 65535".into());
        }
        let from = parse_mailbox(&cfg.from).map_err(|e| format!("SMTP from address: {e}"))?;
        let loopback = is_loopback_host(host);
        // lettre wants a bare IPv6 address, not the URL form.
        let server = host
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(host);
        let mode = match cfg.tls {
            SmtpTls::Auto if loopback => SmtpTls::None,
            SmtpTls::Auto if cfg.port == 465 => SmtpTls::Tls,
            SmtpTls::Auto => SmtpTls::StartTls,
            explicit => explicit,
        };
        let tls_params = || {
            TlsParameters::new(server.to_owned())
                .map_err(|e| format!("SMTP TLS setup for {server} failed: {e}"))
        };
        let tls = match mode {
            SmtpTls::None if !loopback => {
                return Err(format!(
                    "SMTP without TLS is only allowed to a relay on this machine \
                     (localhost, 127.0.0.0/8, ::1), not {server}; use STARTTLS or TLS"
                ));
            }
            SmtpTls::None | SmtpTls::Auto => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_params()?),
            SmtpTls::Tls => Tls::Wrapper(tls_params()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server)
            .port(cfg.port)
            .tls(tls)
            .timeout(Some(cfg.timeout));
        if let Some(user) = cfg.user.as_ref().filter(|u| !u.is_empty()) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                cfg.password.clone().unwrap_or_default(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            password: cfg.password.clone().filter(|p| !p.is_empty()),
            send_timeout: cfg.timeout.saturating_mul(6),
        })
    }

    /// The `From` mailbox every message carries.
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// Sends one multipart/alternative message to `to`.
    pub async fn send(&self, to: &[Mailbox], subject: &str, text: &str, html: &str) -> Attempt {
        let start = Instant::now();
        let outcome = self.send_inner(to, subject, text, html).await;
        Attempt {
            outcome,
            duration_ms: elapsed_ms(start),
        }
    }

    async fn send_inner(&self, to: &[Mailbox], subject: &str, text: &str, html: &str) -> Outcome {
        if to.is_empty() {
            return Outcome::Permanent {
                status: None,
                error: "email has no recipients".into(),
            };
        }
        let mut builder = Message::builder().from(self.from.clone());
        for mailbox in to {
            builder = builder.to(mailbox.clone());
        }
        // lettre encodes header values, but a bare CR/LF in a subject is never intended.
        let subject: String = subject
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let message = match builder
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(
                text.to_owned(),
                html.to_owned(),
            )) {
            Ok(m) => m,
            Err(e) => {
                return Outcome::Permanent {
                    status: None,
                    error: format!("could not build email: {e}"),
                }
            }
        };
        match tokio::time::timeout(self.send_timeout, self.transport.send(message)).await {
            Err(_) => Outcome::Retry {
                status: None,
                error: format!(
                    "SMTP send timed out after {} s",
                    self.send_timeout.as_secs()
                ),
                retry_after: None,
            },
            Ok(Ok(response)) => Outcome::Delivered {
                status: Some(u16::from(response.code())),
            },
            Ok(Err(e)) => self.classify(&e),
        }
    }

    fn classify(&self, e: &lettre::transport::smtp::Error) -> Outcome {
        let status = e.status().map(u16::from);
        let mut error = format!("SMTP: {}", super::error_chain(e));
        if let Some(pw) = &self.password {
            error = error.replace(pw.as_str(), "<redacted>");
        }
        // 5xx replies and client-side refusals (no STARTTLS offered, no usable auth
        // mechanism) will fail the same way next time; everything else — 4xx, timeouts,
        // refused or dropped connections, TLS hiccups — may pass later.
        if e.is_permanent() || e.is_client() {
            Outcome::Permanent { status, error }
        } else {
            Outcome::Retry {
                status,
                error,
                retry_after: None,
            }
        }
    }
}

/// User input shown back in an error: bounded and on one line.
fn shown(s: &str) -> String {
    let short: String = s.chars().take(64).collect();
    format!("{short:?}")
}

/// Recipients of an email channel: addresses separated by commas and/or whitespace,
/// 1..=20 of them, bare addresses only (no display names, which are where header tricks
/// hide). Duplicates are dropped.
pub fn parse_recipients(s: &str) -> Result<Vec<Mailbox>, String> {
    if s.chars().any(|c| c.is_control() && c != ' ' && c != '\t') {
        return Err("email recipients must not contain line breaks or control characters".into());
    }
    let mut out: Vec<Mailbox> = Vec::new();
    for token in s.split(|c: char| c == ',' || c.is_whitespace()) {
        if token.is_empty() {
            continue;
        }
        if token.len() > MAX_ADDRESS_LEN {
            return Err(format!(
                "email address {} is longer than {MAX_ADDRESS_LEN} characters",
                shown(token)
            ));
        }
        if token.chars().any(|c| {
            matches!(
                c,
                '<' | '>' | '"' | '(' | ')' | ';' | ':' | '\\' | '[' | ']'
            )
        }) {
            return Err(format!(
                "{} is not a plain email address (write just name@example.com)",
                shown(token)
            ));
        }
        let address: Address = token
            .parse()
            .map_err(|_| format!("{} is not a valid email address", shown(token)))?;
        if !out
            .iter()
            .any(|m| m.email.to_string().eq_ignore_ascii_case(address.as_ref()))
        {
            out.push(Mailbox::new(None, address));
        }
        if out.len() > MAX_RECIPIENTS {
            return Err(format!(
                "at most {MAX_RECIPIENTS} email recipients are allowed"
            ));
        }
    }
    if out.is_empty() {
        return Err("at least one email recipient is required".into());
    }
    Ok(out)
}

/// One mailbox, `name@example.com` or `Watchpost <name@example.com>` (used for `From`).
pub fn parse_mailbox(s: &str) -> Result<Mailbox, String> {
    let s = s.trim();
    if s.chars().any(char::is_control) {
        return Err("email address must not contain line breaks or control characters".into());
    }
    if s.is_empty() {
        return Err("email address is empty".into());
    }
    if s.len() > MAX_MAILBOX_LEN {
        return Err(format!(
            "email address is longer than {MAX_MAILBOX_LEN} characters"
        ));
    }
    let mailbox: Mailbox = s
        .parse()
        .map_err(|_| format!("{} is not a valid email address", shown(s)))?;
    if mailbox.email.to_string().len() > MAX_ADDRESS_LEN {
        return Err(format!(
            "email address is longer than {MAX_ADDRESS_LEN} characters"
        ));
    }
    Ok(mailbox)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(host: &str, port: u16, tls: SmtpTls) -> SmtpConfig {
        SmtpConfig {
            host: host.into(),
            port,
            user: None,
            password: None,
            from: "Watchpost <alerts@example.com>".into(),
            tls,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn plaintext_only_to_loopback() {
        let err = Mailer::new(&cfg("mail.example.com", 25, SmtpTls::None)).unwrap_err();
        assert!(err.contains("only allowed"), "{err}");
        for host in [
            "localhost",
            "127.0.0.1",
            "127.3.2.1",
            "::1",
            "[::1]",
            "LOCALHOST.",
        ] {
            Mailer::new(&cfg(host, 25, SmtpTls::None)).unwrap();
            Mailer::new(&cfg(host, 2525, SmtpTls::Auto)).unwrap();
        }
        // Auto towards a remote relay means STARTTLS or implicit TLS, both buildable offline.
        Mailer::new(&cfg("mail.example.com", 587, SmtpTls::Auto)).unwrap();
        Mailer::new(&cfg("mail.example.com", 465, SmtpTls::Auto)).unwrap();
        Mailer::new(&cfg("mail.example.com", 587, SmtpTls::StartTls)).unwrap();
        Mailer::new(&cfg("mail.example.com", 465, SmtpTls::Tls)).unwrap();
        assert!(Mailer::new(&cfg("", 25, SmtpTls::Auto)).is_err());
        assert!(Mailer::new(&cfg("a b", 25, SmtpTls::Auto)).is_err());
        let mut bad_from = cfg("localhost", 25, SmtpTls::None);
        bad_from.from = "nobody".into();
        assert!(Mailer::new(&bad_from).unwrap_err().contains("from"));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let mut c = cfg("localhost", 25, SmtpTls::None);
        c.user = Some("u".into());
        c.password = Some("hunter2-secret".into());
        assert!(!format!("{c:?}").contains("hunter2"));
        let m = Mailer::new(&c).unwrap();
        assert!(!format!("{m:?}").contains("hunter2"));
    }

    #[test]
    fn recipients_parse_and_refuse_tricks() {
        let r =
            parse_recipients("a@example.com, b@example.org\tc@example.net,,A@EXAMPLE.COM").unwrap();
        let emails: Vec<String> = r.iter().map(|m| m.email.to_string()).collect();
        assert_eq!(emails, ["a@example.com", "b@example.org", "c@example.net"]);
        assert!(r.iter().all(|m| m.name.is_none()));
        for bad in [
            "",
            " , ",
            "x\r\nBcc: y@example.com",
            "x@example.com\nBcc: y@example.com",
            "\"Boss\" <boss@example.com>",
            "<a@example.com>",
            "a@example.com;b@example.com",
            "not-an-address",
            "a@",
            "@example.com",
            "a@[127.0.0.1]",
        ] {
            assert!(parse_recipients(bad).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..21).map(|i| format!("u{i}@example.com")).collect();
        assert!(parse_recipients(&many.join(","))
            .unwrap_err()
            .contains("20"));
        assert_eq!(parse_recipients(&many[..20].join(" ")).unwrap().len(), 20);
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(parse_recipients(&long).unwrap_err().contains("254"));
    }

    #[test]
    fn mailboxes_parse() {
        let m = parse_mailbox("Watchpost <alerts@example.com>").unwrap();
        assert_eq!(m.name.as_deref(), Some("Watchpost"));
        assert_eq!(m.email.to_string(), "alerts@example.com");
        assert!(parse_mailbox(" alerts@example.com ").is_ok());
        assert!(parse_mailbox("x\r\nBcc: y@example.com").is_err());
        assert!(parse_mailbox("Evil\r\nBcc: y@example.com <a@example.com>").is_err());
        assert!(parse_mailbox("").is_err());
        assert!(parse_mailbox("nope").is_err());
    }
}
