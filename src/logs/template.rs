//! Template mining: reduce the message part of log lines to templates such as
//! `User <*> failed to login from <*>` and give every message a stable template id.
//!
//! # Pipeline
//!
//! 1. **Masking** (one pass, no allocation after warm-up). The message (bytes, at most
//!    `max_message_bytes`, at most `max_tokens` tokens) is split on ASCII whitespace; a
//!    quoted string (`"…"` or `'…'`, opening at the start of a token or right after `=`/`:`,
//!    closing before whitespace, punctuation or the end) is one token even when it spans
//!    spaces. Every token that is a variable on its own ([`is_variable`]) is rewritten:
//!    surrounding punctuation (leading `( [ { " ' `` ` ``, trailing `) ] } " ' `` ` `` , ; : . ! ? %`)
//!    and a `key=` prefix are *kept*, the rest becomes `<*>`: `(id=42),` → `(id=<*>),`,
//!    `(42)` → `(<*>)`, `"a b c"` → `<*>`, `[::1]:80` → `<*>`. Constant tokens are kept
//!    verbatim. The masked tokens joined by single spaces are the message's *shape*.
//! 2. **Fast path**: the shape is looked up in a hash map (shape bytes → id; the bytes are
//!    compared, so hash collisions cannot misassign). A known shape costs one masking pass,
//!    one hash and one `memcmp`.
//! 3. **Slow path** (a new shape): Drain-style clustering among the templates with the same
//!    token count. A template is *compatible* when every position is equal or `<*>` (the
//!    most specific compatible one wins). Otherwise the candidates with similarity
//!    (positions equal or `<*>`, over the token count) ≥ `similarity` are tried, most
//!    similar first, to be generalised at the differing positions. A differing position
//!    may only become `<*>` when it has *evidence of being variable*: the message has an
//!    explicit `<*>` there (a template fed back in), both sides are masked variables, or the
//!    templates this generalisation would cover plus the message show at least
//!    [`MIN_DISTINCT_VALUES`] distinct words there. Otherwise a new template is created.
//! 4. **Generalising** replaces the differing positions by a bare `<*>` (punctuation glued to
//!    the differing words is dropped) and absorbs every other template the new text covers:
//!    the lowest (first-seen) id survives, the others become *aliases* of it.
//!
//! # Ids
//!
//! Ids are assigned in first-seen order and an id, once returned, is never reused and never
//! points at another shape of message: its text can only become more general. When
//! generalising makes two templates one, the later id becomes an alias of the earlier one:
//! [`Miner::template`] of either gives the same text, [`Miner::canonical`] maps an alias to
//! the surviving id, and [`Miner::add`] only returns surviving ids from then on. A consumer
//! that counts per id therefore folds its counts through `canonical` when reporting.
//!
//! # Why word positions need evidence (the trade-off)
//!
//! `cache hit for key <*>` and `cache miss for key <*>` look exactly like `User alice failed`
//! and `User bob failed` when each has been seen once, and in a shuffled stream the first
//! `miss` often arrives right after the first `hit`. Plain Drain (similarity ≥ 0.5) merges
//! both pairs at once. Here a word-only position is generalised only once
//! [`MIN_DISTINCT_VALUES`] (4) different words have been seen there, which keeps small
//! enumerations (`hit`/`miss`, `passed`/`failed`, `SIGTERM`/`SIGKILL`) apart and merges
//! open-ended ones (user names, hosts) after their 4th distinct value. The cost: a
//! word-only variable with at most 3 values in the data stays 2–3 templates, an
//! enumeration with 4 or more values is merged into one, and the first 3 distinct values of
//! a real variable each create an id that later becomes an alias.
//!
//! # Merging parallel chunks
//!
//! Templates are their own input: masking is idempotent on template text (`<*>` is a
//! variable, kept punctuation and `key=` are re-derived identically), so feeding the text of
//! one miner's template into another miner lands in the equivalent template, generalising
//! it if needed (an explicit `<*>` is evidence). [`Miner::merge`] does this for every
//! surviving template of the other miner in the other miner's id order (deterministic) and
//! returns the id mapping; counts are carried by the caller. The other miner's overflow maps
//! to this miner's overflow.
//!
//! # Bounds
//!
//! At most `max_templates` ids are ever created (aliases included), plus one overflow
//! template `<other>` that takes every message needing a new template once that is reached.
//! Each template holds at most `max_message_bytes` bytes of text and `max_tokens + 1`
//! tokens. The shape cache holds at most `4 × max_templates + 1024` shapes and
//! `max(1 MiB, 512 × max_templates)` bytes and is cleared when full. Nothing here panics on
//! any input.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Settings of a [`Miner`].
#[derive(Debug, Clone)]
pub struct MinerConfig {
    /// Most template ids created (aliases included); once reached, messages that would need
    /// a new template go to one overflow template with text `<other>` (its id is stable too).
    pub max_templates: usize,
    /// Drain similarity threshold in [0, 1]: the share of positions that must be equal (or
    /// `<*>` in the template) before generalising a template is considered.
    pub similarity: f64,
    /// Tokens beyond this are ignored for matching (the template text ends with ` …`).
    pub max_tokens: usize,
    /// Longest message bytes considered (the rest ignored).
    pub max_message_bytes: usize,
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            max_templates: 10_000,
            similarity: 0.5,
            max_tokens: 64,
            max_message_bytes: 4096,
        }
    }
}

/// A template id: dense, in first-seen order.
pub type TemplateId = u32;

/// Distinct words needed at a position before clustering turns it into `<*>`.
pub const MIN_DISTINCT_VALUES: usize = 4;

const WILDCARD: &[u8] = b"<*>";
/// Last token of a message cut at `max_tokens`.
const ELLIPSIS: &[u8] = "…".as_bytes();
const OTHER: &str = "<other>";

/// One token of a template: a byte range of its text.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

#[derive(Debug)]
struct Cluster {
    /// Tokens joined by single spaces.
    text: Vec<u8>,
    /// Byte range of each token in `text`.
    spans: Vec<Span>,
}

impl Cluster {
    fn from_tokens<'a>(tokens: impl Iterator<Item = &'a [u8]>) -> Cluster {
        let mut text = Vec::new();
        let mut spans = Vec::new();
        for t in tokens {
            if !spans.is_empty() {
                text.push(b' ');
            }
            let start = text.len() as u32;
            text.extend_from_slice(t);
            spans.push(Span {
                start,
                end: text.len() as u32,
            });
        }
        Cluster { text, spans }
    }

    fn tok(&self, p: usize) -> &[u8] {
        self.spans
            .get(p)
            .map(|s| span_bytes(&self.text, *s))
            .unwrap_or_default()
    }
}

fn span_bytes(buf: &[u8], s: Span) -> &[u8] {
    buf.get(s.start as usize..s.end as usize)
        .unwrap_or_default()
}

#[derive(Debug)]
enum Slot {
    Live(Cluster),
    /// Absorbed by a more general template (see `Miner::canonical`).
    Alias,
    Overflow,
}

enum Decision {
    Existing(TemplateId),
    Generalise {
        base: TemplateId,
        wild: Vec<bool>,
        covered: Vec<TemplateId>,
    },
    New,
}

/// FxHash-style hasher for the shape cache (keys are short byte strings we produce).
#[derive(Default, Clone, Copy)]
struct ShapeHasher(u64);

impl ShapeHasher {
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    #[inline]
    fn mix(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(Self::K);
    }
}

impl Hasher for ShapeHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            self.mix(u64::from_le_bytes(a));
        }
        let rem = chunks.remainder();
        if !rem.is_empty() {
            let mut a = [0u8; 8];
            for (d, s) in a.iter_mut().zip(rem) {
                *d = *s;
            }
            self.mix(u64::from_le_bytes(a) ^ ((rem.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        let h = self.0;
        (h ^ (h >> 32)).wrapping_mul(Self::K).rotate_left(26)
    }
}

type ShapeCache = HashMap<Box<[u8]>, TemplateId, BuildHasherDefault<ShapeHasher>>;

/// Streaming template miner. See the module documentation for the design.
#[derive(Debug)]
pub struct Miner {
    cfg: MinerConfig,
    /// Indexed by id.
    slots: Vec<Slot>,
    /// Indexed by id: the surviving id (itself unless an alias). Always one step.
    canon: Vec<TemplateId>,
    /// Live template ids by token count, in id order.
    buckets: HashMap<usize, Vec<TemplateId>>,
    /// Ids created for templates (not the overflow).
    created: usize,
    live: usize,
    overflow: Option<TemplateId>,
    cache: ShapeCache,
    cache_bytes: usize,
    cache_max_entries: usize,
    cache_max_bytes: usize,
    /// Reused per message: the masked shape.
    buf: Vec<u8>,
}

impl Miner {
    pub fn new(cfg: MinerConfig) -> Self {
        // Ids are u32; the overflow takes one more.
        let max_templates = cfg.max_templates.min(u32::MAX as usize - 1);
        let cache_max_entries = max_templates.saturating_mul(4).saturating_add(1024);
        let cache_max_bytes = max_templates.saturating_mul(512).max(1 << 20);
        Miner {
            cfg: MinerConfig {
                max_templates,
                ..cfg
            },
            slots: Vec::new(),
            canon: Vec::new(),
            buckets: HashMap::new(),
            created: 0,
            live: 0,
            overflow: None,
            cache: ShapeCache::default(),
            cache_bytes: 0,
            cache_max_entries,
            cache_max_bytes,
            buf: Vec::new(),
        }
    }

    /// The template id of this message (creating or generalising a template as needed).
    /// Ids are assigned in first-seen order and never change meaning, even when a
    /// template's text is generalised later; the id returned is always a surviving one
    /// (see [`Miner::canonical`]).
    pub fn add(&mut self, message: &[u8]) -> TemplateId {
        let msg = message.get(..self.cfg.max_message_bytes).unwrap_or(message);
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        tokenize(msg, self.cfg.max_tokens, &mut buf);
        let id = match self.cache.get(buf.as_slice()) {
            Some(&id) => self.canonical(id),
            None => {
                let id = self.slow(&buf);
                self.remember(&buf, id);
                id
            }
        };
        self.buf = buf;
        id
    }

    /// Current text of a template: tokens joined by single spaces, variables as `<*>`,
    /// invalid UTF-8 replaced lossily. An alias gives the text of its surviving template;
    /// an id never returned by this miner gives `""`.
    pub fn template(&self, id: TemplateId) -> Cow<'_, str> {
        match self.slots.get(self.canonical(id) as usize) {
            Some(Slot::Live(c)) => String::from_utf8_lossy(&c.text),
            Some(Slot::Overflow) => Cow::Borrowed(OTHER),
            Some(Slot::Alias) | None => Cow::Borrowed(""),
        }
    }

    /// The surviving id for `id`: itself unless its template was absorbed by a more general
    /// one. Unknown ids are returned unchanged.
    pub fn canonical(&self, id: TemplateId) -> TemplateId {
        self.canon.get(id as usize).copied().unwrap_or(id)
    }

    /// Number of distinct templates (surviving ids, the overflow included once used).
    pub fn len(&self) -> usize {
        self.live + usize::from(self.overflow.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The surviving templates in id order.
    pub fn templates(&self) -> impl Iterator<Item = (TemplateId, Cow<'_, str>)> + '_ {
        (0..self.slots.len() as TemplateId)
            .filter(|&id| self.canonical(id) == id)
            .map(|id| (id, self.template(id)))
    }

    /// Folds `other`'s templates into this miner by feeding their text to [`Miner::add`], in
    /// `other`'s id order, so the result does not depend on anything but the two miners.
    /// Returns, indexed by `other`'s ids (aliases included), the id each maps to here,
    /// canonical as of the end of the merge. The caller adds its counts accordingly.
    pub fn merge(&mut self, other: &Miner) -> Vec<TemplateId> {
        let mut mapped: Vec<TemplateId> = vec![0; other.slots.len()];
        for (j, slot) in other.slots.iter().enumerate() {
            let own = match slot {
                Slot::Live(c) => self.add(&c.text),
                Slot::Overflow => self.overflow_id(),
                Slot::Alias => continue,
            };
            if let Some(m) = mapped.get_mut(j) {
                *m = own;
            }
        }
        (0..other.slots.len() as TemplateId)
            .map(|j| {
                let surviving = other.canonical(j) as usize;
                self.canonical(mapped.get(surviving).copied().unwrap_or(0))
            })
            .collect()
    }

    fn cluster(&self, id: TemplateId) -> Option<&Cluster> {
        match self.slots.get(id as usize) {
            Some(Slot::Live(c)) => Some(c),
            _ => None,
        }
    }

    fn remember(&mut self, shape: &[u8], id: TemplateId) {
        if shape.len() > self.cache_max_bytes {
            return;
        }
        if self.cache.len() >= self.cache_max_entries
            || self.cache_bytes + shape.len() > self.cache_max_bytes
        {
            self.cache.clear();
            self.cache_bytes = 0;
        }
        self.cache_bytes += shape.len();
        self.cache.insert(shape.into(), id);
    }

    fn overflow_id(&mut self) -> TemplateId {
        if let Some(id) = self.overflow {
            return id;
        }
        let id = self.slots.len() as TemplateId;
        self.slots.push(Slot::Overflow);
        self.canon.push(id);
        self.overflow = Some(id);
        id
    }

    fn slow(&mut self, buf: &[u8]) -> TemplateId {
        let toks: Vec<&[u8]> = shape_tokens(buf).collect();
        match self.decide(&toks) {
            Decision::Existing(id) => id,
            Decision::Generalise {
                base,
                wild,
                covered,
            } => self.generalise(base, &wild, &covered, toks.len()),
            Decision::New => {
                if self.created >= self.cfg.max_templates {
                    return self.overflow_id();
                }
                let id = self.slots.len() as TemplateId;
                self.slots
                    .push(Slot::Live(Cluster::from_tokens(toks.iter().copied())));
                self.canon.push(id);
                self.buckets.entry(toks.len()).or_default().push(id);
                self.created += 1;
                self.live += 1;
                id
            }
        }
    }

    fn decide(&self, toks: &[&[u8]]) -> Decision {
        let n = toks.len();
        let Some(bucket) = self.buckets.get(&n) else {
            return Decision::New;
        };
        let mut best: Option<(usize, TemplateId)> = None;
        let mut candidates: Vec<(usize, TemplateId)> = Vec::new();
        for &id in bucket {
            let Some(c) = self.cluster(id) else { continue };
            let constants = (0..n).filter(|&p| c.tok(p) != WILDCARD).count();
            let (mut specific, mut compatible) = (0usize, true);
            for (p, m) in toks.iter().enumerate() {
                let t = c.tok(p);
                if t == WILDCARD {
                    // A template of nothing but wildcards would swallow every message of
                    // its length: it takes only messages as variable as itself.
                    if constants == 0 && *m != WILDCARD {
                        compatible = false;
                    }
                } else if t == *m {
                    specific += 1;
                } else {
                    compatible = false;
                }
            }
            if compatible {
                if best.is_none_or(|(s, _)| specific > s) {
                    best = Some((specific, id));
                }
            } else if specific as f64 >= self.cfg.similarity * n as f64 {
                // As in Drain, only equal constant tokens make two messages similar;
                // wildcards do not, or generalised templates would attract everything.
                candidates.push((specific, id));
            }
        }
        if let Some((_, id)) = best {
            return Decision::Existing(id);
        }
        // Most similar first, then first seen (bucket order is id order; sort is stable).
        candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
        for (_, id) in candidates {
            if let Some(d) = self.plan(id, toks, bucket) {
                return d;
            }
        }
        Decision::New
    }

    /// Whether template `base` may be generalised to take `toks`, and what it would cover.
    fn plan(&self, base: TemplateId, toks: &[&[u8]], bucket: &[TemplateId]) -> Option<Decision> {
        let c = self.cluster(base)?;
        let wild: Vec<bool> = toks
            .iter()
            .enumerate()
            .map(|(p, m)| {
                let t = c.tok(p);
                t != WILDCARD && t != *m
            })
            .collect();
        // Templates the generalised text covers: equal wherever it stays constant.
        let covered: Vec<TemplateId> = bucket
            .iter()
            .copied()
            .filter(|&id| {
                self.cluster(id).is_some_and(|s| {
                    wild.iter().enumerate().all(|(p, &w)| {
                        let t = c.tok(p);
                        w || t == WILDCARD || s.tok(p) == t
                    })
                })
            })
            .collect();
        for (p, (&w, m)) in wild.iter().zip(toks).enumerate() {
            if !w || *m == WILDCARD || (has_wildcard(m) && has_wildcard(c.tok(p))) {
                continue;
            }
            let mut values: Vec<&[u8]> = vec![m];
            let mut proven = false;
            for s in covered.iter().filter_map(|&id| self.cluster(id)) {
                let v = s.tok(p);
                if v == WILDCARD {
                    proven = true;
                    break;
                }
                if !values.contains(&v) {
                    values.push(v);
                    if values.len() >= MIN_DISTINCT_VALUES {
                        break;
                    }
                }
            }
            if !proven && values.len() < MIN_DISTINCT_VALUES {
                return None;
            }
        }
        Some(Decision::Generalise {
            base,
            wild,
            covered,
        })
    }

    fn generalise(
        &mut self,
        base: TemplateId,
        wild: &[bool],
        covered: &[TemplateId],
        n: usize,
    ) -> TemplateId {
        let Some(c) = self.cluster(base) else {
            return base;
        };
        let merged =
            Cluster::from_tokens(
                wild.iter()
                    .enumerate()
                    .map(|(p, &w)| if w { WILDCARD } else { c.tok(p) }),
            );
        let survivor = covered.iter().copied().min().unwrap_or(base).min(base);
        if let Some(slot) = self.slots.get_mut(survivor as usize) {
            *slot = Slot::Live(merged);
        }
        for &id in covered {
            if id == survivor {
                continue;
            }
            if let Some(slot) = self.slots.get_mut(id as usize) {
                *slot = Slot::Alias;
                self.live -= 1;
            }
            for x in self.canon.iter_mut() {
                if *x == id {
                    *x = survivor;
                }
            }
        }
        if let Some(bucket) = self.buckets.get_mut(&n) {
            bucket.retain(|id| *id == survivor || !covered.contains(id));
        }
        survivor
    }
}

/// Whether a token is a variable on its own (before any clustering): it holds a digit, is a
/// quoted string, a `key=value`, an explicit `<*>`, a URL, path, e-mail address, a long hex
/// word (≥ 8 hex letters), an IPv6 address or a UUID. Surrounding punctuation is ignored.
pub fn is_variable(token: &[u8]) -> bool {
    let mut buf = Vec::new();
    tokenize(token, usize::MAX, &mut buf);
    buf.split(|&b| b == b' ').any(has_wildcard)
}

/// The tokens of a shape made by [`tokenize`]: a masked token never contains a space (tokens
/// are cut at whitespace, a quoted region with spaces is always masked whole), so the single
/// spaces that join them are the only ones. Only new shapes need the tokens, so the fast path
/// does not record them.
fn shape_tokens(shape: &[u8]) -> impl Iterator<Item = &[u8]> {
    shape.split(|&b| b == b' ').filter(|t| !t.is_empty())
}

/// The masked shape of a message (what templates start from), for tests and tooling.
pub fn mask(message: &[u8]) -> String {
    let mut buf = Vec::new();
    tokenize(message, usize::MAX, &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

fn has_wildcard(t: &[u8]) -> bool {
    t.windows(3).any(|w| w == WILDCARD)
}

const fn is_lead(b: u8) -> bool {
    matches!(b, b'(' | b'[' | b'{' | b'"' | b'\'' | b'`')
}

const fn is_trail(b: u8) -> bool {
    matches!(
        b,
        b')' | b']' | b'}' | b'"' | b'\'' | b'`' | b',' | b';' | b':' | b'.' | b'!' | b'?' | b'%'
    )
}

/// A closing quote at `j`: followed by the end, whitespace or trailing punctuation.
fn closes_at(msg: &[u8], j: usize) -> bool {
    msg.get(j + 1)
        .is_none_or(|&b| b.is_ascii_whitespace() || is_trail(b))
}

fn find_closer(msg: &[u8], from: usize, q: u8) -> Option<usize> {
    let rest = msg.get(from..)?;
    let mut off = 0;
    while let Some(k) = rest.get(off..)?.iter().position(|&b| b == q) {
        let j = from + off + k;
        if closes_at(msg, j) {
            return Some(j);
        }
        off += k + 1;
    }
    None
}

// Byte classes for the single pass over a token.
const C_WS: u8 = 1;
const C_DIGIT: u8 = 2;
/// Hex digit, `-`, or punctuation that may be stripped: what a hex word or UUID is made of.
const C_HEXISH: u8 = 4;
/// `= / \ @ < :`: may make a word without digits a variable.
const C_SPECIAL: u8 = 8;
const C_QUOTE: u8 = 16;
const C_EQ: u8 = 32;

static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if b.is_ascii_whitespace() {
            c |= C_WS;
        }
        if b.is_ascii_digit() {
            c |= C_DIGIT;
        }
        if b.is_ascii_hexdigit() || b == b'-' || is_lead(b) || is_trail(b) {
            c |= C_HEXISH;
        }
        if matches!(b, b'=' | b'/' | b'\\' | b'@' | b'<' | b':') {
            c |= C_SPECIAL;
        }
        if b == b'"' || b == b'\'' {
            c |= C_QUOTE;
        }
        if b == b'=' {
            c |= C_EQ;
        }
        t[i] = c;
        i += 1;
    }
    t
}

/// Splits `msg` into masked tokens appended to `out`, joined by single spaces (see
/// [`shape_tokens`]). Linear in `msg`: a failed search for a closing quote is never repeated. Plain
/// words and plain numbers are decided from byte classes gathered while finding the token's
/// end; anything else goes through [`mask_into`].
fn tokenize(msg: &[u8], max_tokens: usize, out: &mut Vec<u8>) {
    let n = msg.len();
    let mut i = 0;
    let mut count = 0usize;
    // No closing `"` / `'` after the position of a failed search.
    let mut no_closer = [false; 2];
    loop {
        while msg
            .get(i)
            .is_some_and(|&b| CLASS[usize::from(b)] & C_WS != 0)
        {
            i += 1;
        }
        if i >= n {
            break;
        }
        if !out.is_empty() {
            out.push(b' ');
        }
        if count >= max_tokens {
            out.extend_from_slice(ELLIPSIS);
            break;
        }
        count += 1;
        let start = i;
        let mut quote: Option<(usize, usize)> = None;
        let (mut any, mut all) = (0u8, u8::MAX);
        loop {
            i += scan_plain(msg.get(i..).unwrap_or_default(), &mut any, &mut all);
            let Some(&b) = msg.get(i) else { break };
            let c = CLASS[usize::from(b)];
            if c & C_WS != 0 {
                break;
            }
            // A quote.
            any |= c;
            all &= c;
            if quote.is_none() {
                let k = usize::from(b == b'\'');
                let may_open = || {
                    let before = msg.get(start..i).unwrap_or_default();
                    before.iter().all(|&p| is_lead(p)) || matches!(before.last(), Some(b'=' | b':'))
                };
                if !no_closer[k] && may_open() {
                    match find_closer(msg, i + 1, b) {
                        Some(close) => {
                            quote = Some((i - start, close - start));
                            i = close + 1;
                            continue;
                        }
                        None => no_closer[k] = true,
                    }
                }
            }
            i += 1;
        }
        let tok = msg.get(start..i).unwrap_or_default();
        let len = tok.len();
        if any & (C_DIGIT | C_SPECIAL | C_QUOTE) == 0 && (len < 8 || all & C_HEXISH == 0) {
            out.extend_from_slice(tok);
        } else if any & (C_QUOTE | C_EQ) == 0
            && any & C_DIGIT != 0
            && !tok.first().is_some_and(|&b| is_lead(b))
            && !tok.last().is_some_and(|&b| is_trail(b))
        {
            out.extend_from_slice(WILDCARD);
        } else {
            mask_into(tok, quote, out);
        }
    }
}

/// The length of the run of bytes that are neither blank nor a quote at the start of `s`,
/// folding their classes into `any` and `all`. A loop of its own over a slice, so the
/// common path costs a table lookup and a test per byte, without bounds checks.
#[inline(always)]
fn scan_plain(s: &[u8], any: &mut u8, all: &mut u8) -> usize {
    let (mut a, mut l) = (*any, *all);
    let mut k = 0;
    for &b in s {
        let c = CLASS[usize::from(b)];
        if c & (C_WS | C_QUOTE) != 0 {
            break;
        }
        a |= c;
        l &= c;
        k += 1;
    }
    *any = a;
    *all = l;
    k
}

/// Appends the masked form of one token; `quote` is its quoted region (open, close) if any.
fn mask_into(tok: &[u8], quote: Option<(usize, usize)>, out: &mut Vec<u8>) {
    let lead_limit = quote.map_or(tok.len(), |(q, _)| q);
    let mut s = tok
        .get(..lead_limit)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| is_lead(b))
        .count();
    let trail_limit = quote.map_or(s, |(_, c)| c + 1).max(s);
    let mut e = tok.len();
    while e > trail_limit && tok.get(e - 1).is_some_and(|&b| is_trail(b)) {
        e -= 1;
    }
    let core = tok.get(s..e).unwrap_or_default();
    // `[v6]:port`: the bracket belongs to the address.
    if s > 0 && tok.get(s - 1) == Some(&b'[') && core.contains(&b']') {
        s -= 1;
    }
    let lead = tok.get(..s).unwrap_or_default();
    let core = tok.get(s..e).unwrap_or_default();
    let mut trail = tok.get(e..).unwrap_or_default();
    // A quote in what follows a quoted region (`'a':'b'`) starts another value: it is part of
    // the variable, not punctuation to keep (and keeping it would change on a second pass).
    if quote.is_some() && trail.iter().any(|&b| b == b'"' || b == b'\'') {
        trail = b"";
    }
    let emit = |out: &mut Vec<u8>, key: &[u8]| {
        out.extend_from_slice(lead);
        out.extend_from_slice(key);
        out.extend_from_slice(WILDCARD);
        out.extend_from_slice(trail);
    };
    if let Some((q, _)) = quote {
        // `key="…"` keeps its key; anything else with a quoted region is one variable.
        let before = core.get(..q.saturating_sub(s)).unwrap_or_default();
        match before.split_last() {
            Some((b'=', key)) if is_key(key) => emit(out, before),
            _ => emit(out, b""),
        }
        return;
    }
    if let Some(eq) = core.iter().position(|&b| b == b'=') {
        let key = core.get(..eq).unwrap_or_default();
        let has_value = core.len() > eq + 1;
        if has_value && is_key(key) {
            emit(out, core.get(..=eq).unwrap_or_default());
            return;
        }
    }
    if core_is_variable(core) {
        emit(out, b"");
    } else {
        out.extend_from_slice(tok);
    }
}

fn is_key(key: &[u8]) -> bool {
    !key.is_empty()
        && key
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn core_is_variable(core: &[u8]) -> bool {
    let (mut all_hex, mut hex_colon, mut hex_dash) = (true, true, true);
    let (mut colons, mut dashes) = (0usize, 0usize);
    let (mut slash, mut special) = (false, false);
    for (i, &b) in core.iter().enumerate() {
        if b.is_ascii_digit() {
            return true;
        }
        let hex = b.is_ascii_hexdigit();
        all_hex &= hex;
        hex_colon &= hex || b == b':';
        hex_dash &= hex || b == b'-';
        match b {
            b':' => colons += 1,
            b'-' => dashes += 1,
            b'/' => slash = true,
            // `\` anywhere, `@` inside, `<` (maybe `<*>`): looked at below.
            b'\\' | b'<' => special = true,
            b'@' if i > 0 && i + 1 < core.len() => return true,
            _ => {}
        }
    }
    if core.is_empty() {
        return false;
    }
    if special && (has_wildcard(core) || (core.contains(&b'\\') && core.len() > 1)) {
        return true;
    }
    if slash {
        if core.len() > 1
            && (core.starts_with(b"/") || core.starts_with(b"~/") || core.starts_with(b"./"))
            || core.starts_with(b"../")
            || core.windows(3).any(|w| w == b"://")
        {
            return true;
        }
        // `dir/file.ext`; `text/html`, `and/or` stay words.
        if let Some(last) = core.rsplit(|&b| b == b'/').next() {
            let inner_dot = last.iter().skip(1).any(|&b| b == b'.') && !last.ends_with(b".");
            if inner_dot && core.first() != Some(&b'/') {
                return true;
            }
        }
    }
    if let [d, b':', sep, ..] = core {
        if d.is_ascii_alphabetic() && (*sep == b'\\' || *sep == b'/') {
            return true;
        }
    }
    (all_hex && core.len() >= 8)
        || (hex_colon && colons >= 2)
        || (hex_dash && dashes == 4 && core.len() == 36)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn m(s: &str) -> String {
        mask(s.as_bytes())
    }

    #[test]
    fn masks_each_variable_kind() {
        let cases = [
            ("took 42 ms", "took <*> ms"),
            ("at 0x1f and 0x", "at <*> and <*>"),
            ("hash deadbeef abc123 cafe01", "hash <*> <*> <*>"),
            ("version v1.2.3 build 3.4.5-rc1", "version <*> build <*>"),
            ("done in 12ms, 3.5GB moved", "done in <*>, <*> moved"),
            ("id 123e4567-e89b-12d3-a456-426614174000", "id <*>"),
            ("from 10.0.0.1 and 10.0.0.1:8080.", "from <*> and <*>."),
            ("addr ::1 fe80::1 dead::beef", "addr <*> <*> <*>"),
            ("peer [2001:db8::1]:443 or [::1]", "peer <*> or [<*>]"),
            ("open /var/log/syslog: denied", "open <*>: denied"),
            (r"open C:\Windows\x.dll or C:/x", "open <*> or <*>"),
            (
                "run ./run.sh or ../x or ~/y src/main.rs",
                "run <*> or <*> or <*> <*>",
            ),
            ("fetch https://example.com/a?b=c now", "fetch <*> now"),
            ("mail alice@example.com sent", "mail <*> sent"),
            (
                r#"said "hello big world" and 'one two' ok"#,
                "said <*> and <*> ok",
            ),
            (r#"name="John Smith", x"#, "name=<*>, x"),
            (
                "user=42 user=alice (id=42) (42) 42, x=",
                "user=<*> user=<*> (id=<*>) (<*>) <*>, x=",
            ),
            ("explicit <*> and (<*>)", "explicit <*> and (<*>)"),
        ];
        for (input, want) in cases {
            assert_eq!(m(input), want, "input {input:?}");
        }
    }

    #[test]
    fn constant_words_stay() {
        for s in [
            "user alice not found",
            "content text/html and/or application/json",
            "error: don't retry, it's fine!",
            "facade accede decade",
            "std::io failed",
            "@param \"unterminated quote",
            "a == b",
        ] {
            assert_eq!(m(s), s);
        }
        assert!(!is_variable(b"alice"));
        assert!(!is_variable(b"(alice),"));
        assert!(is_variable(b"user=alice"));
        assert!(is_variable(b"(42),"));
        assert!(is_variable(b"<*>"));
    }

    #[test]
    fn masking_is_idempotent() {
        for s in [
            r#"a (id=42), [::1]:80 "x y" name='q r' /p/q: 0x1 <*> x=1; z"#,
            "user=<*> (<*>) <*>, [<*>] <*>:",
        ] {
            let once = m(s);
            assert_eq!(m(&once), once);
        }
    }

    // ---- grouping ----

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[self.below(xs.len() as u64) as usize]
        }
    }

    const NAMES: [&str; 50] = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
        "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
        "xavier", "yolanda", "zoe", "amber", "basil", "cedric", "delia", "edgar", "fiona",
        "gideon", "hazel", "igor", "jasper", "kira", "lionel", "maeve", "nestor", "opal", "percy",
        "quinn", "rosalind", "silas", "tamsin", "ulric", "vera", "wren", "yusuf", "zelda", "otto",
        "paloma", "remy",
    ];
    const CITIES: [&str; 12] = [
        "paris", "berlin", "madrid", "rome", "vienna", "prague", "lisbon", "dublin", "oslo",
        "warsaw", "athens", "zurich",
    ];
    const CLASSES: [&str; 6] = [
        "UserService",
        "OrderRepo",
        "Billing",
        "Gateway",
        "Mailer",
        "Auth",
    ];
    const METHODS: [&str; 5] = ["find", "save", "load", "charge", "send"];

    fn ip(r: &mut Rng) -> String {
        format!("10.{}.{}.{}", r.below(256), r.below(256), r.below(256))
    }
    fn hex(r: &mut Rng, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[r.below(16) as usize]))
            .collect()
    }
    fn uuid(r: &mut Rng) -> String {
        format!(
            "{}-{}-{}-{}-{}",
            hex(r, 8),
            hex(r, 4),
            hex(r, 4),
            hex(r, 4),
            hex(r, 12)
        )
    }

    type Gen = fn(&mut Rng) -> String;

    fn generators() -> Vec<(&'static str, Gen)> {
        vec![
            ("Connection refused to <*> after <*> ms", |r| {
                format!(
                    "Connection refused to {}:{} after {} ms",
                    ip(r),
                    r.below(65536),
                    r.below(5000)
                )
            }),
            ("User <*> failed to login from <*>", |r| {
                format!("User {} failed to login from {}", r.pick(&NAMES), ip(r))
            }),
            ("Failed to open file <*>: permission denied", |r| {
                format!(
                    "Failed to open file /var/data/{}/{}.log: permission denied",
                    r.pick(&NAMES),
                    r.below(100)
                )
            }),
            ("Payment <*> declined: card expired", |r| {
                format!("Payment {} declined: card expired", uuid(r))
            }),
            ("GET <*> returned <*>", |r| {
                format!(
                    "GET /api/v1/users/{} returned {}",
                    r.below(100_000),
                    [200, 404, 500][r.below(3) as usize]
                )
            }),
            ("disk <*> is <*>% full", |r| {
                format!("disk /dev/sda{} is {}% full", r.below(9), r.below(101))
            }),
            ("request_id=<*> upstream timed out (<*>)", |r| {
                format!(
                    "request_id={} upstream timed out ({}s)",
                    hex(r, 16),
                    r.below(60)
                )
            }),
            ("java.lang.NullPointerException at <*>)", |r| {
                let c = r.pick(&CLASSES);
                format!(
                    "java.lang.NullPointerException at com.acme.{c}.{}({c}.java:{})",
                    r.pick(&METHODS),
                    r.below(900)
                )
            }),
            ("Worker <*> exited with status <*>", |r| {
                format!(
                    "Worker {} exited with status {}",
                    r.pick(&NAMES),
                    r.below(256)
                )
            }),
            ("cache hit for key <*>", |r| {
                format!("cache hit for key user:{}", r.below(10_000))
            }),
            ("cache miss for key <*>", |r| {
                format!("cache miss for key user:{}", r.below(10_000))
            }),
            ("Session <*> expired for user <*>", |r| {
                format!("Session {} expired for user {}", hex(r, 24), r.pick(&NAMES))
            }),
            ("Sent <*> bytes to <*>", |r| {
                format!(
                    "Sent {} bytes to [2001:db8::{:x}]:{}",
                    r.below(1 << 20),
                    r.below(65536),
                    r.below(65536)
                )
            }),
            ("Retrying request to <*> (attempt <*> of <*>)", |r| {
                format!(
                    "Retrying request to https://{}.example.com/hook (attempt {} of 5)",
                    r.pick(&NAMES),
                    r.below(5)
                )
            }),
            ("Email sent to <*> with subject <*>", |r| {
                let words: Vec<&str> = (0..1 + r.below(4)).map(|_| r.pick(&NAMES)).collect();
                format!(
                    "Email sent to {}@example.com with subject \"{}\"",
                    r.pick(&NAMES),
                    words.join(" ")
                )
            }),
            ("Job <*> completed in <*>", |r| {
                format!(
                    "Job {} completed in {}.{}s",
                    r.pick(&NAMES),
                    r.below(60),
                    r.below(1000)
                )
            }),
            ("Loaded config version <*> from <*>", |r| {
                format!(
                    "Loaded config version {}.{}.{} from /etc/{}/app.toml",
                    r.below(3),
                    r.below(20),
                    r.below(50),
                    r.pick(&NAMES)
                )
            }),
            ("Backup of database <*> finished, size=<*>", |r| {
                format!(
                    "Backup of database {} finished, size={}MB",
                    r.pick(&NAMES),
                    r.below(90_000)
                )
            }),
            ("Order <*> shipped to <*>", |r| {
                format!(
                    "Order {} shipped to {}",
                    r.below(1_000_000),
                    r.pick(&CITIES)
                )
            }),
            ("Deleted <*> expired sessions", |r| {
                format!("Deleted {} expired sessions", r.below(1000))
            }),
            ("Scheduled task <*> will run at <*>", |r| {
                format!(
                    "Scheduled task {} will run at {:02}:{:02}:00",
                    r.pick(&NAMES),
                    r.below(24),
                    r.below(60)
                )
            }),
            ("Invalid token for client <*>: signature mismatch", |r| {
                format!(
                    "Invalid token for client {}: signature mismatch",
                    hex(r, 12)
                )
            }),
            ("Listening on <*>", |r| {
                format!("Listening on {}:{}", ip(r), r.below(65536))
            }),
            ("Thread <*> blocked for <*>", |r| {
                format!(
                    "Thread {}-{} blocked for {}ms",
                    r.pick(&NAMES),
                    r.below(64),
                    r.below(10_000)
                )
            }),
            ("Health check passed for service <*>", |r| {
                format!("Health check passed for service {}", r.pick(&NAMES))
            }),
            ("Health check failed for service <*>", |r| {
                format!("Health check failed for service {}", r.pick(&NAMES))
            }),
            ("Certificate for <*> expires in <*> days", |r| {
                format!(
                    "Certificate for {}.example.com expires in {} days",
                    r.pick(&NAMES),
                    r.below(90)
                )
            }),
            ("Rate limit exceeded for <*> on <*>", |r| {
                format!(
                    "Rate limit exceeded for {} on /api/{}",
                    ip(r),
                    r.pick(&NAMES)
                )
            }),
            ("Process <*> received signal SIGTERM", |r| {
                format!("Process {} received signal SIGTERM", r.below(40_000))
            }),
            ("Process <*> received signal SIGKILL", |r| {
                format!("Process {} received signal SIGKILL", r.below(40_000))
            }),
            ("Order <*> cancelled by <*>", |r| {
                format!(
                    "Order {} cancelled by {}",
                    r.below(1_000_000),
                    r.pick(&NAMES)
                )
            }),
        ]
    }

    const PER_TEMPLATE: usize = 200;

    /// (generator index, message) in a fixed random order.
    fn corpus(seed: u64) -> Vec<(usize, String)> {
        let gens = generators();
        let mut r = Rng(seed);
        let mut out: Vec<(usize, String)> = (0..gens.len())
            .flat_map(|g| std::iter::repeat_n(g, PER_TEMPLATE))
            .map(|g| (g, String::new()))
            .collect();
        // Fisher–Yates, then fill in the values.
        for i in (1..out.len()).rev() {
            let j = r.below(i as u64 + 1) as usize;
            out.swap(i, j);
        }
        for (g, msg) in out.iter_mut() {
            *msg = (gens[*g].1)(&mut r);
        }
        out
    }

    /// For each generator, the (canonical id → count) it was assigned.
    fn check_grouping(
        miner: &Miner,
        assigned: &[(usize, TemplateId, usize)],
    ) -> BTreeMap<String, usize> {
        let gens = generators();
        let mut per_gen: BTreeMap<usize, BTreeMap<TemplateId, usize>> = BTreeMap::new();
        for &(g, id, n) in assigned {
            *per_gen
                .entry(g)
                .or_default()
                .entry(miner.canonical(id))
                .or_default() += n;
        }
        let mut seen = BTreeSet::new();
        let mut texts = BTreeMap::new();
        for (g, ids) in &per_gen {
            let (want, _) = gens[*g];
            let described: Vec<String> = ids
                .iter()
                .map(|(id, n)| format!("{n}× {}", miner.template(*id)))
                .collect();
            assert_eq!(ids.len(), 1, "generator {want:?} split into {described:?}");
            let (&id, &n) = ids.iter().next().unwrap();
            assert_eq!(n, PER_TEMPLATE, "{want:?}");
            assert!(
                seen.insert(id),
                "generator {want:?} shares a template with another one"
            );
            assert_eq!(miner.template(id), want);
            texts.insert(miner.template(id).into_owned(), n);
        }
        assert_eq!(per_gen.len(), gens.len());
        assert_eq!(miner.len(), gens.len());
        texts
    }

    #[test]
    fn groups_one_template_per_generator() {
        for seed in [0x9E37_79B9_7F4A_7C15, 42, 7] {
            let mut miner = Miner::new(MinerConfig::default());
            let assigned: Vec<(usize, TemplateId, usize)> = corpus(seed)
                .iter()
                .map(|(g, msg)| (*g, miner.add(msg.as_bytes()), 1))
                .collect();
            check_grouping(&miner, &assigned);
            // Known shapes keep their id.
            for (g, msg) in corpus(seed ^ 1).iter().take(500) {
                let id = miner.add(msg.as_bytes());
                assert_eq!(miner.template(id), generators()[*g].0);
            }
            assert_eq!(miner.len(), generators().len());
        }
    }

    #[test]
    fn template_text_fed_back_lands_in_the_same_template() {
        let mut miner = Miner::new(MinerConfig::default());
        let ids: BTreeSet<TemplateId> = corpus(3)
            .iter()
            .map(|(_, msg)| miner.add(msg.as_bytes()))
            .collect();
        for id in ids {
            let text = miner.template(id).into_owned();
            assert_eq!(miner.add(text.as_bytes()), miner.canonical(id), "{text}");
        }
    }

    #[test]
    fn merging_two_miners_groups_like_one() {
        let corpus = corpus(11);
        let mut single = Miner::new(MinerConfig::default());
        let single_assigned: Vec<_> = corpus
            .iter()
            .map(|(g, msg)| (*g, single.add(msg.as_bytes()), 1))
            .collect();
        let single_texts = check_grouping(&single, &single_assigned);

        // By text, with counts: what a parallel analyzer does.
        let (mut a, mut b) = (
            Miner::new(MinerConfig::default()),
            Miner::new(MinerConfig::default()),
        );
        let mut assigned = Vec::new();
        let mut b_counts: BTreeMap<TemplateId, BTreeMap<usize, usize>> = BTreeMap::new();
        for (i, (g, msg)) in corpus.iter().enumerate() {
            if i % 3 == 0 {
                let id = b.add(msg.as_bytes());
                *b_counts
                    .entry(b.canonical(id))
                    .or_default()
                    .entry(*g)
                    .or_default() += 1;
            } else {
                assigned.push((*g, a.add(msg.as_bytes()), 1));
            }
        }
        let b_final: BTreeMap<TemplateId, BTreeMap<usize, usize>> =
            b_counts
                .into_iter()
                .fold(BTreeMap::new(), |mut acc, (id, gs)| {
                    let e: &mut BTreeMap<usize, usize> = acc.entry(b.canonical(id)).or_default();
                    for (g, n) in gs {
                        *e.entry(g).or_default() += n;
                    }
                    acc
                });
        let mut by_text = Vec::new();
        for (id, gs) in &b_final {
            let text = b.template(*id).into_owned();
            let into_a = a.add(text.as_bytes());
            for (g, n) in gs {
                by_text.push((*g, into_a, *n));
            }
        }
        assigned.extend(by_text);
        assert_eq!(check_grouping(&a, &assigned), single_texts);

        // `Miner::merge` does the same, deterministically.
        let chunk = |keep: fn(usize) -> bool| {
            let mut m = Miner::new(MinerConfig::default());
            for (i, (_, msg)) in corpus.iter().enumerate() {
                if keep(i) {
                    m.add(msg.as_bytes());
                }
            }
            m
        };
        let b = chunk(|i| i % 3 == 0);
        let mut merged = Vec::new();
        for _ in 0..2 {
            let mut a = chunk(|i| i % 3 != 0);
            let mapping = a.merge(&b);
            assert_eq!(mapping.len(), b.slots.len());
            for (j, &to) in mapping.iter().enumerate() {
                assert_eq!(a.template(to), b.template(j as TemplateId));
                assert_eq!(a.canonical(to), to);
            }
            let texts: Vec<(TemplateId, String)> =
                a.templates().map(|(id, t)| (id, t.into_owned())).collect();
            assert_eq!(
                texts
                    .iter()
                    .map(|(_, t)| t.clone())
                    .collect::<BTreeSet<_>>(),
                single_texts.keys().cloned().collect()
            );
            merged.push((mapping, texts));
        }
        assert_eq!(merged[0], merged[1]);
    }

    #[test]
    fn hit_and_miss_stay_apart_names_merge() {
        let mut miner = Miner::new(MinerConfig::default());
        let hit = miner.add(b"cache hit for key alpha");
        let miss = miner.add(b"cache miss for key beta");
        assert_ne!(hit, miss);
        let ids: BTreeSet<_> = NAMES[..6]
            .iter()
            .map(|n| miner.add(format!("user {n} logged in").as_bytes()))
            .collect();
        let canon: BTreeSet<_> = ids.iter().map(|&id| miner.canonical(id)).collect();
        assert_eq!(canon.len(), 1);
        let id = *canon.iter().next().unwrap();
        assert_eq!(miner.template(id), "user <*> logged in");
        assert_eq!(miner.add(b"user zoe logged in"), id);
        // An explicit `<*>` is evidence enough.
        let h = miner.add(b"host alpha down");
        assert_eq!(miner.add(b"host <*> down"), h);
        assert_eq!(miner.template(h), "host <*> down");
        assert_eq!(miner.add(b"host beta down"), h);
    }

    #[test]
    fn bounded_with_overflow() {
        let cfg = MinerConfig {
            max_templates: 5,
            ..MinerConfig::default()
        };
        let mut miner = Miner::new(cfg);
        let mut ids = Vec::new();
        for i in 1..=50 {
            let msg = vec!["word"; i].join(" ");
            ids.push(miner.add(msg.as_bytes()));
        }
        assert!(miner.len() <= 6);
        let other = ids[49];
        assert_eq!(miner.template(other), "<other>");
        assert_eq!(miner.add(b"brand new shape here"), other);
        assert_eq!(miner.template(ids[0]), "word");
        assert_eq!(miner.add(b"word"), ids[0]);
    }

    #[test]
    fn truncation_and_edge_inputs() {
        let cfg = MinerConfig {
            max_tokens: 3,
            ..MinerConfig::default()
        };
        let mut miner = Miner::new(cfg);
        let id = miner.add(b"a b c d e f");
        assert_eq!(miner.template(id), "a b c …");
        assert_eq!(miner.add(b"a b c x y"), id);
        assert_eq!(miner.add(miner.template(id).into_owned().as_bytes()), id);
        assert_ne!(miner.add(b"a b c"), id);

        let mut miner = Miner::new(MinerConfig::default());
        let empty = miner.add(b"");
        assert_eq!(miner.add(b"   \t\n "), empty);
        assert_eq!(miner.template(empty), "");
        let big = vec![b'z'; 1 << 20];
        let id = miner.add(&big);
        assert_eq!(miner.template(id).len(), 4096);
        let id = miner.add(&[0xff, 0xfe, b' ', 0x00, b'"', b'\'']);
        assert!(miner.template(id).contains('\u{fffd}'));
        assert_eq!(miner.template(999_999), "");
        let mut unbounded = Miner::new(MinerConfig {
            max_message_bytes: usize::MAX,
            max_tokens: usize::MAX,
            ..MinerConfig::default()
        });
        let id = unbounded.add(&big);
        assert_eq!(unbounded.template(id).len(), 1 << 20);
    }

    #[test]
    fn a_value_after_a_quoted_value_is_masked_too() {
        assert_eq!(mask(b"'':''"), "<*>");
        assert_eq!(mask(b"got 'a':'secret'"), "got <*>");
        assert_eq!(mask(b"said \"hi\","), "said <*>,");
    }

    proptest! {
        #[test]
        fn add_never_panics(msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..40),
                            probe in any::<u32>()) {
            let mut miner = Miner::new(MinerConfig {
                max_templates: 8,
                max_tokens: 10,
                max_message_bytes: 200,
                ..MinerConfig::default()
            });
            for msg in &msgs {
                let id = miner.add(msg);
                let _ = miner.template(id);
                prop_assert!(miner.len() <= 9);
            }
            let _ = miner.template(probe);
            let _ = miner.templates().count();
        }

        #[test]
        fn quick_classes_agree_with_full_masking(tok in "[a-fA-Fxz0-9:/=@<>*.,;()\\[\\]{}%!?`\\\\-]{1,40}") {
            let mut full = Vec::new();
            mask_into(tok.as_bytes(), None, &mut full);
            prop_assert_eq!(mask(tok.as_bytes()), String::from_utf8_lossy(&full).into_owned());
        }

        #[test]
        fn template_text_is_a_fixed_point(words in proptest::collection::vec(
            "[a-z]{1,5}|[0-9]{1,4}|\"|'|=|\\(|\\)|,|:|\\[|\\]|<\\*>|/[a-z]{1,3}|x=[a-z0-9]{1,3}", 1..12)) {
            let text = words.concat();
            let spaced = words.join(" ");
            for s in [text, spaced] {
                let once = mask(s.as_bytes());
                prop_assert_eq!(mask(once.as_bytes()), once.clone(), "input {:?}", s);
            }
        }
    }
}
