//! stub
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct UrlError;
pub async fn check_url(_raw: &str, _allow_private: bool) -> Result<reqwest::Url, UrlError> {
    todo!()
}
