//! Whole gzip inputs inflated in one call with libdeflate, the fastest inflate we know of: a
//! CloudTrail log file is one gzip member of a few megabytes at most, and the scan spends less
//! time decompressing it this way than streaming it through zlib.

/// The largest output inflated in one call: a CloudTrail log file is a few megabytes.
pub const MAX_WHOLE_OUTPUT: usize = 256 << 20;

/// A single-member gzip inflated in one call; `None` when it is not exactly one intact member
/// (several members, trailing bytes, damage, a trailer that lies about the size): the streaming
/// reader then reads it and decides what is damaged.
pub fn gzip_whole(gz: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    gzip_whole_into(gz, &mut out).then_some(out)
}

/// [`gzip_whole`] into `out` (its old contents replaced, its memory reused): `false` when the
/// input is not exactly one intact member, and then `out` is empty.
///
/// The old contents are overwritten, not zeroed first: only growth beyond them is zero-filled,
/// so a scan of same-sized log files writes each output byte once (inflate's), not twice.
pub fn gzip_whole_into(gz: &[u8], out: &mut Vec<u8>) -> bool {
    let whole = inflate_into(gz, out).is_some();
    if !whole {
        out.clear();
    }
    whole
}

fn inflate_into(gz: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let at = gz.len().checked_sub(4)?;
    let size = u32::from_le_bytes(gz[at..].try_into().ok()?) as usize;
    // A trailer can claim anything: at most 1,032× the input (deflate's best ratio) is believed,
    // and a larger output streams (its memory bounded by the reader, not by the claim).
    if size == 0 || size > gz.len().saturating_mul(1_032) || size > MAX_WHOLE_OUTPUT {
        return None;
    }
    // Truncates, or zero-fills only the growth: libdeflate overwrites all `size` bytes.
    out.resize(size, 0);
    let (mut used, mut written) = (0usize, 0usize);
    // SAFETY: the decompressor is allocated, used once and freed here; `gz` and `out` are live
    // slices whose lengths are passed with them; libdeflate writes at most `out.len()` bytes and
    // the two counts through the valid pointers given.
    let result = unsafe {
        let d = libdeflate_sys::libdeflate_alloc_decompressor();
        if d.is_null() {
            return None;
        }
        let r = libdeflate_sys::libdeflate_gzip_decompress_ex(
            d,
            gz.as_ptr().cast(),
            gz.len(),
            out.as_mut_ptr().cast(),
            out.len(),
            &mut used,
            &mut written,
        );
        libdeflate_sys::libdeflate_free_decompressor(d);
        r
    };
    let whole = result == libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS
        && used == gz.len()
        && written == size;
    whole.then_some(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gz(text: &str) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn one_intact_member_only() {
        let one = gz("{\"Records\":[{\"eventID\":\"1\"}]}\n");
        assert_eq!(
            gzip_whole(&one).as_deref(),
            Some(&b"{\"Records\":[{\"eventID\":\"1\"}]}\n"[..])
        );
        let mut two = one.clone();
        two.extend(&one);
        assert_eq!(gzip_whole(&two), None, "a second member is not dropped");
        let mut trailing = one.clone();
        trailing.extend(b"\n\n");
        assert_eq!(gzip_whole(&trailing), None);
        let mut flipped = one.clone();
        flipped[12] ^= 0x40;
        assert_eq!(gzip_whole(&flipped), None);
        assert_eq!(gzip_whole(&one[..one.len() - 6]), None);
        let mut lying = one.clone();
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(gzip_whole(&lying), None);
        assert_eq!(gzip_whole(&[]), None);
    }

    /// The reused buffer holds exactly the newest output, whatever the one before was, and
    /// nothing after a failure.
    #[test]
    fn a_reused_buffer_holds_only_the_newest_output() {
        let long = "{\"Records\":[".to_owned() + &"{\"eventID\":\"x\"},".repeat(500) + "{}]}";
        let short = "{\"Records\":[]}";
        let mut out = Vec::new();
        assert!(gzip_whole_into(&gz(&long), &mut out));
        assert_eq!(out, long.as_bytes());
        assert!(gzip_whole_into(&gz(short), &mut out));
        assert_eq!(out, short.as_bytes(), "shorter: the rest of the longer one is gone");
        assert!(gzip_whole_into(&gz(&long), &mut out));
        assert_eq!(out, long.as_bytes(), "longer again");
        let mut damaged = gz(&long);
        let n = damaged.len();
        damaged[n / 2] ^= 0xff;
        assert!(!gzip_whole_into(&damaged, &mut out));
        assert!(out.is_empty(), "nothing of a failed inflate, nor of the one before, is left");
        let mut lying = gz(short);
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&0u32.to_le_bytes());
        assert!(gzip_whole_into(&gz(short), &mut out));
        assert!(!gzip_whole_into(&lying, &mut out));
        assert!(out.is_empty(), "a refused trailer leaves nothing either");
    }
}
