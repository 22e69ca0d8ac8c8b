//! TEMPORARY STUB.
use std::collections::HashMap;
#[derive(Debug, Clone, Default)]
pub struct MinerConfig {
    pub max_templates: usize,
    pub similarity: f64,
    pub max_tokens: usize,
    pub max_message_bytes: usize,
}
pub type TemplateId = u32;
#[derive(Debug, Default)]
pub struct Miner {
    ids: HashMap<Vec<u8>, u32>,
    texts: Vec<String>,
}
impl Miner {
    pub fn new(_cfg: MinerConfig) -> Self {
        Self::default()
    }
    pub fn add(&mut self, message: &[u8]) -> TemplateId {
        let key: Vec<u8> = message
            .iter()
            .map(|b| if b.is_ascii_digit() { b'0' } else { *b })
            .collect();
        let n = self.ids.len() as u32;
        let texts = &mut self.texts;
        *self.ids.entry(key.clone()).or_insert_with(|| {
            texts.push(String::from_utf8_lossy(&key).into_owned());
            n
        })
    }
    pub fn template(&self, id: TemplateId) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(
            self.texts
                .get(id as usize)
                .map(|s| s.as_str())
                .unwrap_or(""),
        )
    }
    pub fn len(&self) -> usize {
        self.texts.len()
    }
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
}
