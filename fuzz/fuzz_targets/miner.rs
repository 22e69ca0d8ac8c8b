//! The template miner with small bounds: many messages into two miners, then one merged
//! into the other.
//!
//! Input layout: byte 0 → `max_templates` 1–16, byte 1 → `max_tokens` 1–16, byte 2 →
//! `max_message_bytes` 1–256, byte 3 → `similarity` 0–1; the rest, split on `\n`, are the
//! messages (alternately to miner A and B).
//!
//! Checked: no panic; `add` returns a surviving (canonical) id below `max_templates + 1`;
//! `len()` stays within `1..=max_templates + 1` (the `+ 1` is the `<other>` overflow);
//! `templates()` agrees with `len()`; `merge` maps every id of B to a canonical id
//! of A and keeps A's bound; masking valid UTF-8 is idempotent (what merging relies on).
#![no_main]

use libfuzzer_sys::fuzz_target;
use watchpost::logs::template::{mask, Miner, MinerConfig, TemplateId};

fn check_miner(m: &Miner, bound: usize) {
    assert!(m.len() <= bound, "len {} over bound {bound}", m.len());
    let mut listed = 0;
    for (id, _text) in m.templates() {
        assert_eq!(m.canonical(id), id);
        assert!((id as usize) < bound, "id {id} over bound {bound}");
        listed += 1;
    }
    assert_eq!(listed, m.len(), "templates() disagrees with len()");
}

fuzz_target!(|input: &[u8]| {
    let [a, b, c, d, rest @ ..] = input else {
        return;
    };
    let cfg = MinerConfig {
        max_templates: usize::from(a % 16) + 1,
        max_tokens: usize::from(b % 16) + 1,
        max_message_bytes: usize::from(*c) + 1,
        similarity: f64::from(*d) / 255.0,
    };
    let bound = cfg.max_templates + 1;
    let mut ma = Miner::new(cfg.clone());
    let mut mb = Miner::new(cfg);
    let mut b_ids: usize = 0;
    for (k, msg) in rest.split(|&x| x == b'\n').enumerate() {
        let m = if k % 2 == 0 { &mut ma } else { &mut mb };
        let id: TemplateId = m.add(msg);
        assert_eq!(m.canonical(id), id, "add returned an alias");
        assert!((id as usize) < bound, "id {id} over bound {bound}");
        assert!(m.len() >= 1 && m.len() <= bound);
        // An empty or blank message is an empty template: only check it can be read.
        let _ = m.template(id);
        if k % 2 == 1 {
            b_ids = b_ids.max(id as usize + 1);
        }
        if let Ok(s) = std::str::from_utf8(msg) {
            let once = mask(s.as_bytes());
            assert_eq!(
                mask(once.as_bytes()),
                once,
                "masking is not idempotent on {s:?}"
            );
        }
    }
    check_miner(&ma, bound);
    check_miner(&mb, bound);
    let before = ma.len();
    let map = ma.merge(&mb);
    assert!(
        map.len() >= b_ids && map.len() <= bound,
        "merge map length {}",
        map.len()
    );
    for &id in &map {
        assert_eq!(ma.canonical(id), id, "merge mapped to an alias");
        assert!((id as usize) < bound);
    }
    check_miner(&ma, bound);
    assert!(ma.len() >= before.min(1));
    // Merging an empty miner changes nothing.
    let empty = Miner::new(MinerConfig::default());
    assert!(ma.merge(&empty).is_empty());
});
