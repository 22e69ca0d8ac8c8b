//! Standard Webhooks signing: `parse_secret` on arbitrary text, and `sign` checked against
//! the independent `standardwebhooks` crate.
//!
//! Input: the first line is tried as a secret (`whsec_` + base64, or bare base64); byte 0
//! of the rest picks the timestamp's magnitude, then the rest splits into a message id and
//! a body at the next `\n`. Checked: no panic; an accepted secret is 24–64 bytes; the
//! signature is `v1,` + base64 of 32 bytes, the same every time, and equal to the reference
//! implementation's for UTF-8 bodies (the only ones it signs); the reference verifies it,
//! and a changed body does not.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use watchpost::notify::sign::{parse_secret, sign, MAX_SECRET_BYTES, MIN_SECRET_BYTES};

fuzz_target!(|data: &[u8]| {
    let (first, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let secret_text = String::from_utf8_lossy(first);
    let key = match parse_secret(&secret_text) {
        Ok(key) => key,
        // Any 24..64 bytes make a key too, so every input reaches `sign`.
        Err(_) => {
            let mut k = first.to_vec();
            k.resize(MIN_SECRET_BYTES.max(k.len()).min(MAX_SECRET_BYTES), 0x5a);
            k
        }
    };
    assert!((MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()));
    let (ts, rest) = match rest.split_first() {
        Some((&b, rest)) => (1_700_000_000_i64 + i64::from(b) * 1_000_003, rest),
        None => (0, rest),
    };
    let (id, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (String::from_utf8_lossy(&rest[..i]).into_owned(), &rest[i + 1..]),
        None => (String::from("msg_fuzz"), rest),
    };
    let sig = sign(&key, &id, ts, body);
    assert_eq!(sig, sign(&key, &id, ts, body), "not deterministic");
    let encoded = sig.strip_prefix("v1,").expect("v1 prefix");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    assert_eq!(raw.len(), 32);

    let reference = standardwebhooks::Webhook::from_bytes(key.clone()).expect("reference key");
    if std::str::from_utf8(body).is_ok() {
        assert_eq!(
            reference.sign(&id, ts, body).expect("reference sign"),
            sig,
            "differs from the reference implementation"
        );
    }
    // Header values must be visible ASCII for the reference's verifier to read them.
    if !id.is_empty() && id.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        let now = chrono::Utc::now().timestamp();
        let signed_now = sign(&key, &id, now, body);
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", id.parse().expect("id header"));
        headers.insert("webhook-timestamp", now.to_string().parse().expect("ts header"));
        headers.insert("webhook-signature", signed_now.parse().expect("signature header"));
        if std::str::from_utf8(body).is_ok() {
            assert!(reference.verify(body, &headers).is_ok(), "reference refuses it");
            let mut tampered = body.to_vec();
            tampered.push(b'x');
            assert!(reference.verify(&tampered, &headers).is_err(), "tampered body verified");
        }
    }
});
