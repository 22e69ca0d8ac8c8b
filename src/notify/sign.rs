//! stub
#[derive(Debug)]
pub struct SecretError;
pub fn generate_secret() -> String {
    "whsec_stub".into()
}
pub fn parse_secret(_s: &str) -> Result<Vec<u8>, SecretError> {
    todo!()
}
pub fn new_message_id() -> String {
    format!("msg_{}", rand::random::<u64>())
}
