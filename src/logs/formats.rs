//! Per-line format detection: one pass of hand-written byte scanning, no allocation, no
//! panics on any input. The first byte picks the candidate formats; each candidate checks a
//! fixed-size shape before it commits, so an unrecognised line costs a few comparisons plus the
//! generic level search over its first tokens.

use super::model::{Format, Level};
use std::cell::Cell;

/// What one line says.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine<'a> {
    pub format: Format,
    pub level: Level,
    /// UTC epoch milliseconds, when the line carries a timestamp that parses.
    pub ts_ms: Option<i64>,
    /// The message part: after timestamp, level, logger/thread/pid prefixes; for JSON the
    /// raw bytes of the `msg`/`message`/`error`/`err` string value (escapes left as they are);
    /// for access logs the request line without its quotes (`GET /api/users/123 HTTP/1.1`)
    /// so templates group by route shape; for logfmt the `msg=` value (quotes removed).
    /// Never empty unless the line is.
    pub message: &'a [u8],
    /// Words that belong after the message in its template but are not next to it in the line
    /// (the status of an access log line); usually empty.
    pub tail: &'a [u8],
}

impl<'a> ParsedLine<'a> {
    #[inline]
    fn new(format: Format, level: Level, ts_ms: Option<i64>, message: &'a [u8]) -> Self {
        ParsedLine {
            format,
            level,
            ts_ms,
            message,
            tail: &[],
        }
    }

    /// The message and its tail as one string of words, using `buf` when there is a tail.
    pub fn full_message<'b>(&self, buf: &'b mut Vec<u8>) -> &'b [u8]
    where
        'a: 'b,
    {
        if self.tail.is_empty() {
            return self.message;
        }
        buf.clear();
        buf.extend_from_slice(self.message);
        buf.push(b' ');
        buf.extend_from_slice(self.tail);
        buf
    }
}

/// Parses one line (no trailing newline; may contain any bytes incl. invalid UTF-8 and NUL).
/// `year` is used for formats without a year (RFC 3164, klog).
pub fn parse_line(raw: &[u8], year: i32) -> ParsedLine<'_> {
    let line = trim_eol(raw);
    let body = line.trim_ascii();
    let mut parsed = dispatch(body, year);
    let message = parsed.message.trim_ascii();
    parsed.message = if !message.is_empty() {
        message
    } else if !body.is_empty() {
        body
    } else {
        raw
    };
    parsed
}

fn dispatch(s: &[u8], year: i32) -> ParsedLine<'_> {
    let Some(&b0) = s.first() else {
        return ParsedLine::new(Format::Generic, Level::Unknown, None, s);
    };
    let found = match b0 {
        b'<' => syslog_with_pri(s, year),
        b'{' => json(s),
        b'[' => bracketed(s),
        b'0'..=b'9' => digit_first(s).or_else(|| access_log(s)),
        b'I' | b'W' | b'E' | b'F' => klog(s, year),
        _ => None,
    };
    if let Some(p) = found {
        return p;
    }
    let found = if b0.is_ascii_alphabetic() {
        rfc3164_bare(s, year)
            .or_else(|| python_colon(s))
            .or_else(|| logfmt(s, None))
            .or_else(|| access_log(s))
    } else if b0 == b':' {
        access_log(s)
    } else {
        None
    };
    found.unwrap_or_else(|| generic(s, None))
}

// ---------------------------------------------------------------------------------------------
// Small slice helpers (all total: out-of-range positions give empty slices, never a panic).

#[inline]
fn from(s: &[u8], i: usize) -> &[u8] {
    s.get(i..).unwrap_or(&[])
}

#[inline]
fn trim_eol(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n'] = s {
        s = rest;
    }
    s
}

#[inline]
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[inline]
fn skip_blank(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

/// The token up to the first space/tab, and the rest starting at that space/tab.
#[inline]
fn split_ws_token(s: &[u8]) -> (&[u8], &[u8]) {
    let p = s.iter().position(|&b| is_blank(b)).unwrap_or(s.len());
    s.split_at_checked(p).unwrap_or((s, &[]))
}

#[inline]
fn all_digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

/// Exactly `n` (≤ 9) ASCII digits at `at`.
#[inline]
fn digits_n(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let d = s.get(at..)?.get(..n)?;
    let mut v = 0u32;
    for &b in d {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Some(v)
}

#[inline]
fn byte_is(s: &[u8], at: usize, b: u8) -> bool {
    s.get(at) == Some(&b)
}

/// A run of digits at `at` as fractional seconds: (milliseconds, index after the run).
#[inline]
fn frac_ms(s: &[u8], mut at: usize) -> (u32, usize) {
    let mut ms = 0u32;
    let mut taken = 0u32;
    while let Some(&b) = s.get(at) {
        if !b.is_ascii_digit() {
            break;
        }
        if taken < 3 {
            ms = ms * 10 + u32::from(b - b'0');
            taken += 1;
        }
        at += 1;
    }
    while taken < 3 {
        ms *= 10;
        taken += 1;
    }
    (ms, at)
}

// ---------------------------------------------------------------------------------------------
// Timestamps.

fn is_leap(y: i64) -> bool {
    y.rem_euclid(4) == 0 && (y.rem_euclid(100) != 0 || y.rem_euclid(400) == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A wall-clock time with its fields still unchecked.
#[derive(Clone, Copy)]
struct Clock {
    h: u32,
    mi: u32,
    s: u32,
    ms: u32,
    /// Bytes consumed.
    len: usize,
}

/// Two ASCII digits as a number.
#[inline]
fn two_digits(a: u8, b: u8) -> Option<u32> {
    let (x, y) = (a.wrapping_sub(b'0'), b.wrapping_sub(b'0'));
    (x < 10 && y < 10).then_some(u32::from(x) * 10 + u32::from(y))
}

/// `HH:MM:SS[.frac|,frac]` at `at`. The fixed part is read as one 8-byte array (one bounds
/// check instead of one per digit).
#[inline]
fn parse_clock(s: &[u8], at: usize) -> Option<Clock> {
    let c: &[u8; 8] = s.get(at..)?.get(..8)?.try_into().ok()?;
    if c[2] != b':' || c[5] != b':' {
        return None;
    }
    let h = two_digits(c[0], c[1])?;
    let mi = two_digits(c[3], c[4])?;
    let sec = two_digits(c[6], c[7])?;
    let (ms, i, _) = fraction(s, at + 8);
    Some(Clock {
        h,
        mi,
        s: sec,
        ms,
        len: i - at,
    })
}

/// UTC milliseconds of a local date-time at `off_min` minutes east of UTC; `None` when a
/// field is out of range (month 13, Feb 30, hour 25, …) or the result overflows.
fn civil_ms(y: i64, mo: u32, d: u32, c: &Clock, off_min: i32) -> Option<i64> {
    if !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y, mo)
        || c.h > 23
        || c.mi > 59
        || c.s > 60
    {
        return None;
    }
    let secs = i64::from(c.h * 3600 + c.mi * 60 + c.s) - i64::from(off_min) * 60;
    days_from_civil(y, mo, d)
        .checked_mul(86_400_000)?
        .checked_add(secs * 1000 + i64::from(c.ms))
}

/// [`civil_ms`] up to the whole second and at UTC: what a timestamp memo keeps. Adding
/// `ms - offset × 60 000` with `checked_add` gives what `civil_ms` gives: with a four-digit
/// year nothing comes near overflowing, and the shapes that take the configured year (any
/// `i32`) have no offset, so the part added is ≥ 0 and both overflow alike.
fn civil_base(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60
    {
        return None;
    }
    days_from_civil(y, mo, d)
        .checked_mul(86_400_000)?
        .checked_add(i64::from(h * 3600 + mi * 60 + s) * 1000)
}

/// `[.frac|,frac]` at `at`: (milliseconds, index after it, whether the separator was `,`, as
/// Python and log4j's ISO8601 write it).
#[inline]
fn fraction(s: &[u8], at: usize) -> (u32, usize, bool) {
    if let Some(&c @ (b'.' | b',')) = s.get(at) {
        if s.get(at + 1).is_some_and(u8::is_ascii_digit) {
            let (ms, i) = frac_ms(s, at + 1);
            return (ms, i, c == b',');
        }
    }
    (0, at, false)
}

// Timestamps of neighbouring lines nearly always fall in the same second: each shape keeps the
// bytes up to the whole second of the last one it read, with the value they gave, so a line
// in the same second costs a byte comparison instead of reading and checking the fields and
// the calendar arithmetic. Per thread (worker threads analyse separate blocks) and exact: the
// memo is consulted only after the fixed separators matched, and it is keyed by all bytes the
// value depends on (and the configured year for shapes without one).
thread_local! {
    static ISO_SECOND: Cell<([u8; 19], Option<i64>)> = const { Cell::new(([0; 19], None)) };
    static ACCESS_SECOND: Cell<([u8; 20], Option<i64>)> = const { Cell::new(([0; 20], None)) };
    static BSD_SECOND: Cell<([u8; 15], i32, Option<i64>)> =
        const { Cell::new(([0; 15], 0, None)) };
}

/// `Z`, `±HH:MM`, `±HHMM`, `±HH` at `at`: (offset in minutes, or `None` when out of range;
/// bytes consumed). No zone consumes nothing and means UTC.
fn parse_zone(s: &[u8], at: usize) -> (Option<i32>, usize) {
    match s.get(at) {
        Some(b'Z' | b'z') => (Some(0), 1),
        Some(&sign @ (b'+' | b'-')) => {
            let Some(hh) = digits_n(s, at + 1, 2) else {
                return (Some(0), 0);
            };
            let (mm, len) = if byte_is(s, at + 3, b':') {
                match digits_n(s, at + 4, 2) {
                    Some(m) => (m, 6),
                    None => (0, 3),
                }
            } else if let Some(m) = digits_n(s, at + 3, 2) {
                (m, 5)
            } else {
                (0, 3)
            };
            if hh > 23 || mm > 59 {
                return (None, len);
            }
            // hh ≤ 23 and mm ≤ 59, so this fits easily.
            let off = (hh * 60 + mm) as i32;
            (Some(if sign == b'-' { -off } else { off }), len)
        }
        _ => (Some(0), 0),
    }
}

/// A recognised date-time shape; `ms` is `None` when its fields are impossible.
struct Dt {
    ms: Option<i64>,
    len: usize,
    comma: bool,
}

/// `YYYY<sep>MM<sep>DD[T ]HH:MM:SS[.frac|,frac][Z|±HH:MM|±HHMM]` (no zone = UTC).
#[inline]
fn parse_datetime(s: &[u8], sep: u8) -> Option<Dt> {
    let h: &[u8; 19] = s.get(..19)?.try_into().ok()?;
    if h[4] != sep
        || h[7] != sep
        || !matches!(h[10], b'T' | b't' | b' ')
        || h[13] != b':'
        || h[16] != b':'
    {
        return None;
    }
    let memo = ISO_SECOND.with(|m| {
        let (key, base) = m.get();
        (key == *h).then_some(base)
    });
    let base = match memo {
        Some(base) => base,
        None => {
            let y = two_digits(h[0], h[1])? * 100 + two_digits(h[2], h[3])?;
            let mo = two_digits(h[5], h[6])?;
            let d = two_digits(h[8], h[9])?;
            let hh = two_digits(h[11], h[12])?;
            let mi = two_digits(h[14], h[15])?;
            let sec = two_digits(h[17], h[18])?;
            let base = civil_base(i64::from(y), mo, d, hh, mi, sec);
            ISO_SECOND.with(|m| m.set((*h, base)));
            base
        }
    };
    let (ms, i, comma) = fraction(s, 19);
    let (off, zl) = parse_zone(s, i);
    let ms = off.and_then(|o| base?.checked_add(i64::from(ms) - i64::from(o) * 60_000));
    Some(Dt {
        ms,
        len: i + zl,
        comma,
    })
}

/// A three-letter month name in any case. `| 0x20` lowercases ASCII letters and maps no other
/// byte to a lowercase letter, so only letters can match.
#[inline]
fn month(m: &[u8]) -> Option<u32> {
    let [a, b, c] = m else {
        return None;
    };
    let k = u32::from_be_bytes([0, a | 0x20, b | 0x20, c | 0x20]);
    const fn w(n: &[u8; 3]) -> u32 {
        u32::from_be_bytes([0, n[0], n[1], n[2]])
    }
    Some(match k {
        x if x == w(b"jan") => 1,
        x if x == w(b"feb") => 2,
        x if x == w(b"mar") => 3,
        x if x == w(b"apr") => 4,
        x if x == w(b"may") => 5,
        x if x == w(b"jun") => 6,
        x if x == w(b"jul") => 7,
        x if x == w(b"aug") => 8,
        x if x == w(b"sep") => 9,
        x if x == w(b"oct") => 10,
        x if x == w(b"nov") => 11,
        x if x == w(b"dec") => 12,
        _ => return None,
    })
}

/// A day of month at `at`: `dd`, ` d` (space padded) or `d` followed by a space.
fn parse_day(s: &[u8], at: usize) -> Option<(u32, usize)> {
    if byte_is(s, at, b' ') {
        return Some((digits_n(s, at + 1, 1)?, at + 2));
    }
    if let Some(d) = digits_n(s, at, 2) {
        return Some((d, at + 2));
    }
    Some((digits_n(s, at, 1)?, at + 1))
}

/// RFC 3164 `Mmm dd HH:MM:SS[.frac]` with the given year: (ms, bytes consumed).
fn parse_bsd_ts(s: &[u8], year: i32) -> Option<(Option<i64>, usize)> {
    // The usual fixed-width form (`Mmm dd` or `Mmm  d`) through the memo; other forms, and
    // anything that does not parse here, take the general path below.
    if let Some(h) = s.get(..15).and_then(|h| <&[u8; 15]>::try_from(h).ok()) {
        if h[3] == b' ' && h[6] == b' ' && h[9] == b':' && h[12] == b':' {
            let memo = BSD_SECOND.with(|m| {
                let (key, y, base) = m.get();
                (key == *h && y == year).then_some(base)
            });
            let base = memo.or_else(|| {
                let mo = month(h.get(..3)?)?;
                let d = if h[4] == b' ' {
                    h[5].is_ascii_digit()
                        .then_some(u32::from(h[5].wrapping_sub(b'0')))?
                } else {
                    two_digits(h[4], h[5])?
                };
                let hh = two_digits(h[7], h[8])?;
                let mi = two_digits(h[10], h[11])?;
                let sec = two_digits(h[13], h[14])?;
                let base = civil_base(i64::from(year), mo, d, hh, mi, sec);
                BSD_SECOND.with(|m| m.set((*h, year, base)));
                Some(base)
            });
            if let Some(base) = base {
                let (ms, i, _) = fraction(s, 15);
                return Some((base.and_then(|b| b.checked_add(i64::from(ms))), i));
            }
        }
    }
    let mo = month(s.get(..3)?)?;
    if !byte_is(s, 3, b' ') {
        return None;
    }
    let (d, i) = parse_day(s, 4)?;
    if !byte_is(s, i, b' ') {
        return None;
    }
    let c = parse_clock(s, i + 1)?;
    Some((civil_ms(i64::from(year), mo, d, &c, 0), i + 1 + c.len))
}

/// Apache `Www Mmm dd HH:MM:SS[.micro] YYYY`.
fn parse_apache_ts(s: &[u8]) -> Option<(Option<i64>, usize)> {
    if !s.get(..3)?.iter().all(u8::is_ascii_alphabetic) || !byte_is(s, 3, b' ') {
        return None;
    }
    let mo = month(s.get(4..7)?)?;
    if !byte_is(s, 7, b' ') {
        return None;
    }
    let (d, i) = parse_day(s, 8)?;
    if !byte_is(s, i, b' ') {
        return None;
    }
    let c = parse_clock(s, i + 1)?;
    let j = i + 1 + c.len;
    if !byte_is(s, j, b' ') {
        return None;
    }
    let y = digits_n(s, j + 1, 4)?;
    Some((civil_ms(i64::from(y), mo, d, &c, 0), j + 5))
}

/// Access log `dd/Mon/YYYY:HH:MM:SS[ ±HHMM]`.
#[inline]
fn parse_access_ts(s: &[u8]) -> Option<(Option<i64>, usize)> {
    let h: &[u8; 20] = s.get(..20)?.try_into().ok()?;
    if h[2] != b'/' || h[6] != b'/' || h[11] != b':' || h[14] != b':' || h[17] != b':' {
        return None;
    }
    let memo = ACCESS_SECOND.with(|m| {
        let (key, base) = m.get();
        (key == *h).then_some(base)
    });
    let base = match memo {
        Some(base) => base,
        None => {
            let d = two_digits(h[0], h[1])?;
            let mo = month(h.get(3..6)?)?;
            let y = two_digits(h[7], h[8])? * 100 + two_digits(h[9], h[10])?;
            let hh = two_digits(h[12], h[13])?;
            let mi = two_digits(h[15], h[16])?;
            let sec = two_digits(h[18], h[19])?;
            let base = civil_base(i64::from(y), mo, d, hh, mi, sec);
            ACCESS_SECOND.with(|m| m.set((*h, base)));
            base
        }
    };
    let (ms, mut i, _) = fraction(s, 20);
    let mut off = Some(0);
    if byte_is(s, i, b' ') && matches!(s.get(i + 1), Some(b'+' | b'-')) {
        let (o, zl) = parse_zone(s, i + 1);
        off = o;
        i += 1 + zl;
    }
    let ms = off.and_then(|o| base?.checked_add(i64::from(ms) - i64::from(o) * 60_000));
    Some((ms, i))
}

/// A number as epoch time: seconds (with optional fraction) below 1e11, else milliseconds,
/// microseconds or nanoseconds by magnitude. Negative, exponent or other forms: `None`.
fn parse_epoch(v: &[u8]) -> Option<i64> {
    let mut i = 0;
    let mut int: i64 = 0;
    while let Some(&b) = v.get(i) {
        if !b.is_ascii_digit() {
            break;
        }
        int = int.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let mut frac = 0;
    if byte_is(v, i, b'.') {
        (frac, i) = frac_ms(v, i + 1);
    }
    if i != v.len() {
        return None;
    }
    if int < 100_000_000_000 {
        int.checked_mul(1000)?.checked_add(i64::from(frac))
    } else if int < 100_000_000_000_000 {
        Some(int)
    } else if int < 100_000_000_000_000_000 {
        Some(int / 1000)
    } else {
        Some(int / 1_000_000)
    }
}

// ---------------------------------------------------------------------------------------------
// Levels.

const fn delim_table() -> [bool; 256] {
    let mut t = [false; 256];
    let d = b" \t[]()<>{}|,;\"'=";
    let mut k = 0;
    while k < d.len() {
        t[d[k] as usize] = true;
        k += 1;
    }
    t
}

/// Token delimiters for the generic level search: blanks, brackets, quotes, `|,;=`.
static GEN_DELIM: [bool; 256] = delim_table();

#[inline]
fn is_gen_delim(b: u8) -> bool {
    // A u8 always indexes a 256-entry table.
    GEN_DELIM[usize::from(b)]
}

/// A level word among the first `max_tokens` tokens (delimited by blanks, brackets, quotes,
/// `|,;=`; a trailing `:` is ignored): the level and the index just after its token.
fn find_level(s: &[u8], max_tokens: usize) -> Option<(Level, usize)> {
    let mut i = 0;
    for _ in 0..max_tokens {
        let rest = s.get(i..)?;
        let start = rest.iter().position(|&b| !is_gen_delim(b))?;
        let rest = rest.get(start..)?;
        let len = rest
            .iter()
            .position(|&b| is_gen_delim(b))
            .unwrap_or(rest.len());
        let mut tok = rest.get(..len)?;
        i += start + len;
        while let [head @ .., b':'] = tok {
            tok = head;
        }
        if let Some(level) = level_word(tok) {
            return Some((level, i));
        }
    }
    None
}

/// What follows a level token: skips `]`, `)`, `>`, `:`, `|`, blanks and a lone `-`.
fn after_level(s: &[u8], mut i: usize) -> &[u8] {
    loop {
        match s.get(i) {
            Some(b' ' | b'\t' | b']' | b')' | b'>' | b':' | b'|') => i += 1,
            Some(b'-') if s.get(i + 1).is_none_or(|&b| is_blank(b)) => i += 1,
            _ => return from(s, i),
        }
    }
}

/// [`Level::from_word`] behind a cheap filter on (length, first, last byte): most tokens
/// in a line are not level words and are rejected without the full comparison.
#[inline]
fn level_word(w: &[u8]) -> Option<Level> {
    let (Some(&first), Some(&last)) = (w.first(), w.last()) else {
        return None;
    };
    // Lowercases ASCII letters; other bytes may map anywhere, which only lets more through.
    let (f, l) = (first | 0x20, last | 0x20);
    let maybe = match w.len() {
        3 => matches!((f, l), (b'd', b'g') | (b'e', b'r')),
        4 => matches!(
            (f, l),
            (b'f', b'e') | (b'i', b'o') | (b'w', b'n') | (b'c', b't')
        ),
        5 => matches!(
            (f, l),
            (b't', b'e')
                | (b'f', b'r')
                | (b'd', b'g')
                | (b'e', b'r')
                | (b'f', b'l')
                | (b'e', b'g')
                | (b'a', b't')
                | (b'p', b'c')
        ),
        6 => matches!((f, l), (b'f', b't') | (b'n', b'e') | (b's', b'e')),
        7 => matches!((f, l), (b'v', b'e') | (b'w', b'g')),
        8 => (f, l) == (b'c', b'l'),
        9 => (f, l) == (b'e', b'y'),
        11 => (f, l) == (b'i', b'n'),
        13 => (f, l) == (b'i', b'l'),
        _ => false,
    };
    if maybe {
        Level::from_word(w)
    } else {
        None
    }
}

/// A level word that may carry a numeric suffix (Apache `trace1`…`trace8`).
fn level_word_loose(w: &[u8]) -> Option<Level> {
    level_word(w).or_else(|| {
        let head = w.get(..5)?;
        (head.eq_ignore_ascii_case(b"trace") && all_digits(from(w, 5))).then_some(Level::Trace)
    })
}

/// A numeric level: syslog severity 0–7, or bunyan/pino 10 trace … 60 fatal.
fn numeric_level(v: &[u8]) -> Option<Level> {
    if v.len() > 3 || !all_digits(v) {
        return None;
    }
    let n = v.iter().fold(0u32, |a, &b| a * 10 + u32::from(b - b'0'));
    match n {
        0..=7 => Some(Level::from_syslog_severity(n as u8)),
        10..=19 => Some(Level::Trace),
        20..=29 => Some(Level::Debug),
        30..=39 => Some(Level::Info),
        40..=49 => Some(Level::Warn),
        50..=59 => Some(Level::Error),
        60..=69 => Some(Level::Critical),
        _ => None,
    }
}

fn generic(r: &[u8], ts: Option<i64>) -> ParsedLine<'_> {
    match find_level(r, 6) {
        Some((level, end)) => ParsedLine::new(Format::Generic, level, ts, after_level(r, end)),
        None => ParsedLine::new(Format::Generic, Level::Unknown, ts, r),
    }
}

// ---------------------------------------------------------------------------------------------
// Syslog.

fn syslog_with_pri(s: &[u8], year: i32) -> Option<ParsedLine<'_>> {
    let close = s.iter().take(5).position(|&b| b == b'>')?;
    let digits = s.get(1..close)?;
    if !all_digits(digits) {
        return None;
    }
    let pri = digits
        .iter()
        .fold(0u32, |a, &b| a * 10 + u32::from(b - b'0'));
    if pri > 191 {
        return None;
    }
    let level = Level::from_syslog_severity((pri % 8) as u8);
    let rest = from(s, close + 1);
    let (version, after_version) = split_ws_token(rest);
    if version.len() <= 2
        && all_digits(version)
        && version.first() != Some(&b'0')
        && after_version.first() == Some(&b' ')
    {
        return Some(rfc5424(from(after_version, 1), level));
    }
    if let Some((ts, n)) = parse_bsd_ts(rest, year) {
        return Some(rfc3164_rest(rest, ts, n, Some(level)));
    }
    if let Some(dt) = parse_datetime(rest, b'-') {
        return Some(rfc3164_rest(rest, dt.ms, dt.len, Some(level)));
    }
    let (_, msg) = leading_level(strip_host_tag(rest, false));
    Some(ParsedLine::new(Format::SyslogRfc3164, level, None, msg))
}

fn rfc3164_bare(s: &[u8], year: i32) -> Option<ParsedLine<'_>> {
    let (ts, n) = parse_bsd_ts(s, year)?;
    Some(rfc3164_rest(s, ts, n, None))
}

fn rfc3164_rest(s: &[u8], ts: Option<i64>, n: usize, level: Option<Level>) -> ParsedLine<'_> {
    let (lead, msg) = leading_level(strip_host_tag(skip_blank(from(s, n)), true));
    let level = level
        .or(lead)
        .or_else(|| find_level(msg, 3).map(|(l, _)| l))
        .unwrap_or(Level::Unknown);
    ParsedLine::new(Format::SyslogRfc3164, level, ts, msg)
}

/// A message that opens with a level word: the level; and when the word is a label
/// (`error: …`, `<warning> …`, `[crit] …`, or upper case `ERROR …`, as many daemons write
/// after the syslog tag) the message without it — and without a `logger:` that follows an
/// upper-case level (`ERROR app.db: …`) — so one error is one template whatever label it was
/// logged with. A word that is part of the sentence (`Error reading …`) stays.
fn leading_level(msg: &[u8]) -> (Option<Level>, &[u8]) {
    let Some((level, end)) = find_level(msg, 1) else {
        return (None, msg);
    };
    let colon = end > 0 && msg.get(end - 1) == Some(&b':');
    if colon || matches!(msg.get(end), Some(b']' | b'>' | b')')) {
        return (Some(level), after_level(msg, end));
    }
    let word = msg.get(..end).unwrap_or(msg).trim_ascii_start();
    if !word.iter().all(|b| b.is_ascii_uppercase()) {
        return (Some(level), msg);
    }
    let rest = after_level(msg, end);
    let (tok, tail) = split_ws_token(rest);
    let logger =
        is_tag(tok)
            && tok.len() <= 64
            && tok.iter().rev().skip(1).all(|&b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b'$')
            });
    (Some(level), if logger { skip_blank(tail) } else { rest })
}

#[inline]
fn is_tag(t: &[u8]) -> bool {
    t.len() >= 2 && t.len() <= 96 && t.last() == Some(&b':')
}

/// Drops `host tag[pid]:` (or just `tag:`; the host only when a timestamp preceded it).
fn strip_host_tag(r: &[u8], had_ts: bool) -> &[u8] {
    let (t1, rest1) = split_ws_token(r);
    if is_tag(t1) {
        return skip_blank(rest1);
    }
    if !had_ts {
        return r;
    }
    let r2 = skip_blank(rest1);
    let (t2, rest2) = split_ws_token(r2);
    if is_tag(t2) {
        return skip_blank(rest2);
    }
    r2
}

/// After `<PRI>1 `: `TIMESTAMP HOST APP PROCID MSGID SD [MSG]`.
fn rfc5424(s: &[u8], level: Level) -> ParsedLine<'_> {
    let (ts_tok, mut r) = split_ws_token(s);
    let ts = if ts_tok == b"-" {
        None
    } else {
        parse_datetime(ts_tok, b'-').and_then(|dt| dt.ms)
    };
    for _ in 0..4 {
        r = split_ws_token(skip_blank(r)).1;
    }
    let r = skip_sd(skip_blank(r));
    let r = r.strip_prefix(b" ").unwrap_or(r);
    let msg = r.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(r);
    // PRI already gave the level; a level word opening the message is not part of it.
    let (_, msg) = leading_level(msg);
    ParsedLine::new(Format::SyslogRfc5424, level, ts, msg)
}

/// Skips RFC 5424 structured data: `-` or `[id k="v\]" …]` groups.
fn skip_sd(r: &[u8]) -> &[u8] {
    if r.first() == Some(&b'-') {
        return from(r, 1);
    }
    let mut i = 0;
    while byte_is(r, i, b'[') {
        i += 1;
        let mut in_quotes = false;
        loop {
            match r.get(i) {
                None => return &[],
                Some(b'\\') if in_quotes => i += 2,
                Some(b'"') => {
                    in_quotes = !in_quotes;
                    i += 1;
                }
                Some(b']') if !in_quotes => {
                    i += 1;
                    break;
                }
                Some(_) => i += 1,
            }
        }
    }
    from(r, i)
}

// ---------------------------------------------------------------------------------------------
// Lines that start with a date: Python, Java, nginx error, generic with a timestamp.

fn digit_first(s: &[u8]) -> Option<ParsedLine<'_>> {
    match s.get(4) {
        Some(b'-') => {
            let dt = parse_datetime(s, b'-')?;
            Some(after_ts(from(s, dt.len), dt.ms, dt.comma))
        }
        Some(b'/') => {
            let dt = parse_datetime(s, b'/')?;
            Some(nginx_or_generic(from(s, dt.len), dt.ms))
        }
        _ => None,
    }
}

/// What follows an ISO-like timestamp.
fn after_ts(rest: &[u8], ts: Option<i64>, comma: bool) -> ParsedLine<'_> {
    let r = skip_blank(rest);
    if let Some(tail) = r.strip_prefix(b"- ") {
        if let Some((level, msg)) = python_dash(tail) {
            return ParsedLine::new(Format::Python, level, ts, msg);
        }
    }
    if r.first() == Some(&b'[') {
        if let Some(p) = thread_first(r, ts) {
            return p;
        }
    }
    let (tok, after) = split_ws_token(r);
    if let Some(level) = level_word(tok) {
        return level_first(level, skip_blank(after), ts, comma);
    }
    if tok.contains(&b'=') {
        if let Some(p) = logfmt(r, ts) {
            return p;
        }
    }
    generic(r, ts)
}

/// Splits at the first ` - `; without one the whole input is the field.
fn split_dash(s: &[u8]) -> (&[u8], &[u8]) {
    match s.windows(3).position(|w| w == b" - ") {
        Some(p) => (s.get(..p).unwrap_or(s), from(s, p + 3)),
        None => (s, &[]),
    }
}

/// Python `name - LEVEL - msg` or `LEVEL - msg` (after the leading `- `).
fn python_dash(tail: &[u8]) -> Option<(Level, &[u8])> {
    let (f1, r1) = split_dash(tail);
    if let Some(level) = level_word(f1.trim_ascii()) {
        return Some((level, r1));
    }
    let (f2, r2) = split_dash(r1);
    level_word(f2.trim_ascii()).map(|level| (level, r2))
}

/// `[thread] LEVEL logger - msg` (Java), or a bracketed level `[ERROR] msg` (generic).
fn thread_first(r: &[u8], ts: Option<i64>) -> Option<ParsedLine<'_>> {
    let close = r.iter().position(|&b| b == b']')?;
    let inner = r.get(1..close)?;
    let after = skip_blank(from(r, close + 1));
    if let Some(level) = level_word(inner.trim_ascii()) {
        return Some(ParsedLine::new(Format::Generic, level, ts, after));
    }
    let (tok, rest) = split_ws_token(after);
    let level = level_word(tok)?;
    Some(ParsedLine::new(
        Format::Java,
        level,
        ts,
        after_logger(skip_blank(rest)).0,
    ))
}

/// After a level word that follows the timestamp.
fn level_first(level: Level, after: &[u8], ts: Option<i64>, comma: bool) -> ParsedLine<'_> {
    let (t1, r1) = split_ws_token(after);
    // Spring Boot: `PID --- [thread] logger : msg` (3.x: `--- [app] [thread] …`).
    if all_digits(t1) {
        if let Some(r2) = skip_blank(r1).strip_prefix(b"---") {
            let msg = after_logger(skip_brackets(skip_blank(r2))).0;
            return ParsedLine::new(Format::Java, level, ts, msg);
        }
    }
    if after.first() == Some(&b'[') {
        let msg = after_logger(skip_brackets(after)).0;
        return ParsedLine::new(Format::Java, level, ts, msg);
    }
    if comma && is_tag(t1) {
        return ParsedLine::new(Format::Python, level, ts, skip_blank(r1));
    }
    let (msg, had_logger) = after_logger(after);
    if had_logger {
        return ParsedLine::new(Format::Java, level, ts, msg);
    }
    let format = if comma {
        Format::Python
    } else {
        Format::Generic
    };
    ParsedLine::new(format, level, ts, after)
}

/// Skips `[…]` groups and the blanks after them.
fn skip_brackets(mut s: &[u8]) -> &[u8] {
    while s.first() == Some(&b'[') {
        match s.iter().position(|&b| b == b']') {
            Some(p) => s = skip_blank(from(s, p + 1)),
            None => return s,
        }
    }
    s
}

/// `logger - msg`, `logger : msg`, `Logger: msg` → (`msg`, true); otherwise (input, false).
fn after_logger(s: &[u8]) -> (&[u8], bool) {
    let (tok, rest) = split_ws_token(s);
    if tok.is_empty() {
        return (s, false);
    }
    if is_tag(tok) {
        return (skip_blank(rest), true);
    }
    let rest = skip_blank(rest);
    if let [b'-' | b':', tail @ ..] = rest {
        if tail.first().is_none_or(|&b| is_blank(b)) {
            return (skip_blank(tail), true);
        }
    }
    (s, false)
}

/// nginx `2024/01/02 03:04:05 [error] 123#0: *1 msg`; otherwise generic.
fn nginx_or_generic(rest: &[u8], ts: Option<i64>) -> ParsedLine<'_> {
    let r = skip_blank(rest);
    if r.first() == Some(&b'[') {
        if let Some(close) = r.iter().take(16).position(|&b| b == b']') {
            if let Some(level) = r.get(1..close).and_then(level_word) {
                let m = skip_blank(from(r, close + 1));
                let m = strip_nginx_ids(m);
                return ParsedLine::new(Format::ApacheError, level, ts, m);
            }
        }
    }
    generic(r, ts)
}

/// Drops nginx's `PID#TID: ` and `*CONN ` prefixes.
fn strip_nginx_ids(mut m: &[u8]) -> &[u8] {
    let (tok, rest) = split_ws_token(m);
    if let Some(t) = tok.strip_suffix(b":") {
        if let Some(hash) = t.iter().position(|&b| b == b'#') {
            if all_digits(t.get(..hash).unwrap_or(&[])) && all_digits(from(t, hash + 1)) {
                m = skip_blank(rest);
            }
        }
    }
    let (tok, rest) = split_ws_token(m);
    if let Some(conn) = tok.strip_prefix(b"*") {
        if all_digits(conn) {
            m = skip_blank(rest);
        }
    }
    m
}

// ---------------------------------------------------------------------------------------------
// Lines that start with `[`: Apache error log, bracketed timestamps.

fn bracketed(s: &[u8]) -> Option<ParsedLine<'_>> {
    let inner = from(s, 1);
    if let Some((ts, n)) = parse_apache_ts(inner) {
        if byte_is(inner, n, b']') {
            return Some(apache_error(from(inner, n + 1), ts));
        }
    }
    let dt = parse_datetime(inner, b'-').or_else(|| parse_datetime(inner, b'/'))?;
    let after = from(inner, dt.len);
    let after = after.strip_prefix(b"]")?;
    Some(after_ts(after, dt.ms, dt.comma))
}

/// After Apache's `[timestamp]`: `[module:level] [pid N:tid M] [client IP:port] msg`.
fn apache_error(rest: &[u8], ts: Option<i64>) -> ParsedLine<'_> {
    let mut r = skip_blank(rest);
    let mut level = Level::Unknown;
    if r.first() == Some(&b'[') {
        if let Some(close) = r.iter().take(64).position(|&b| b == b']') {
            let inner = r.get(1..close).unwrap_or(&[]);
            let word = match inner.iter().rposition(|&b| b == b':') {
                Some(p) => from(inner, p + 1),
                None => inner,
            };
            if let Some(l) = level_word_loose(word) {
                level = l;
                r = skip_blank(from(r, close + 1));
            }
        }
    }
    while let Some(inner) = r.strip_prefix(b"[") {
        let known = inner.starts_with(b"pid ")
            || inner.starts_with(b"client ")
            || inner.starts_with(b"remote ");
        if !known {
            break;
        }
        match inner.iter().position(|&b| b == b']') {
            Some(p) => r = skip_blank(from(inner, p + 1)),
            None => break,
        }
    }
    ParsedLine::new(Format::ApacheError, level, ts, r)
}

// ---------------------------------------------------------------------------------------------
// Access logs.

/// `HOST IDENT USER [dd/Mon/yyyy:HH:MM:SS +zone] "METHOD PATH PROTO" STATUS SIZE …`
/// (a leading virtual host is tolerated).
fn access_log(s: &[u8]) -> Option<ParsedLine<'_>> {
    let mut i = 0;
    let mut tokens = 0;
    loop {
        let start = i;
        while let Some(&b) = s.get(i) {
            if b == b' ' {
                break;
            }
            if i - start > 255 {
                return None;
            }
            i += 1;
        }
        if i == start || !byte_is(s, i, b' ') {
            return None;
        }
        tokens += 1;
        i += 1;
        if byte_is(s, i, b'[') {
            if tokens >= 3 {
                break;
            }
            return None;
        }
        if tokens >= 4 {
            return None;
        }
    }
    let tail = from(s, i + 1);
    let (ts, n) = parse_access_ts(tail)?;
    let r = skip_blank(from(tail, n).strip_prefix(b"]")?);
    let Some(req) = r.strip_prefix(b"\"") else {
        return Some(ParsedLine::new(Format::AccessLog, Level::Unknown, ts, r));
    };
    let qend = quote_end(req);
    let after = skip_blank(from(req, qend + 1));
    let (status, _) = split_ws_token(after);
    let code = if status.len() == 3 {
        digits_n(status, 0, 3)
    } else {
        None
    };
    let Some(code) = code else {
        let msg = req.get(..qend).unwrap_or(req);
        return Some(ParsedLine::new(Format::AccessLog, Level::Unknown, ts, msg));
    };
    let msg = req.get(..qend).unwrap_or(req);
    // Three digits always fit a u16.
    let level = Level::from_http_status(code as u16);
    let mut parsed = ParsedLine::new(Format::AccessLog, level, ts, msg);
    parsed.tail = status;
    Some(parsed)
}

// ---------------------------------------------------------------------------------------------
// klog, Python `LEVEL:name:msg`, logfmt.

/// `E0102 03:04:05.678901   12345 file.go:42] msg`.
fn klog(s: &[u8], year: i32) -> Option<ParsedLine<'_>> {
    let level = match s.first()? {
        b'I' => Level::Info,
        b'W' => Level::Warn,
        b'E' => Level::Error,
        b'F' => Level::Critical,
        _ => return None,
    };
    let mo = digits_n(s, 1, 2)?;
    let d = digits_n(s, 3, 2)?;
    if !byte_is(s, 5, b' ') {
        return None;
    }
    let c = parse_clock(s, 6)?;
    let mut r = skip_blank(from(s, 6 + c.len));
    let (tok, rest) = split_ws_token(r);
    if all_digits(tok) {
        r = skip_blank(rest);
    }
    let (file, rest) = split_ws_token(r);
    if file.last() != Some(&b']') {
        return None;
    }
    let ts = civil_ms(i64::from(year), mo, d, &c, 0);
    Some(ParsedLine::new(Format::Klog, level, ts, skip_blank(rest)))
}

/// Python's default `basicConfig`: `LEVEL:name:msg`.
fn python_colon(s: &[u8]) -> Option<ParsedLine<'_>> {
    let colon = s.iter().take(14).position(|&b| b == b':')?;
    let word = s.get(..colon)?;
    if !word.iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    let level = level_word(word)?;
    let rest = from(s, colon + 1);
    if rest.first().is_none_or(|&b| is_blank(b)) {
        return None;
    }
    let end = rest.iter().position(|&b| b == b':' || is_blank(b))?;
    if !byte_is(rest, end, b':') {
        return None;
    }
    Some(ParsedLine::new(
        Format::Python,
        level,
        None,
        from(rest, end + 1),
    ))
}

#[inline]
fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'@')
}

/// `key=value` pairs (values bare or quoted with `\` escapes) with at least one of
/// `level`/`lvl`/`severity`, `msg`/`message`, `ts`/`time`/`timestamp`.
fn logfmt(s: &[u8], ts0: Option<i64>) -> Option<ParsedLine<'_>> {
    let (first, _) = split_ws_token(s);
    let eq = first.iter().position(|&b| b == b'=')?;
    if eq == 0 || !first.get(..eq)?.iter().all(|&b| is_key_byte(b)) {
        return None;
    }
    let mut level = None;
    let mut ts = None;
    let mut msg: Option<&[u8]> = None;
    let mut known = false;
    let mut rest = s;
    loop {
        rest = skip_blank(rest);
        if rest.is_empty() {
            break;
        }
        let klen = rest
            .iter()
            .position(|&b| is_blank(b) || b == b'=')
            .unwrap_or(rest.len());
        let (key, after) = rest.split_at_checked(klen).unwrap_or((rest, &[]));
        let Some(after) = after.strip_prefix(b"=") else {
            rest = after;
            continue;
        };
        let val;
        if let Some(q) = after.strip_prefix(b"\"") {
            let end = quote_end(q);
            val = q.get(..end).unwrap_or(q);
            rest = from(q, end + 1);
        } else {
            (val, rest) = split_ws_token(after);
        }
        match key_kind(key) {
            Key::Level => {
                known = true;
                if level.is_none() {
                    level = level_word(val).or_else(|| numeric_level(val));
                }
            }
            Key::Time => {
                known = true;
                if ts.is_none() {
                    ts = parse_datetime(val, b'-')
                        .and_then(|dt| dt.ms)
                        .or_else(|| parse_epoch(val));
                }
            }
            Key::Msg => {
                known = true;
                if msg.is_none() {
                    msg = Some(val);
                }
            }
            Key::Error | Key::Other => {}
        }
    }
    if !known {
        return None;
    }
    Some(ParsedLine::new(
        Format::Logfmt,
        level.unwrap_or(Level::Unknown),
        ts.or(ts0),
        msg.unwrap_or(s),
    ))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Level,
    Time,
    Msg,
    Error,
    Other,
}

/// Classifies a JSON or logfmt key, any case: a switch on the length first, so most keys
/// cost one comparison at most.
#[inline]
fn key_kind(k: &[u8]) -> Key {
    let is = |w: &[u8]| k.eq_ignore_ascii_case(w);
    match k.len() {
        2 if is(b"ts") => Key::Time,
        3 if is(b"lvl") => Key::Level,
        3 if is(b"msg") => Key::Msg,
        3 if is(b"err") => Key::Error,
        4 if is(b"time") => Key::Time,
        5 if is(b"level") => Key::Level,
        5 if is(b"error") => Key::Error,
        7 if is(b"message") => Key::Msg,
        8 if is(b"severity") || is(b"loglevel") => Key::Level,
        9 if is(b"log.level") || is(b"levelname") => Key::Level,
        9 if is(b"timestamp") => Key::Time,
        10 if is(b"@timestamp") => Key::Time,
        _ => Key::Other,
    }
}

// ---------------------------------------------------------------------------------------------
// JSON: a scanner over the top-level object only, so keys inside string values or nested
// objects never count.

#[inline]
fn skip_json_ws(s: &[u8], mut i: usize) -> usize {
    while matches!(s.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index of the first `"` not escaped by `\\`, or the length when there is none.
#[inline]
fn quote_end(q: &[u8]) -> usize {
    let mut j = 0;
    loop {
        match q.get(j..).and_then(|r| memchr::memchr2(b'"', b'\\', r)) {
            None => return q.len(),
            Some(p) => j += p,
        }
        if q.get(j) == Some(&b'"') {
            return j;
        }
        j += 2;
    }
}

/// The raw contents of the string starting at `s[i] == '"'` and the index after it.
#[inline]
fn json_str(s: &[u8], i: usize) -> Option<(&[u8], usize)> {
    let body = s.get(i + 1..)?;
    let mut j = 0;
    loop {
        j += memchr::memchr2(b'"', b'\\', body.get(j..)?)?;
        if body.get(j) == Some(&b'"') {
            return Some((body.get(..j)?, i + j + 2));
        }
        j += 2;
    }
}

/// The index after the object or array starting at `i`.
fn skip_json_nested(s: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match s.get(i)? {
            b'"' => {
                i = json_str(s, i)?.1;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
}

fn json(s: &[u8]) -> Option<ParsedLine<'_>> {
    let mut i = 1;
    let mut level = None;
    let mut ts = None;
    let mut msg: Option<&[u8]> = None;
    let mut msg_is_error = false;
    let mut pairs = 0usize;
    loop {
        i = skip_json_ws(s, i);
        if !byte_is(s, i, b'"') {
            break;
        }
        let Some((key, after)) = json_str(s, i) else {
            break;
        };
        i = skip_json_ws(s, after);
        if !byte_is(s, i, b':') {
            break;
        }
        i = skip_json_ws(s, i + 1);
        let (val, quoted) = match s.get(i) {
            Some(b'"') => {
                let Some((val, after)) = json_str(s, i) else {
                    break;
                };
                i = after;
                (val, true)
            }
            Some(b'{' | b'[') => {
                let Some(after) = skip_json_nested(s, i) else {
                    break;
                };
                i = after;
                (&[][..], false)
            }
            Some(_) => {
                let start = i;
                while s
                    .get(i)
                    .is_some_and(|&b| !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r'))
                {
                    i += 1;
                }
                (s.get(start..i).unwrap_or(&[]), false)
            }
            None => break,
        };
        pairs += 1;
        match key_kind(key) {
            Key::Level if level.is_none() => {
                level = if quoted {
                    level_word(val).or_else(|| numeric_level(val))
                } else {
                    numeric_level(val)
                };
            }
            Key::Time if ts.is_none() => {
                ts = if quoted {
                    parse_datetime(val, b'-')
                        .and_then(|dt| dt.ms)
                        .or_else(|| parse_epoch(val))
                } else {
                    parse_epoch(val)
                };
            }
            Key::Msg if quoted && !val.is_empty() && (msg.is_none() || msg_is_error) => {
                msg = Some(val);
                msg_is_error = false;
            }
            Key::Error if quoted && !val.is_empty() && msg.is_none() => {
                msg = Some(val);
                msg_is_error = true;
            }
            _ => {}
        }
        i = skip_json_ws(s, i);
        if !byte_is(s, i, b',') {
            break;
        }
        i += 1;
    }
    if pairs == 0 {
        return None;
    }
    Some(ParsedLine::new(
        Format::Json,
        level.unwrap_or(Level::Unknown),
        ts,
        msg.unwrap_or(s),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDate};
    use proptest::prelude::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, ms: u32) -> Option<i64> {
        Some(
            NaiveDate::from_ymd_opt(y, mo, d)
                .unwrap()
                .and_hms_milli_opt(h, mi, s, ms)
                .unwrap()
                .and_utc()
                .timestamp_millis(),
        )
    }

    fn rfc3339(s: &str) -> Option<i64> {
        Some(DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis())
    }

    #[track_caller]
    fn check(line: &str, format: Format, level: Level, ts: Option<i64>, msg: &str) {
        check_bytes(line.as_bytes(), format, level, ts, msg.as_bytes());
    }

    #[track_caller]
    fn check_bytes(line: &[u8], format: Format, level: Level, ts: Option<i64>, msg: &[u8]) {
        let p = parse_line(line, 2024);
        let mut buf = Vec::new();
        assert_eq!(
            (
                p.format,
                p.level,
                p.ts_ms,
                String::from_utf8_lossy(p.full_message(&mut buf))
            ),
            (format, level, ts, String::from_utf8_lossy(msg)),
            "line: {}",
            String::from_utf8_lossy(line)
        );
        assert_subslice(line, p.message);
    }

    #[track_caller]
    fn assert_subslice(line: &[u8], msg: &[u8]) {
        let (l0, l1) = (line.as_ptr() as usize, line.as_ptr() as usize + line.len());
        let (m0, m1) = (msg.as_ptr() as usize, msg.as_ptr() as usize + msg.len());
        assert!(
            l0 <= m0 && m1 <= l1,
            "message is not a subslice of the line"
        );
        assert!(!msg.is_empty() || line.is_empty(), "empty message");
    }

    #[test]
    fn syslog_rfc3164() {
        use Format::SyslogRfc3164 as F;
        check(
            "<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick on /dev/pts/8",
            F,
            Level::Critical,
            utc(2024, 10, 11, 22, 14, 15, 0),
            "'su root' failed for lonvick on /dev/pts/8",
        );
        check(
            "<13>Feb  5 17:32:18 10.0.0.99 myproc: Use the BFG!",
            F,
            Level::Notice,
            utc(2024, 2, 5, 17, 32, 18, 0),
            "Use the BFG!",
        );
        check(
            "Oct  1 06:25:01 web1 CRON[4321]: (root) CMD (command -v debian-sa1)",
            F,
            Level::Unknown,
            utc(2024, 10, 1, 6, 25, 1, 0),
            "(root) CMD (command -v debian-sa1)",
        );
        check(
            "Jan 12 06:30:00 host kernel: ERROR disk failure",
            F,
            Level::Error,
            utc(2024, 1, 12, 6, 30, 0, 0),
            "disk failure",
        );
        // A level label and the logger after it are not part of the message…
        check(
            "Jan 12 06:30:00 web-03 orders-svc[2314]: WARN app.cache: slow get",
            F,
            Level::Warn,
            utc(2024, 1, 12, 6, 30, 0, 0),
            "slow get",
        );
        check(
            "<11>Jan 12 06:30:00 web-03 sshd[24910]: error: no route",
            F,
            Level::Error,
            utc(2024, 1, 12, 6, 30, 0, 0),
            "no route",
        );
        // …but a level word that starts the sentence is.
        check(
            "Jan 12 06:30:00 host app: Error reading config",
            F,
            Level::Error,
            utc(2024, 1, 12, 6, 30, 0, 0),
            "Error reading config",
        );
        check(
            "Dec 31 23:59:59 host sshd[99]: warning: bad thing",
            F,
            Level::Warn,
            utc(2024, 12, 31, 23, 59, 59, 0),
            "bad thing",
        );
        check("<11>su: failed", F, Level::Error, None, "failed");
        check(
            "<30>2024-01-02T03:04:05Z host app[1]: started",
            F,
            Level::Info,
            rfc3339("2024-01-02T03:04:05Z"),
            "started",
        );
        check(
            "<191>Mar  3 01:02:03 h a: debug stuff",
            F,
            Level::Debug,
            utc(2024, 3, 3, 1, 2, 3, 0),
            "debug stuff",
        );
        // No year in the line: the given one decides whether Feb 29 exists.
        let p = parse_line(b"Feb 29 01:00:00 h app: x", 2023);
        assert_eq!((p.format, p.ts_ms), (F, None));
        let p = parse_line(b"Feb 29 01:00:00 h app: x", 2024);
        assert_eq!(p.ts_ms, utc(2024, 2, 29, 1, 0, 0, 0));
        assert_eq!(
            parse_line(b"Feb 29 01:00:00 h app: x", i32::MAX).ts_ms,
            None
        );
    }

    #[test]
    fn syslog_rfc5424() {
        use Format::SyslogRfc5424 as F;
        check(
            r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry..."#,
            F,
            Level::Notice,
            rfc3339("2003-10-11T22:14:15.003Z"),
            "An application event log entry...",
        );
        check(
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}'su root' failed",
            F,
            Level::Critical,
            rfc3339("2003-10-11T22:14:15.003Z"),
            "'su root' failed",
        );
        check(
            "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
            F,
            Level::Notice,
            rfc3339("2003-08-24T05:14:15.000003-07:00"),
            "%% It's time to make the do-nuts.",
        );
        check(
            r#"<165>1 2003-10-11T22:14:15.003Z host app - ID47 [a@1 x="y\]z" w="]"][b@2 q="a b"] hello world"#,
            F,
            Level::Notice,
            rfc3339("2003-10-11T22:14:15.003Z"),
            "hello world",
        );
        check(
            "<12>1 - host app 7 - [x@1 k=\"v\"] no timestamp",
            F,
            Level::Warn,
            None,
            "no timestamp",
        );
        // No MSG: the whole line stands in.
        check(
            "<14>1 - - - - - -",
            F,
            Level::Info,
            None,
            "<14>1 - - - - - -",
        );
        // Unterminated SD.
        check(
            "<14>1 - - - - - [x@1 k=\"v]",
            F,
            Level::Info,
            None,
            "<14>1 - - - - - [x@1 k=\"v]",
        );
    }

    #[test]
    fn apache_and_nginx_error() {
        use Format::ApacheError as F;
        check(
            "[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1234:tid 5678] [client 1.2.3.4:5678] AH00126: Invalid URI in request",
            F,
            Level::Error,
            utc(2000, 10, 11, 14, 32, 52, 123),
            "AH00126: Invalid URI in request",
        );
        check(
            "[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied by server configuration: /export/home",
            F,
            Level::Error,
            utc(2000, 10, 11, 14, 32, 52, 0),
            "client denied by server configuration: /export/home",
        );
        check(
            "[Sun Mar 03 01:02:03.000001 2024] [ssl:warn] [pid 99] AH01909: certificate does NOT include an ID",
            F,
            Level::Warn,
            utc(2024, 3, 3, 1, 2, 3, 0),
            "AH01909: certificate does NOT include an ID",
        );
        check(
            "[Mon Jan  1 00:00:00 2024] [authz_core:trace3] [pid 1] x",
            F,
            Level::Trace,
            utc(2024, 1, 1, 0, 0, 0, 0),
            "x",
        );
        check(
            "[Mon Jan 01 00:00:00 2024] [mpm_event:notice] [pid 1:tid 2] AH00489: Apache configured",
            F,
            Level::Notice,
            utc(2024, 1, 1, 0, 0, 0, 0),
            "AH00489: Apache configured",
        );
        check(
            r#"2024/01/02 03:04:05 [error] 1234#0: *56 open() "/usr/share/nginx/html/favicon.ico" failed (2: No such file or directory), client: 1.2.3.4"#,
            F,
            Level::Error,
            utc(2024, 1, 2, 3, 4, 5, 0),
            r#"open() "/usr/share/nginx/html/favicon.ico" failed (2: No such file or directory), client: 1.2.3.4"#,
        );
        check(
            r#"2024/01/02 03:04:05 [warn] 1#1: conflicting server name "x" on 0.0.0.0:80, ignored"#,
            F,
            Level::Warn,
            utc(2024, 1, 2, 3, 4, 5, 0),
            r#"conflicting server name "x" on 0.0.0.0:80, ignored"#,
        );
        check(
            "2024/01/02 03:04:05 [notice] 1#1: signal process started",
            F,
            Level::Notice,
            utc(2024, 1, 2, 3, 4, 5, 0),
            "signal process started",
        );
        check(
            "2024/01/02 03:04:05 [emerg] 7#7: bind() to 0.0.0.0:80 failed",
            F,
            Level::Critical,
            utc(2024, 1, 2, 3, 4, 5, 0),
            "bind() to 0.0.0.0:80 failed",
        );
    }

    #[test]
    fn access_log() {
        use Format::AccessLog as F;
        check(
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#,
            F,
            Level::Info,
            rfc3339("2000-10-10T13:55:36-07:00"),
            r#"GET /apache_pb.gif HTTP/1.0 200"#,
        );
        check(
            r#"10.1.2.3 - - [02/Jan/2024:03:04:05 +0000] "GET /api/users/123 HTTP/1.1" 500 12 "-" "curl/8.0""#,
            F,
            Level::Error,
            utc(2024, 1, 2, 3, 4, 5, 0),
            r#"GET /api/users/123 HTTP/1.1 500"#,
        );
        check(
            r#"::1 - - [02/Jan/2024:03:04:05 +0530] "POST /login HTTP/2.0" 404 0"#,
            F,
            Level::Warn,
            utc(2024, 1, 1, 21, 34, 5, 0),
            r#"POST /login HTTP/2.0 404"#,
        );
        check(
            r#"example.com 10.0.0.1 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 301 0"#,
            F,
            Level::Info,
            utc(2024, 1, 2, 3, 4, 5, 0),
            r#"GET / HTTP/1.1 301"#,
        );
        check(
            r#"web-1.internal - - [02/Jan/2024:03:04:05 +0000] "-" 400 0"#,
            F,
            Level::Warn,
            utc(2024, 1, 2, 3, 4, 5, 0),
            "- 400",
        );
        check(
            r#"1.2.3.4 - - [02/Jan/2024:03:04:05 +0000] "GET /q?x=\"y\" HTTP/1.1" 200 5"#,
            F,
            Level::Info,
            utc(2024, 1, 2, 3, 4, 5, 0),
            r#"GET /q?x=\"y\" HTTP/1.1 200"#,
        );
        // A status that is not three digits: no level, the request alone.
        check(
            r#"1.2.3.4 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 99999999999999999999 1"#,
            F,
            Level::Unknown,
            utc(2024, 1, 2, 3, 4, 5, 0),
            "GET / HTTP/1.1",
        );
        // An impossible date keeps the format but not the timestamp.
        check(
            r#"1.2.3.4 - - [32/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 503 1"#,
            F,
            Level::Error,
            None,
            r#"GET / HTTP/1.1 503"#,
        );
    }

    #[test]
    fn python() {
        use Format::Python as F;
        check(
            "2024-01-02 03:04:05,678 - myapp.db - ERROR - connection lost",
            F,
            Level::Error,
            utc(2024, 1, 2, 3, 4, 5, 678),
            "connection lost",
        );
        check(
            "2024-01-02 03:04:05,678 - WARNING - disk almost full",
            F,
            Level::Warn,
            utc(2024, 1, 2, 3, 4, 5, 678),
            "disk almost full",
        );
        check(
            "2024-01-02 03:04:05,678 INFO myapp.web: request served",
            F,
            Level::Info,
            utc(2024, 1, 2, 3, 4, 5, 678),
            "request served",
        );
        check(
            "2024-01-02 03:04:05,678 CRITICAL out of memory",
            F,
            Level::Critical,
            utc(2024, 1, 2, 3, 4, 5, 678),
            "out of memory",
        );
        check(
            "ERROR:root:something broke",
            F,
            Level::Error,
            None,
            "something broke",
        );
        check(
            "WARNING:urllib3.connectionpool:Retrying (Retry(total=2))",
            F,
            Level::Warn,
            None,
            "Retrying (Retry(total=2))",
        );
        check(
            "DEBUG:asyncio:Using selector: EpollSelector",
            F,
            Level::Debug,
            None,
            "Using selector: EpollSelector",
        );
    }

    #[test]
    fn java() {
        use Format::Java as F;
        check(
            "2024-01-02 03:04:05.678 [main] ERROR com.example.App - Startup failed",
            F,
            Level::Error,
            utc(2024, 1, 2, 3, 4, 5, 678),
            "Startup failed",
        );
        check(
            "2024-01-02T03:04:05.678Z  INFO 12345 --- [           main] o.s.b.w.embedded.tomcat.TomcatWebServer  : Tomcat started on port 8080",
            F,
            Level::Info,
            rfc3339("2024-01-02T03:04:05.678Z"),
            "Tomcat started on port 8080",
        );
        check(
            "2024-01-02T03:04:05.678+01:00  WARN 1 --- [myapp] [nio-8080-exec-1] c.e.Controller : slow request",
            F,
            Level::Warn,
            rfc3339("2024-01-02T03:04:05.678+01:00"),
            "slow request",
        );
        check(
            "2024-01-02 03:04:05,678 ERROR [http-nio-8080-exec-1] com.x.Y - boom",
            F,
            Level::Error,
            utc(2024, 1, 2, 3, 4, 5, 678),
            "boom",
        );
        check(
            "2024-01-02 03:04:05.678 [pool-1-thread-3] WARN  c.e.Job - retrying in 5s",
            F,
            Level::Warn,
            utc(2024, 1, 2, 3, 4, 5, 678),
            "retrying in 5s",
        );
        check(
            "2024-01-02 03:04:05,678 INFO com.x.Service - started",
            F,
            Level::Info,
            utc(2024, 1, 2, 3, 4, 5, 678),
            "started",
        );
        check(
            "2024-01-02 03:04:05.678 DEBUG [main] Foo:42 - value=3",
            F,
            Level::Debug,
            utc(2024, 1, 2, 3, 4, 5, 678),
            "value=3",
        );
        check(
            "2024-01-02 03:04:05.678-0500 [main] INFO App - zoned",
            F,
            Level::Info,
            rfc3339("2024-01-02T03:04:05.678-05:00"),
            "zoned",
        );
    }

    #[test]
    fn json_lines() {
        use Format::Json as F;
        check(
            r#"{"level":"error","ts":1704164645.123,"caller":"main.go:42","msg":"request failed","error":"timeout"}"#,
            F,
            Level::Error,
            Some(1_704_164_645_123),
            "request failed",
        );
        check(
            r#"{"time":"2024-01-02T03:04:05.678Z","LEVEL":"WARN","message":"disk \"almost\" full"}"#,
            F,
            Level::Warn,
            rfc3339("2024-01-02T03:04:05.678Z"),
            r#"disk \"almost\" full"#,
        );
        check(
            r#"{"name":"app","hostname":"h","pid":1,"level":50,"msg":"oops","time":"2024-01-02T03:04:05.678Z","v":0}"#,
            F,
            Level::Error,
            rfc3339("2024-01-02T03:04:05.678Z"),
            "oops",
        );
        check(
            r#"{"@timestamp":"2024-01-02T03:04:05+02:00","Severity":"INFO","error":"e1"}"#,
            F,
            Level::Info,
            rfc3339("2024-01-02T03:04:05+02:00"),
            "e1",
        );
        // A key name inside a string value, and inside a nested object, does not count.
        check(
            r#"{"msg":"the \"level\":\"error\" key","level":"debug"}"#,
            F,
            Level::Debug,
            None,
            r#"the \"level\":\"error\" key"#,
        );
        check(
            r#"{"ctx":{"level":"error","a":[1,"]}"]},"lvl":"info","msg":"x"}"#,
            F,
            Level::Info,
            None,
            "x",
        );
        check(
            r#"{ "msg" : "hello" , "level" : "fatal" , "timestamp" : 1704164645123 }"#,
            F,
            Level::Critical,
            Some(1_704_164_645_123),
            "hello",
        );
        check(
            r#"{"message":"no level here"}"#,
            F,
            Level::Unknown,
            None,
            "no level here",
        );
        check(
            r#"{"level":60,"time":1704164645,"msg":"dead"}"#,
            F,
            Level::Critical,
            Some(1_704_164_645_000),
            "dead",
        );
        check(
            r#"{"level":"info","err":"first","msg":"a","message":"b"}"#,
            F,
            Level::Info,
            None,
            "a",
        );
        check(
            r#"{"severity":3,"msg":"syslog numeric"}"#,
            F,
            Level::Error,
            None,
            "syslog numeric",
        );
        // Unterminated string: what came before still counts.
        let line = r#"{"level":"error","msg":"abc"#;
        check(line, F, Level::Error, None, line);
        let line = r#"{"level":"error","time":99999999999999999999999}"#;
        check(line, F, Level::Error, None, line);
    }

    #[test]
    fn logfmt_lines() {
        use Format::Logfmt as F;
        check(
            r#"time=2024-01-02T03:04:05Z level=error msg="failed to connect" err="dial tcp: timeout""#,
            F,
            Level::Error,
            rfc3339("2024-01-02T03:04:05Z"),
            "failed to connect",
        );
        check(
            "level=warn ts=2024-01-02T03:04:05.123+01:00 caller=x.go:1 msg=slow",
            F,
            Level::Warn,
            rfc3339("2024-01-02T03:04:05.123+01:00"),
            "slow",
        );
        check(
            r#"lvl=info msg="with \"escaped\" quotes" k=v"#,
            F,
            Level::Info,
            None,
            r#"with \"escaped\" quotes"#,
        );
        check(
            "severity=debug foo=bar",
            F,
            Level::Debug,
            None,
            "severity=debug foo=bar",
        );
        check(
            "ts=1704164645.5 level=\"info\" msg=hi",
            F,
            Level::Info,
            Some(1_704_164_645_500),
            "hi",
        );
        check(
            r#"2024-01-02T03:04:05Z level=info msg="prefixed""#,
            F,
            Level::Info,
            rfc3339("2024-01-02T03:04:05Z"),
            "prefixed",
        );
        check("level=", F, Level::Unknown, None, "level=");
        check("foo=bar level=", F, Level::Unknown, None, "foo=bar level=");
        check(
            "a=1 msg=\"unterminated",
            F,
            Level::Unknown,
            None,
            "unterminated",
        );
    }

    #[test]
    fn klog_lines() {
        use Format::Klog as F;
        check(
            "E0102 03:04:05.678901   12345 file.go:42] something failed",
            F,
            Level::Error,
            utc(2024, 1, 2, 3, 4, 5, 678),
            "something failed",
        );
        check(
            "I1231 23:59:59.000001       1 main.go:10] Starting",
            F,
            Level::Info,
            utc(2024, 12, 31, 23, 59, 59, 0),
            "Starting",
        );
        check(
            "W0615 12:00:00.5 7 x.go:1] warn msg",
            F,
            Level::Warn,
            utc(2024, 6, 15, 12, 0, 0, 500),
            "warn msg",
        );
        check(
            "F0102 03:04:05.678901 1 a.go:2] fatal",
            F,
            Level::Critical,
            utc(2024, 1, 2, 3, 4, 5, 678),
            "fatal",
        );
        check(
            "E1302 03:04:05.000000 1 a.go:2] bad date",
            F,
            Level::Error,
            None,
            "bad date",
        );
    }

    #[test]
    fn generic_lines() {
        use Format::Generic as F;
        check(
            "2024-01-02 03:04:05 WARN something",
            F,
            Level::Warn,
            utc(2024, 1, 2, 3, 4, 5, 0),
            "something",
        );
        check("[ERROR] x", F, Level::Error, None, "x");
        check("ERROR: x", F, Level::Error, None, "x");
        check("ERROR: x\r", F, Level::Error, None, "x");
        check(
            "1704164645 host ERROR disk full",
            F,
            Level::Error,
            None,
            "disk full",
        );
        check(
            "2024-01-02 03:04:05 [INFO] started",
            F,
            Level::Info,
            utc(2024, 1, 2, 3, 4, 5, 0),
            "started",
        );
        check(
            "[2024-01-02T03:04:05Z] ERROR in app: Exception on /",
            F,
            Level::Error,
            rfc3339("2024-01-02T03:04:05Z"),
            "in app: Exception on /",
        );
        check(
            "2024-01-02T03:04:05.123456789Z\tinfo\tserver started",
            F,
            Level::Info,
            rfc3339("2024-01-02T03:04:05.123Z"),
            "server started",
        );
        check(
            "2024/01/02 03:04:05 nothing in brackets error here",
            F,
            Level::Error,
            utc(2024, 1, 2, 3, 4, 5, 0),
            "here",
        );
        check("just some text", F, Level::Unknown, None, "just some text");
        check("  indented warning | x", F, Level::Warn, None, "x");
        check(
            "May be nothing at all",
            F,
            Level::Unknown,
            None,
            "May be nothing at all",
        );
        check(
            "2024-01-02 03:04:05 host app nothing",
            F,
            Level::Unknown,
            utc(2024, 1, 2, 3, 4, 5, 0),
            "host app nothing",
        );
    }

    #[test]
    fn impossible_timestamps_are_none() {
        for line in [
            "2024-13-02 03:04:05 ERROR x",
            "2024-00-02 03:04:05 ERROR x",
            "2024-01-02 25:04:05 ERROR x",
            "2024-01-02 23:60:05 ERROR x",
            "2023-02-29 03:04:05 ERROR x",
            "2024-04-31 03:04:05 ERROR x",
            "2024-01-02 03:04:05+25:00 ERROR x",
        ] {
            let p = parse_line(line.as_bytes(), 2024);
            assert_eq!((p.level, p.ts_ms), (Level::Error, None), "{line}");
            assert_eq!(p.message, b"x", "{line}");
        }
        assert_eq!(
            parse_line(b"2000-02-29 00:00:00 ERROR x", 2024).ts_ms,
            utc(2000, 2, 29, 0, 0, 0, 0)
        );
        assert_eq!(
            parse_line(b"1969-12-31T23:59:59.999Z ERROR x", 2024).ts_ms,
            Some(-1)
        );
        assert_eq!(
            parse_line(b"0000-01-01T00:00:00Z ERROR x", 2024).ts_ms,
            utc(0, 1, 1, 0, 0, 0, 0)
        );
        assert_eq!(
            parse_line(b"9999-12-31T23:59:59,999+00:00 ERROR x", 2024).ts_ms,
            utc(9999, 12, 31, 23, 59, 59, 999)
        );
    }

    #[test]
    fn level_word_filter_agrees_with_from_word() {
        let words = [
            "trace",
            "finest",
            "finer",
            "fine",
            "verbose",
            "debug",
            "dbg",
            "info",
            "information",
            "informational",
            "notice",
            "warn",
            "warning",
            "error",
            "err",
            "severe",
            "critical",
            "crit",
            "fatal",
            "emerg",
            "emergency",
            "alert",
            "panic",
        ];
        for w in words {
            let mut capitalised = w.to_string();
            capitalised[..1].make_ascii_uppercase();
            for v in [w.to_string(), w.to_ascii_uppercase(), capitalised] {
                assert!(Level::from_word(v.as_bytes()).is_some(), "{v}");
                assert_eq!(
                    level_word(v.as_bytes()),
                    Level::from_word(v.as_bytes()),
                    "{v}"
                );
            }
        }
    }

    #[test]
    fn epoch_magnitudes() {
        assert_eq!(parse_epoch(b"1704164645"), Some(1_704_164_645_000));
        assert_eq!(parse_epoch(b"1704164645.1"), Some(1_704_164_645_100));
        assert_eq!(parse_epoch(b"1704164645123"), Some(1_704_164_645_123));
        assert_eq!(parse_epoch(b"1704164645123456"), Some(1_704_164_645_123));
        assert_eq!(parse_epoch(b"1704164645123456789"), Some(1_704_164_645_123));
        assert_eq!(parse_epoch(b"1.7e9"), None);
        assert_eq!(parse_epoch(b"-1"), None);
        assert_eq!(parse_epoch(b""), None);
        assert_eq!(parse_epoch(b"99999999999999999999"), None);
    }

    #[test]
    fn hostile_input() {
        let generic = |line: &[u8]| {
            let p = parse_line(line, 2024);
            assert_eq!(p.format, Format::Generic, "{line:?}");
            assert_eq!(p.level, Level::Unknown, "{line:?}");
            assert_eq!(p.message, line, "{line:?}");
        };
        for line in [
            &b""[..],
            b"   ",
            b"\t",
            b"<",
            b"{",
            b"[",
            b"\"",
            b"<>",
            b"<999>hello",
            b"<99999999999999999999>x",
            b"<-1>x",
            b"{\"",
            b"{\"msg",
            b"{}",
            b"[]",
            b"\0\0\0",
            b"\xff\xfe\xfd garbage \xc3\x28",
            b"2024-",
            b"2024-01-02",
            b"99999-01-01 00:00:00 x",
            b"I0102",
            b"Oct",
            b"Oct 11",
            b"1.2.3.4 - - [",
            b"1.2.3.4 - - [02/Jan/2024:03:04",
        ] {
            generic(line);
        }
        // A 10 MB line of one letter, and other large degenerate lines.
        for b in [
            b'a', b'[', b'{', b'<', b'"', b' ', b'=', b'-', b'1', b'E', b'\\',
        ] {
            let line = vec![b; 10 << 20];
            let p = parse_line(&line, 2024);
            assert_subslice(&line, p.message);
        }
        let mut line = b"{\"msg\":\"".to_vec();
        line.extend(std::iter::repeat_n(b'\\', 1 << 20));
        let p = parse_line(&line, 2024);
        assert_subslice(&line, p.message);
        // Assorted truncations of real lines never panic and keep the subslice invariant.
        for full in [
            &br#"<165>1 2003-10-11T22:14:15.003Z host app - ID47 [a@1 x="y\]z"] hello"#[..],
            br#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#,
            b"[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1234:tid 5678] AH00126: x",
            b"2024-01-02T03:04:05.678+01:00  WARN 1 --- [myapp] [nio-8080-exec-1] c.e.C : slow",
            br#"{"level":"error","ts":1704164645.123,"ctx":{"a":[1,"]"]},"msg":"request failed"}"#,
            br#"time=2024-01-02T03:04:05Z level=error msg="failed \" to connect""#,
            b"E0102 03:04:05.678901   12345 file.go:42] something failed",
            b"2024/01/02 03:04:05 [error] 1234#0: *56 open() failed",
            b"2024-01-02 03:04:05,678 - myapp.db - ERROR - connection lost",
            b"Oct  1 06:25:01 web1 CRON[4321]: (root) CMD",
        ] {
            for end in 0..=full.len() {
                let line = &full[..end];
                let p = parse_line(line, 2024);
                assert_subslice(line, p.message);
            }
        }
        // CR at the end is tolerated everywhere.
        let p = parse_line(b"{\"level\":\"warn\",\"msg\":\"x\"}\r", 2024);
        assert_eq!(
            (p.format, p.level, p.message),
            (Format::Json, Level::Warn, &b"x"[..])
        );
        let p = parse_line(b"level=warn msg=x\r", 2024);
        assert_eq!(
            (p.format, p.level, p.message),
            (Format::Logfmt, Level::Warn, &b"x"[..])
        );
        // Years far from the present don't overflow.
        for year in [i32::MIN, -1, 0, i32::MAX] {
            let p = parse_line(b"<13>Feb  5 17:32:18 h p: m", year);
            assert_eq!(p.format, Format::SyslogRfc3164);
            let p = parse_line(b"E0102 03:04:05.678901 1 f.go:1] m", year);
            assert_eq!(p.format, Format::Klog);
        }
    }

    #[test]
    fn civil_matches_chrono_over_a_range() {
        // Every day from 1899 to 2101.
        let mut day = NaiveDate::from_ymd_opt(1899, 1, 1).unwrap();
        let end = NaiveDate::from_ymd_opt(2101, 12, 31).unwrap();
        let c = Clock {
            h: 0,
            mi: 0,
            s: 0,
            ms: 0,
            len: 0,
        };
        use chrono::Datelike;
        while day <= end {
            let ours = civil_ms(i64::from(day.year()), day.month(), day.day(), &c, 0);
            let theirs = day
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_millis();
            assert_eq!(ours, Some(theirs), "{day}");
            day = day.succ_opt().unwrap();
        }
    }

    fn fragment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "<34>",
            "<165>1 ",
            "<999>",
            "Oct 11 22:14:15 ",
            "Feb  5 ",
            "2024-01-02",
            "T03:04:05.678Z",
            " 03:04:05,678",
            "2024/01/02 ",
            "+05:30",
            "-0700",
            " - ",
            "---",
            "[",
            "]",
            "{",
            "}",
            "\"",
            "\\",
            ":",
            "=",
            " ",
            "\t",
            "\0",
            "\r",
            "\u{feff}",
            "é",
            "level=",
            "msg=\"",
            "ERROR",
            "warn",
            "I0102 ",
            "E1231 23:59:59.123456 ",
            "123 ",
            "file.go:42] ",
            "127.0.0.1 - - ",
            "[10/Oct/2000:13:55:36 -0700] ",
            "\"GET / HTTP/1.1\" 500 12",
            "[Wed Oct 11 14:32:52 2000] ",
            "[core:error] ",
            "[pid 1] ",
            "1234#0: *5 ",
            "\"level\":",
            "\"msg\":",
            "\"time\":",
            "30",
            ",",
            "99999999999999999999",
            "[a@1 x=\"y\\]\"]",
        ])
    }

    /// `(format, level, ts, message)` of each line, parsed in order on one new thread (so the
    /// timestamp memos start empty and then carry over from line to line).
    fn parse_on_fresh_thread(
        lines: &[Vec<u8>],
        year: i32,
    ) -> Vec<(Format, Level, Option<i64>, Vec<u8>)> {
        let lines = lines.to_vec();
        std::thread::spawn(move || {
            lines
                .iter()
                .map(|l| {
                    let p = parse_line(l, year);
                    (p.format, p.level, p.ts_ms, p.message.to_vec())
                })
                .collect()
        })
        .join()
        .unwrap()
    }

    #[test]
    fn timestamp_memo_never_changes_a_result() {
        let lines: Vec<Vec<u8>> = [
            "2024-03-01 10:00:00,123 - app - ERROR - a",
            "2024-03-01 10:00:00.999 [main] INFO x.Y - b",
            "2024-03-01T10:00:00+05:30 INFO c",
            "2024-03-01T10:00:00-23:59 INFO c",
            "2024-03-01T10:00:00+24:00 INFO bad zone",
            "2024-03-01T10:00:00 INFO no fraction",
            "2023-02-29 10:00:00,000 - app - INFO - not a leap year",
            "2023-02-29 10:00:00,500 - app - INFO - still not",
            "2024-02-29 10:00:00,500 - app - INFO - a leap year",
            "2024/03/01 10:00:00 [error] 1#1: *2 nginx",
            "2024-03-01 10:00:60 ERROR leap second",
            "2024-03-01 10:00:61 ERROR no such second",
            "10.0.0.1 - - [01/Mar/2024:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1",
            "10.0.0.1 - - [01/Mar/2024:10:00:00 -0130] \"GET / HTTP/1.1\" 500 1",
            "10.0.0.1 - - [01/mar/2024:10:00:00 +0000] \"GET / HTTP/1.1\" 404 1",
            "10.0.0.1 - - [31/Apr/2024:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1",
            "Mar  1 10:00:00 host app: one",
            "Mar  1 10:00:00.250 host app: two",
            "Mar 01 10:00:00 host app: three",
            "Mar 1 10:00:00 host app: four",
            "Feb 29 10:00:00 host app: leap day",
            "Feb 30 10:00:00 host app: never",
            "<13>Mar  1 10:00:00 host app: five",
        ]
        .iter()
        .map(|l| l.as_bytes().to_vec())
        .collect();
        for year in [2023, 2024] {
            // Each line on its own (empty memo) against all in order, forwards and backwards.
            let alone: Vec<_> = lines
                .iter()
                .flat_map(|l| parse_on_fresh_thread(std::slice::from_ref(l), year))
                .collect();
            assert_eq!(parse_on_fresh_thread(&lines, year), alone, "year {year}");
            let mut rev = lines.clone();
            rev.reverse();
            let mut want = alone.clone();
            want.reverse();
            assert_eq!(
                parse_on_fresh_thread(&rev, year),
                want,
                "year {year}, reversed"
            );
        }
        // The BSD memo is keyed by the year too: the same line after a year change.
        let line = b"Feb 29 10:00:00 host app: leap day".to_vec();
        let both = std::thread::spawn(move || {
            (parse_line(&line, 2024).ts_ms, parse_line(&line, 2023).ts_ms)
        })
        .join()
        .unwrap();
        assert_eq!(both, (utc(2024, 2, 29, 10, 0, 0, 0), None));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn never_panics_on_bytes(line in prop::collection::vec(any::<u8>(), 0..300)) {
            let p = parse_line(&line, 2024);
            assert_subslice(&line, p.message);
        }

        #[test]
        fn memo_carries_nothing_between_lines(
            a in prop::collection::vec(fragment(), 0..8),
            b in prop::collection::vec(fragment(), 0..8),
        ) {
            let (a, b) = (a.concat().into_bytes(), b.concat().into_bytes());
            let after = parse_on_fresh_thread(&[a, b.clone()], 2024).pop();
            prop_assert_eq!(after, parse_on_fresh_thread(&[b], 2024).pop());
        }

        #[test]
        fn never_panics_on_fragments(parts in prop::collection::vec(fragment(), 0..16)) {
            let line = parts.concat();
            let p = parse_line(line.as_bytes(), 2024);
            assert_subslice(line.as_bytes(), p.message);
        }

        #[test]
        fn level_word_agrees(w in prop::collection::vec(any::<u8>(), 0..15), t in "[a-zA-Z]{0,14}") {
            prop_assert_eq!(level_word(&w), Level::from_word(&w));
            prop_assert_eq!(level_word(t.as_bytes()), Level::from_word(t.as_bytes()));
        }

        #[test]
        fn iso_matches_chrono(
            y in 0i32..=9999, mo in 1u32..=12, d in 1u32..=31,
            h in 0u32..=23, mi in 0u32..=59, s in 0u32..=59, ms in 0u32..=999,
            off in -1439i32..=1439,
        ) {
            let sign = if off < 0 { '-' } else { '+' };
            let text = format!(
                "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}{sign}{:02}:{:02}",
                off.abs() / 60,
                off.abs() % 60
            );
            let ours = parse_datetime(text.as_bytes(), b'-').and_then(|dt| dt.ms);
            let theirs = NaiveDate::from_ymd_opt(y, mo, d)
                .map(|date| {
                    date.and_hms_milli_opt(h, mi, s, ms).unwrap().and_utc().timestamp_millis()
                        - i64::from(off) * 60_000
                });
            prop_assert_eq!(ours, theirs, "{}", text);
        }
    }
}
