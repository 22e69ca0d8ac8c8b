//! stub
use super::Attempt;
use std::time::Duration;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    Auto,
    StartTls,
    Tls,
    None,
}
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub tls: SmtpTls,
    pub timeout: Duration,
}
pub struct Mailer;
impl Mailer {
    pub fn new(_cfg: &SmtpConfig) -> Result<Self, String> {
        todo!()
    }
    pub async fn send(
        &self,
        _to: &[lettre::message::Mailbox],
        _subject: &str,
        _text: &str,
        _html: &str,
    ) -> Attempt {
        todo!()
    }
}
pub fn parse_recipients(_s: &str) -> Result<Vec<lettre::message::Mailbox>, String> {
    todo!()
}
pub fn parse_mailbox(_s: &str) -> Result<lettre::message::Mailbox, String> {
    todo!()
}
