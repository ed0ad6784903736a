//! The floor the sign-in scan is measured against: decompressing the same log files, and nothing
//! else, with libdeflate (the fastest inflate we know of), one file after another on one core.
//!
//! `cargo run --release -p idc-guard-core --example inflate_only -- FILE...` prints the files,
//! the bytes inflated and the seconds taken. With `--skim` first, each file is also split and
//! judged by `signin::skim` (and checked as UTF-8 unless it is ASCII), to see what the scan's reading costs beyond
//! the floor.

fn main() -> std::io::Result<()> {
    let mut files: Vec<String> = std::env::args().skip(1).collect();
    let skim = files.first().is_some_and(|f| f == "--skim");
    if skim {
        files.remove(0);
    }
    let (mut records, mut unread) = (0usize, 0usize);
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
        if skim {
            let text = &out[..n];
            let s = idc_guard::signin::skim::skim(text)
                .ok_or_else(|| std::io::Error::other(format!("{f}: not skimmed")))?;
            if !s.ascii {
                std::str::from_utf8(text)
                    .map_err(|e| std::io::Error::other(format!("{f}: {e}")))?;
            }
            records += s.records.len();
            unread += s.records.iter().filter(|r| r.unread).count();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    if skim {
        println!(
            "inflate + skim + UTF-8 check (1 core): {records} records, {unread} unread, {} files in {secs:.2} s ({:.0} MB/s)",
            files.len(),
            inflated as f64 / 1e6 / secs
        );
        return Ok(());
    }
    println!(
        "inflate only (libdeflate, 1 core): {} files, {:.1} MB gzip -> {:.1} MB JSON in {secs:.2} s ({:.0} MB/s)",
        files.len(),
        read as f64 / 1e6,
        inflated as f64 / 1e6,
        inflated as f64 / 1e6 / secs
    );
    Ok(())
}
