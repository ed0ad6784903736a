//! An S3 log file split into its records, and each record judged read or unread, in one
//! validating pass at close to the speed of memory.
//!
//! A CloudTrail S3 log file is `{"Records":[{…},{…},…]}`, written without a byte of whitespace
//! outside strings. [`skim`] reads it 64 bytes at a time (AVX-512 or AVX2; without them the
//! caller reads the file the full way): each block is classified into bit masks (quotes, backslashes, brackets, colons,
//! commas, control bytes), strings are found with a prefix XOR of the unescaped quotes, and JSON's
//! grammar is checked on the masks, not byte by byte:
//!
//! - what may follow each token (`{` a key or `}`; `:` a value; `,` a key in an object, a value
//!   in an array; a string `:` `,` `}` or `]`; …), by shifting one mask onto another;
//! - that a string is followed by `:` exactly when it stands where a key goes, by a running parity
//!   of key starts and colons that must be even outside strings;
//! - brackets matched by kind on a small stack, walked bracket by bracket (a record has a dozen);
//! - scalars (`true`, `false`, `null`, numbers) and escapes checked where they are, which is rare.
//!
//! It accepts only what serde_json accepts, and splits it into the same records (the soundness
//! property test below feeds it mutated files). It refuses to decide, and the caller takes the
//! full path, for anything unusual: whitespace between tokens (pretty-printed files), another
//! outer shape, a record that is not an object, nesting deeper than [`MAX_DEPTH`].
//!
//! On the way it notes, per record, the top-level `eventSource`, `eventName` and `eventTime`
//! (from colons at the records' own depth) and the needles of `signin::prefilter` (`\u`,
//! `AWSReservedSSO`, `onBehalfOf`, from a rare byte pair), so that each record's verdict is the
//! prefilter's own, without a second look at the record (property-tested against
//! [`super::prefilter::unread`]).

use std::ops::Range;

use super::prefilter::{NEEDLES, unread_given};

/// The deepest nesting the skim follows (an outer object, the `Records` array, a record and its
/// own nesting); deeper files take the full path.
pub const MAX_DEPTH: u32 = 48;

/// The opening every skimmed file has.
const OPENING: &[u8] = b"{\"Records\":[";

/// A log file skimmed: its records in order, and whether it is ASCII (then it needs no UTF-8
/// check).
#[derive(Debug, Default, PartialEq)]
pub struct Skim {
    /// The records, in the file's order.
    pub records: Vec<Skimmed>,
    /// No byte of the file is above 0x7f.
    pub ascii: bool,
}

/// One record: where it lies in the text, and whether no check reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Skimmed {
    /// The record's bytes.
    pub span: Range<usize>,
    /// No check reads it (`signin::prefilter`).
    pub unread: bool,
}

/// Which top-level key a colon closes.
#[derive(Clone, Copy, PartialEq)]
enum Key {
    Source,
    Name,
    Time,
}

/// The bit masks of one 64-byte block: bit `i` says something of byte `i`.
#[derive(Default, Clone, Copy, Debug, PartialEq)]
struct Classes {
    quote: u64,
    backslash: u64,
    /// `{` or `[`.
    open: u64,
    /// `}` or `]`.
    close: u64,
    /// Bit 5 of the byte: tells `{` `}` from `[` `]`.
    curly: u64,
    colon: u64,
    comma: u64,
    /// A byte of at most 0x20 (controls and the space).
    low: u64,
    space: u64,
    /// A byte of 0x80 or more.
    high: u64,
    /// `e`: a key ending `e"` may be one of the three read.
    e: u64,
    /// Where a needle may be: `\u`, the `dS` of `AWSReservedSSO`, the `nB` of `onBehalfOf`.
    needle: u64,
}

/// The classes of `b[..64]`, with `b[64]` looked at for the byte pairs: the plain version, and
/// the reference the AVX2 one is tested against.
fn classify_plain(b: &[u8]) -> Classes {
    let mut c = Classes::default();
    for i in 0..64 {
        let (x, next) = (b[i], b[i + 1]);
        let bit = 1u64 << i;
        let set = |m: &mut u64, yes: bool| {
            if yes {
                *m |= bit
            }
        };
        set(&mut c.quote, x == b'"');
        set(&mut c.backslash, x == b'\\');
        set(&mut c.open, x | 0x20 == b'{');
        set(&mut c.close, x | 0x20 == b'}');
        set(&mut c.curly, x & 0x20 != 0);
        set(&mut c.colon, x == b':');
        set(&mut c.comma, x == b',');
        set(&mut c.low, x <= 0x20);
        set(&mut c.space, x == b' ');
        set(&mut c.high, x >= 0x80);
        set(&mut c.e, x == b'e');
        set(
            &mut c.needle,
            (x == b'\\' && next == b'u')
                || (x == b'd' && next == b'S')
                || (x == b'n' && next == b'B'),
        );
    }
    c
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::Classes;

    /// [`super::classify_plain`] with AVX2.
    ///
    /// # Safety
    /// The CPU has AVX2, and `p` points at 65 readable bytes.
    #[target_feature(enable = "avx2")]
    pub unsafe fn classify(p: *const u8) -> Classes {
        let mut c = Classes::default();
        for h in 0..2 {
            // SAFETY: the caller gives 65 readable bytes: 32 at h·32 and 32 at h·32 + 1.
            let (v, v1) = unsafe {
                (
                    _mm256_loadu_si256(p.add(h * 32).cast()),
                    _mm256_loadu_si256(p.add(h * 32 + 1).cast()),
                )
            };
            let shift = 32 * h;
            macro_rules! eq {
                ($x:expr, $c:expr) => {
                    _mm256_cmpeq_epi8($x, _mm256_set1_epi8($c as i8))
                };
            }
            macro_rules! bits {
                ($x:expr) => {
                    (_mm256_movemask_epi8($x) as u32 as u64) << shift
                };
            }
            let backslash = eq!(v, b'\\');
            let folded = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
            c.quote |= bits!(eq!(v, b'"'));
            c.backslash |= bits!(backslash);
            c.open |= bits!(eq!(folded, b'{'));
            c.close |= bits!(eq!(folded, b'}'));
            c.curly |= bits!(_mm256_slli_epi16(v, 2));
            c.colon |= bits!(eq!(v, b':'));
            c.comma |= bits!(eq!(v, b','));
            c.low |= bits!(_mm256_cmpeq_epi8(_mm256_min_epu8(v, _mm256_set1_epi8(0x20)), v));
            c.space |= bits!(eq!(v, b' '));
            c.high |= bits!(v);
            c.e |= bits!(eq!(v, b'e'));
            let pairs = _mm256_or_si256(
                _mm256_and_si256(backslash, eq!(v1, b'u')),
                _mm256_or_si256(
                    _mm256_and_si256(eq!(v, b'd'), eq!(v1, b'S')),
                    _mm256_and_si256(eq!(v, b'n'), eq!(v1, b'B')),
                ),
            );
            c.needle |= bits!(pairs);
        }
        c
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::Classes;

    /// [`super::classify_plain`] with AVX-512 (BW): one compare a class, straight into a mask.
    ///
    /// # Safety
    /// The CPU has AVX-512 F and BW, and `p` points at 65 readable bytes.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn classify(p: *const u8) -> Classes {
        // SAFETY: the caller gives 65 readable bytes: 64 at 0 and 64 at 1.
        let (v, v1) =
            unsafe { (_mm512_loadu_si512(p.cast()), _mm512_loadu_si512(p.add(1).cast())) };
        macro_rules! eq {
            ($x:expr, $c:expr) => {
                _mm512_cmpeq_epi8_mask($x, _mm512_set1_epi8($c as i8))
            };
        }
        let backslash = eq!(v, b'\\');
        let folded = _mm512_or_si512(v, _mm512_set1_epi8(0x20));
        Classes {
            quote: eq!(v, b'"'),
            backslash,
            open: eq!(folded, b'{'),
            close: eq!(folded, b'}'),
            curly: _mm512_test_epi8_mask(v, _mm512_set1_epi8(0x20)),
            colon: eq!(v, b':'),
            comma: eq!(v, b','),
            low: _mm512_cmple_epu8_mask(v, _mm512_set1_epi8(0x20)),
            space: eq!(v, b' '),
            high: _mm512_movepi8_mask(v),
            e: eq!(v, b'e'),
            needle: (backslash & eq!(v1, b'u'))
                | (eq!(v, b'd') & eq!(v1, b'S'))
                | (eq!(v, b'n') & eq!(v1, b'B')),
        }
    }
}

/// The widest classifier this CPU runs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Simd {
    Plain,
    Avx2,
    Avx512,
}

fn best_simd() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("pclmulqdq")
        {
            return Simd::Avx512;
        }
        if std::is_x86_feature_detected!("avx2") {
            return Simd::Avx2;
        }
    }
    Simd::Plain
}

/// The classes of `b[..64]` (`b` has 65 bytes), with the instructions `simd` names.
#[cfg(test)]
fn classify(b: &[u8], simd: Simd) -> Classes {
    assert!(b.len() >= 65);
    #[cfg(target_arch = "x86_64")]
    match simd {
        // SAFETY: the CPU's features were detected by `best_simd`, and `b` holds 65 bytes.
        Simd::Avx512 => return unsafe { avx512::classify(b.as_ptr()) },
        // SAFETY: as above.
        Simd::Avx2 => return unsafe { avx2::classify(b.as_ptr()) },
        Simd::Plain => {}
    }
    let _ = simd;
    classify_plain(b)
}

/// How a block is classified and a prefix XOR taken: the skim's loop is compiled once per
/// instruction set, with these inlined.
trait Blocks {
    /// The classes of `b[..64]`; `b` has 65 bytes.
    fn classify(b: &[u8]) -> Classes;
    fn prefix_xor(x: u64) -> u64 {
        prefix_xor(x)
    }
}

struct Plain;

impl Blocks for Plain {
    #[inline(always)]
    fn classify(b: &[u8]) -> Classes {
        classify_plain(b)
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Blocks for Avx2 {
    #[inline(always)]
    fn classify(b: &[u8]) -> Classes {
        assert!(b.len() >= 65);
        // SAFETY: only called from `skim_avx2`, whose caller detected AVX2; `b` holds 65 bytes.
        unsafe { avx2::classify(b.as_ptr()) }
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx512;

#[cfg(target_arch = "x86_64")]
impl Blocks for Avx512 {
    #[inline(always)]
    fn classify(b: &[u8]) -> Classes {
        assert!(b.len() >= 65);
        // SAFETY: only called from `skim_avx512`, whose caller detected AVX-512 F and BW; `b`
        // holds 65 bytes.
        unsafe { avx512::classify(b.as_ptr()) }
    }

    #[inline(always)]
    fn prefix_xor(x: u64) -> u64 {
        use std::arch::x86_64::*;
        // SAFETY: as above; PCLMULQDQ was detected with them.
        unsafe {
            let product = _mm_clmulepi64_si128(_mm_set_epi64x(0, x as i64), _mm_set1_epi8(-1), 0);
            _mm_cvtsi128_si64(product) as u64
        }
    }
}

/// [`skim_blocks`] with AVX2.
///
/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn skim_avx2(text: &[u8]) -> Option<Skim> {
    skim_blocks::<Avx2>(text)
}

/// [`skim_blocks`] with AVX-512.
///
/// # Safety
/// The CPU has AVX-512 F and BW, and PCLMULQDQ.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,pclmulqdq")]
unsafe fn skim_avx512(text: &[u8]) -> Option<Skim> {
    skim_blocks::<Avx512>(text)
}

/// Each bit set to the XOR of itself and every bit below it.
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// Bits `from..to` (both at most 64; none when `from >= to`), without a branch.
#[inline(always)]
fn span_bits(from: u32, to: u32) -> u64 {
    let below = |n: u32| ((1u128 << n) - 1) as u64;
    below(to) & !below(from)
}

/// The characters escaped by a backslash (simdjson's odd-run rule): `backslash` the block's
/// backslashes, `carry` whether the block's first byte is escaped (updated for the next block).
fn escaped_bits(backslash: u64, carry: &mut u64) -> u64 {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let backslash = backslash & !*carry;
    let follows_escape = (backslash << 1) | *carry;
    let odd_starts = backslash & !EVEN & !follows_escape;
    let (even_starts, overflow) = odd_starts.overflowing_add(backslash);
    *carry = overflow as u64;
    let invert = even_starts << 1;
    (EVEN ^ invert) & follows_escape
}

/// A JSON scalar exactly as serde_json accepts it: `true`, `false`, `null` or a number.
fn scalar_ok(t: &[u8]) -> bool {
    if matches!(t, b"true" | b"false" | b"null") {
        return true;
    }
    let digits = |t: &[u8], at: &mut usize| {
        let from = *at;
        while *at < t.len() && t[*at].is_ascii_digit() {
            *at += 1;
        }
        *at > from
    };
    let mut at = usize::from(t.first() == Some(&b'-'));
    match t.get(at) {
        Some(b'0') => at += 1,
        Some(b'1'..=b'9') => {
            digits(t, &mut at);
        }
        _ => return false,
    }
    if t.get(at) == Some(&b'.') {
        at += 1;
        if !digits(t, &mut at) {
            return false;
        }
    }
    if matches!(t.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(t.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        if !digits(t, &mut at) {
            return false;
        }
    }
    at == t.len()
}

/// A byte that is part of a scalar: not a quote, a structural byte, a control or a space.
fn scalar_byte(x: u8) -> bool {
    !matches!(x, b'"' | b'{' | b'}' | b'[' | b']' | b':' | b',') && x > 0x20
}

/// The masks of the previous block that the next one looks back at.
#[derive(Default, Clone, Copy)]
struct Prev {
    value_intro: u64,
    key_intro: u64,
    scalar: u64,
    value_end_or_open: u64,
    open: u64,
    e: u64,
}

impl Prev {
    /// Before the first block: as if a value could start (the outer `{`).
    fn start() -> Self {
        Prev { value_intro: 1 << 63, ..Prev::default() }
    }
}

/// `x` moved one byte on: bit `i` set when byte `i - 1` is in `x` (`prev` the block before).
fn after(x: u64, prev: u64) -> u64 {
    (x << 1) | (prev >> 63)
}

/// The records of a CloudTrail S3 log file and each one's verdict, or `None` when the text is not
/// such a file written compactly (the caller then reads it the full way; see the module header).
///
/// Only with SIMD: the plain classifier is the reference the SIMD ones are tested against, and
/// at about 160 MB/s it is slower than serde_json's split, so without AVX2 (an arm64 function)
/// every file takes the full path.
pub fn skim(text: &[u8]) -> Option<Skim> {
    match simd() {
        Simd::Plain => None,
        simd => skim_with(text, simd),
    }
}

/// Whether [`skim`] runs on this CPU.
pub fn available() -> bool {
    simd() != Simd::Plain
}

fn simd() -> Simd {
    static SIMD: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
    *SIMD.get_or_init(best_simd)
}

fn skim_with(text: &[u8], simd: Simd) -> Option<Skim> {
    #[cfg(target_arch = "x86_64")]
    match simd {
        // SAFETY: `best_simd` detected the features (tests pass only what it found).
        Simd::Avx512 => return unsafe { skim_avx512(text) },
        // SAFETY: as above.
        Simd::Avx2 => return unsafe { skim_avx2(text) },
        Simd::Plain => {}
    }
    let _ = simd;
    skim_blocks::<Plain>(text)
}

#[inline(always)]
fn skim_blocks<B: Blocks>(text: &[u8]) -> Option<Skim> {
    let len = text.iter().rposition(|b| !b.is_ascii_whitespace())? + 1;
    if !text.starts_with(OPENING) || !text[..len].ends_with(b"]}") || len > u32::MAX as usize {
        return None;
    }
    let mut walk = Walk { len, ..Walk::default() };
    let mut rare = Rare::default();
    let mut high = 0u64;
    let mut prev = Prev::start();
    let (mut escape_carry, mut in_string, mut key_parity) = (0u64, 0u64, 0u64);
    let mut at = 0usize;
    while at < len {
        let c = if at + 65 <= text.len() {
            B::classify(&text[at..at + 65])
        } else {
            let n = (text.len() - at).min(64);
            let mut pad = [b' '; 128];
            pad[..n].copy_from_slice(&text[at..at + n]);
            classify_plain(&pad)
        };
        let valid = if len - at >= 64 { !0 } else { (1u64 << (len - at)) - 1 };
        high |= c.high & valid;

        // Strings: the quotes no backslash escapes open and close them.
        let backslash = c.backslash & valid;
        let escaped = if backslash == 0 && escape_carry == 0 {
            0
        } else {
            escaped_bits(backslash, &mut escape_carry)
        };
        let quotes = c.quote & !escaped & valid;
        let inside = B::prefix_xor(quotes) ^ in_string;
        in_string = ((inside as i64) >> 63) as u64;
        let outside = !inside & valid;
        let opening_quote = quotes & inside;
        let closing_quote = quotes & !inside;
        // No control byte anywhere, no space between tokens.
        if c.low & valid & !(inside & c.space) != 0 {
            return None;
        }
        let open = c.open & outside;
        let close = c.close & outside;
        let colon = c.colon & outside;
        let comma = c.comma & outside;
        let scalar = valid & !(inside | quotes | open | close | colon | comma);
        let (lbrace, lbracket) = (open & c.curly, open & !c.curly);

        let depths = walk.block(at, open, close, c.curly)?;
        // What may come before each token (so every pair of neighbours is checked once): a
        // string after `{` `[` `:` `,`; a scalar's bytes after a value's opening or its own
        // bytes; `{` `[` where a value goes; `}` `]` after a value or an opening; `,` after a
        // value. A colon's place is the parity's (below).
        let comma_array = comma & depths.array;
        let value_intro = colon | lbracket | comma_array;
        let key_intro = lbrace | (comma & !depths.array);
        let value_end = closing_quote | scalar | close;
        let after_value_intro = after(value_intro, prev.value_intro);
        let after_key_intro = after(key_intro, prev.key_intro);
        let after_scalar = after(scalar, prev.scalar);
        let mut bad = (opening_quote & !(after_value_intro | after_key_intro))
            | (scalar & !(after_value_intro | after_scalar))
            | (open & !after_value_intro)
            | (close & !after(value_end | open, prev.value_end_or_open))
            | (comma & !after(value_end, prev.value_end_or_open & !prev.open))
            | (depths.records & !comma);
        // A string is followed by a colon exactly when it stands where a key goes, and a colon
        // follows such a string: the parity of key starts and colons is even everywhere outside
        // strings but on closing quotes.
        let key_starts = opening_quote & after_key_intro;
        let parity = B::prefix_xor(key_starts ^ colon) ^ key_parity;
        key_parity = ((parity as i64) >> 63) as u64;
        bad |= parity & outside & !closing_quote;
        if bad & valid != 0 {
            return None;
        }

        // The rare things are noted here and looked at after the last block: scalars, escapes,
        // needles, the keys read.
        let starts = scalar & !after_scalar;
        let needles = c.needle & valid;
        let keys = colon & depths.record_top & ((c.e << 2) | (prev.e >> 62));
        if starts | escaped | needles | keys != 0 {
            for (mut bits, into) in [
                (starts, &mut rare.scalars),
                (escaped, &mut rare.escapes),
                (needles, &mut rare.needles),
                (keys, &mut rare.keys),
            ] {
                while bits != 0 {
                    into.push(at + bits.trailing_zeros() as usize);
                    bits &= bits - 1;
                }
            }
        }
        prev = Prev {
            value_intro,
            key_intro,
            scalar,
            value_end_or_open: value_end | open,
            open,
            e: c.e,
        };
        at += 64;
    }
    if walk.depth != 0 || in_string != 0 || !rare.valid(text, len) {
        return None;
    }
    rare.found(text, &mut walk);
    let records = walk.verdicts(text);
    Some(Skim { records, ascii: high == 0 })
}

/// Where the rare things are: the starts of scalars, escaped characters, possible needles, colons
/// that may close a key read.
#[derive(Default)]
struct Rare {
    scalars: Vec<usize>,
    escapes: Vec<usize>,
    needles: Vec<usize>,
    keys: Vec<usize>,
}

impl Rare {
    /// Every scalar and every escape is one JSON allows.
    fn valid(&self, text: &[u8], len: usize) -> bool {
        let scalars = self.scalars.iter().all(|&from| {
            let to =
                text[from..len].iter().position(|&x| !scalar_byte(x)).map_or(len, |n| from + n);
            scalar_ok(&text[from..to])
        });
        scalars
            && self.escapes.iter().all(|&i| match text.get(i) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => true,
                Some(b'u') => {
                    text.get(i + 1..i + 5).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
                }
                _ => false,
            })
    }

    /// The needles and keys read, for [`Walk::verdicts`]. The text is valid compact JSON by now,
    /// so a key's opening quote follows `{` or `,`.
    fn found(self, text: &[u8], walk: &mut Walk) {
        walk.needles = self
            .needles
            .into_iter()
            .filter(|&i| {
                let pair = text.get(i..i + 2);
                NEEDLES.iter().any(|n| {
                    n.windows(2).position(|w| Some(w) == pair).is_some_and(|lead| {
                        i >= lead && text.get(i - lead..i - lead + n.len()) == Some(*n)
                    })
                })
            })
            .collect();
        const KEYS: [(&[u8], Key); 3] = [
            (b"\"eventSource\"", Key::Source),
            (b"\"eventName\"", Key::Name),
            (b"\"eventTime\"", Key::Time),
        ];
        walk.keys = self
            .keys
            .into_iter()
            .filter_map(|i| {
                KEYS.iter()
                    .find(|(k, _)| {
                        i > k.len()
                            && &text[i - k.len()..i] == *k
                            && matches!(text[i - k.len() - 1], b'{' | b',')
                    })
                    .map(|&(_, key)| (i, key))
            })
            .collect();
    }
}

/// Where a block's bytes stand in the nesting.
struct Depths {
    /// The innermost container is an array.
    array: u64,
    /// At the `Records` array's own level, between records.
    records: u64,
    /// At a record's own top level.
    record_top: u64,
}

/// The bracket walk across blocks, and what it found.
#[derive(Default)]
struct Walk {
    len: usize,
    depth: u32,
    /// The open containers, innermost in bit 0: set for an array.
    arrays: u64,
    record_start: usize,
    spans: Vec<Range<usize>>,
    keys: Vec<(usize, Key)>,
    needles: Vec<usize>,
}

impl Walk {
    /// Follows the block's brackets in order; `None` on a mismatch or an unexpected shape.
    /// Inside records (depth 3 and deeper) a bracket is followed without a branch; the rare
    /// steps at the file's and records' own levels take [`Walk::edge`].
    #[inline(always)]
    fn block(&mut self, at: usize, open: u64, close: u64, curly: u64) -> Option<Depths> {
        let mut brackets = open | close;
        let mut d = Depths { array: 0, records: 0, record_top: 0 };
        let mut from = 0u32;
        let mut bad = false;
        loop {
            let i = if brackets == 0 { 64 } else { brackets.trailing_zeros() };
            let before = span_bits(from, i);
            let depth = self.depth;
            d.array |= before & (self.arrays & 1).wrapping_neg();
            d.records |= before & u64::from(depth == 2).wrapping_neg();
            d.record_top |= before & u64::from(depth == 3).wrapping_neg();
            if i == 64 {
                return (!bad).then_some(d);
            }
            let bit = 1u64 << i;
            let is_open = open & bit != 0;
            let is_array = u64::from(curly & bit == 0);
            if depth <= 2 || (depth == 3 && !is_open) {
                self.edge(at + i as usize, is_open, is_array)?;
            } else {
                // Opening: deeper than followed is refused. Closing: the kind must match.
                bad |= if is_open { depth >= MAX_DEPTH } else { self.arrays & 1 != is_array };
                self.arrays =
                    if is_open { (self.arrays << 1) | is_array } else { self.arrays >> 1 };
                self.depth = if is_open { depth + 1 } else { depth - 1 };
            }
            from = i + 1;
            brackets &= brackets - 1;
        }
    }

    /// A bracket at the file's or a record's own level: the outer `{`, `[`, `]`, `}` where they
    /// must be, a record's `{` (a record is an object) and its `}`.
    #[cold]
    fn edge(&mut self, pos: usize, is_open: bool, is_array: u64) -> Option<()> {
        if is_open {
            let expected = match self.depth {
                0 => pos == 0,
                1 => pos == OPENING.len() - 1,
                _ => is_array == 0,
            };
            if !expected {
                return None;
            }
            if self.depth == 2 {
                self.record_start = pos;
            }
            self.arrays = (self.arrays << 1) | is_array;
            self.depth += 1;
            return Some(());
        }
        if self.depth == 0 || self.arrays & 1 != is_array {
            return None;
        }
        self.arrays >>= 1;
        self.depth -= 1;
        match self.depth {
            0 => (pos == self.len - 1).then_some(()),
            1 => (pos == self.len - 2).then_some(()),
            _ => {
                self.spans.push(self.record_start..pos + 1);
                Some(())
            }
        }
    }

    /// Each record's verdict from the keys and needles found in it.
    fn verdicts(self, text: &[u8]) -> Vec<Skimmed> {
        let (mut keys, mut needles) = (self.keys.iter().peekable(), self.needles.iter().peekable());
        self.spans
            .into_iter()
            .map(|span| {
                let mut needle = false;
                while needles.next_if(|&&n| n < span.end).is_some() {
                    needle = true;
                }
                let mut found: [Option<&[u8]>; 3] = [None; 3];
                let mut plain = !needle;
                while let Some(&(colon, key)) = keys.next_if(|(k, _)| *k < span.end) {
                    let slot = &mut found[key as usize];
                    let value = string_value(text, colon + 1);
                    if slot.is_some() || value.is_none() {
                        plain = false;
                    }
                    *slot = value;
                }
                let unread = plain && unread_given(found[0], found[1], found[2]);
                Skimmed { span, unread }
            })
            .collect()
    }
}

/// The string value starting at `at`, when it is a string without escapes.
fn string_value(text: &[u8], at: usize) -> Option<&[u8]> {
    if text.get(at) != Some(&b'"') {
        return None;
    }
    let end = at + 1 + memchr::memchr2(b'"', b'\\', &text[at + 1..])?;
    (text[end] == b'"').then(|| &text[at + 1..end])
}

#[cfg(test)]
#[path = "skim_tests.rs"]
mod tests;
