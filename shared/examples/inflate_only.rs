//! The floor the sign-in scan is measured against: decompressing the same log files, and nothing
//! else, with libdeflate (the fastest inflate we know of), one file after another on one core.
//!
//! `cargo run --release -p idc-guard-core --example inflate_only -- FILE...` prints the files,
//! the bytes inflated and the seconds taken.

fn main() -> std::io::Result<()> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let started = std::time::Instant::now();
    let mut inflater = libdeflater::Decompressor::new();
    let (mut read, mut inflated) = (0usize, 0usize);
    let mut out = Vec::new();
    for f in &files {
        let gz = std::fs::read(f)?;
        read += gz.len();
        let size = gz.len().checked_sub(4).map_or(0, |at| {
            u32::from_le_bytes([gz[at], gz[at + 1], gz[at + 2], gz[at + 3]]) as usize
        });
        out.resize(size.max(1), 0);
        let n = inflater
            .gzip_decompress(&gz, &mut out)
            .map_err(|e| std::io::Error::other(format!("{f}: {e:?}")))?;
        inflated += n;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "inflate only (libdeflate, 1 core): {} files, {:.1} MB gzip -> {:.1} MB JSON in {secs:.2} s ({:.0} MB/s)",
        files.len(),
        read as f64 / 1e6,
        inflated as f64 / 1e6,
        inflated as f64 / 1e6 / secs
    );
    Ok(())
}
