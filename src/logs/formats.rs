//! TEMPORARY STUB.
use super::model::{Format, Level};
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine<'a> {
    pub format: Format,
    pub level: Level,
    pub ts_ms: Option<i64>,
    pub message: &'a [u8],
}
pub fn parse_line(line: &[u8], _year: i32) -> ParsedLine<'_> {
    let level = line
        .split(|b| !b.is_ascii_alphabetic())
        .take(5)
        .find_map(Level::from_word)
        .unwrap_or(Level::Unknown);
    ParsedLine {
        format: Format::Generic,
        level,
        ts_ms: None,
        message: line,
    }
}
