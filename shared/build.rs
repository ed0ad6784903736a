//! Lays the embedded country table out ready to binary-search, so no process decodes it at start:
//! `geo/country-ranges.bin.gz` (format in `scripts/geo/build-geo-data.py`) is decompressed at
//! build time into four columns of big-endian values in `OUT_DIR`, which `src/geo.rs` includes.

use std::io::Read;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=geo/country-ranges.bin.gz");
    let gz = std::fs::read("geo/country-ranges.bin.gz").expect("geo/country-ranges.bin.gz");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut raw).expect("valid gzip");
    let mut rest = raw.strip_prefix(b"IDCGEO1\n").expect("IDCGEO1 header");
    let mut take = |n: usize| -> Vec<u8> {
        let (head, tail) = rest.split_at(n);
        rest = tail;
        head.to_vec()
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    for (family, width) in [("v4", 4), ("v6", 16)] {
        let n = u32::from_be_bytes(take(4).try_into().expect("count")) as usize;
        let (mut starts, mut codes) = (Vec::with_capacity(n * width), Vec::with_capacity(n * 2));
        for _ in 0..n {
            starts.extend(take(width));
            codes.extend(take(2));
        }
        std::fs::write(out.join(format!("{family}-starts.bin")), starts).expect("write");
        std::fs::write(out.join(format!("{family}-codes.bin")), codes).expect("write");
    }
    assert!(rest.is_empty(), "trailing bytes in the country table");
}
