//! `formats::parse_line` over every line of the input.
//!
//! Checked per line: no panic; `message` (and `tail`) are subslices of the line;
//! `message` is empty only for an empty line; `full_message` is `message` when `tail` is
//! empty, else `message + " " + tail`; the result does not change when the line gets a
//! trailing `\r` (CRLF files count like LF files); the same line parses the same way twice;
//! extreme years do not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watchpost::logs::formats::{parse_line, ParsedLine};

fn within(line: &[u8], part: &[u8]) -> bool {
    let (l0, l1) = (line.as_ptr() as usize, line.as_ptr() as usize + line.len());
    let (p0, p1) = (part.as_ptr() as usize, part.as_ptr() as usize + part.len());
    // An empty slice may point anywhere (e.g. a static `&[]`).
    part.is_empty() || (l0 <= p0 && p1 <= l1)
}

fn check(line: &[u8], p: &ParsedLine<'_>) {
    assert!(
        within(line, p.message),
        "message is not a subslice of the line"
    );
    assert!(within(line, p.tail), "tail is not a subslice of the line");
    assert_eq!(p.message.is_empty(), line.is_empty(), "empty message");
    let mut buf = Vec::new();
    let full = p.full_message(&mut buf).to_vec();
    if p.tail.is_empty() {
        assert_eq!(full, p.message);
    } else {
        let mut expected = p.message.to_vec();
        expected.push(b' ');
        expected.extend_from_slice(p.tail);
        assert_eq!(full, expected);
    }
}

/// Everything but the message's position.
fn key<'a>(p: &ParsedLine<'a>) -> impl PartialEq + std::fmt::Debug + 'a {
    (p.format, p.level, p.ts_ms, p.message, p.tail)
}

fuzz_target!(|data: &[u8]| {
    let mut crlf = Vec::new();
    for (k, line) in data.split(|&b| b == b'\n').enumerate() {
        let p = parse_line(line, 2024);
        check(line, &p);
        assert_eq!(key(&p), key(&parse_line(line, 2024)), "not deterministic");
        if !line.trim_ascii().is_empty() {
            crlf.clear();
            crlf.extend_from_slice(line);
            crlf.push(b'\r');
            let q = parse_line(&crlf, 2024);
            check(&crlf, &q);
            assert_eq!(key(&p), key(&q), "a trailing CR changed the parse");
        }
        if k == 0 {
            for year in [i32::MIN, -1, 0, 1970, 9999, i32::MAX] {
                check(line, &parse_line(line, year));
            }
        }
    }
});
