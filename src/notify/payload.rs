//! stub
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertPayload {
    pub x: i64,
}
impl AlertPayload {
    pub fn email(&self) -> (String, String, String) {
        todo!()
    }
}
