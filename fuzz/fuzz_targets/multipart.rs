//! The upload body parsing of `POST /logs/analyze` and the dashboard upload
//! (`http::api::logs::parse_upload`: axum's multipart reader, the field loop with the CSRF
//! check, the size limits, and the raw-body path).
//!
//! Input: byte 0 picks the content type (bits 0–1: multipart with the boundary `b0undary`,
//! multipart with it quoted, multipart without a boundary, `text/plain`) and whether the
//! session's CSRF token is required (bit 2); byte 1 scales the upload limit (×64 bytes);
//! the rest is the body. Checked: no panic; what reaches the analyzer is within the upload
//! or paste limit; with the token required, a body that does not contain it passes nothing
//! on and is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watchpost::http::api::logs::parse_upload;

const TOKEN: &str = "fuzz-csrf-token";
const PASTE_MAX: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let (Some(&mode), Some(&scale)) = (data.first(), data.get(1)) else {
        return;
    };
    let body = data.get(2..).unwrap_or_default().to_vec();
    let ct = match mode & 3 {
        0 => "multipart/form-data; boundary=b0undary",
        1 => "multipart/form-data; boundary=\"b0undary\"",
        2 => "multipart/form-data",
        _ => "text/plain",
    };
    let csrf = (mode & 4 != 0).then_some(TOKEN);
    let limit = u64::from(scale) * 64;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let (result, passed_on) = runtime.block_on(parse_upload(
        ct,
        body.clone().into(),
        limit,
        PASTE_MAX,
        csrf,
    ));
    assert!(
        passed_on.len() as u64 <= limit.max(PASTE_MAX as u64),
        "{} bytes passed on with limit {limit}",
        passed_on.len()
    );
    if csrf.is_some() {
        let has_token = body.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes());
        if !has_token {
            assert!(result.is_err(), "accepted without the token: {result:?}");
            assert!(passed_on.is_empty(), "passed on without the token");
        }
    }
});
