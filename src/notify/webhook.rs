//! stub
use super::Attempt;
use std::time::Duration;
pub struct WebhookTarget<'a> {
    pub url: &'a str,
    pub secret: &'a [u8],
    pub trusted: bool,
}
pub struct WebhookClient;
impl WebhookClient {
    pub fn new(_timeout: Duration, _allow_private: bool) -> anyhow::Result<Self> {
        Ok(Self)
    }
    pub async fn send(
        &self,
        _target: &WebhookTarget<'_>,
        _msg_id: &str,
        _body: &[u8],
        _now_secs: i64,
    ) -> Attempt {
        todo!()
    }
}
