//! Log files read on several threads, handed on in one ordered stream.
//!
//! Each reader thread takes every n-th file and reads it whole (inflate, split, prefilter,
//! parse), sending its activities in batches, then the file's counts. The caller sees the
//! activities file by file, in the order of `paths`, each file's in its own order, and counts
//! merged in the same order: exactly what one reader reading the files one after another would
//! give (the property test below), so the findings are the same however many threads read.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::model::Activity;
use super::sources::{Reader, Stats};

const BATCH: usize = 1_024;

enum Msg {
    Batch(Vec<Activity>),
    /// The end of a file: its counts, or why it could not be opened.
    End(Result<Stats, String>),
}

/// Adds one file's counts to the running ones, as one reader would have counted them.
fn merge(into: &mut Stats, file: Stats) {
    into.records += file.records;
    into.unread += file.unread;
    into.skimmed += file.skimmed;
    into.skipped += file.skipped;
    let room = 5usize.saturating_sub(into.reasons.len());
    into.reasons.extend(file.reasons.into_iter().take(room));
    for (reason, n) in file.by_reason {
        *into.by_reason.entry(reason).or_default() += n;
    }
    into.files.extend(file.files);
}

fn read_share(paths: Vec<(usize, PathBuf)>, prefilter: bool, tx: SyncSender<Msg>) {
    let batch = Rc::new(RefCell::new(Vec::with_capacity(BATCH)));
    let sink = Rc::clone(&batch);
    let sender = tx.clone();
    let mut push = move |a: Activity| {
        let mut b = sink.borrow_mut();
        b.push(a);
        if b.len() >= BATCH {
            // The receiver stops only on an error of its own; the reader then stops too.
            let _ = sender.send(Msg::Batch(std::mem::replace(&mut *b, Vec::with_capacity(BATCH))));
        }
    };
    let reader = Reader::new(&mut push);
    let mut reader = if prefilter { reader.unread_skipped() } else { reader };
    for (_, path) in paths {
        let end = match std::fs::File::open(&path) {
            Ok(file) => {
                reader.read_named(&path.display().to_string(), file);
                Ok(std::mem::take(&mut reader.stats))
            }
            Err(e) => Err(format!("opening {}: {e}", path.display())),
        };
        let rest = std::mem::take(&mut *batch.borrow_mut());
        if (!rest.is_empty() && tx.send(Msg::Batch(rest)).is_err())
            || tx.send(Msg::End(end)).is_err()
        {
            return;
        }
    }
}

/// Reads `paths` on `threads` threads (at least one); `on` sees every activity in the order one
/// reader would give. `prefilter`: see [`Reader::unread_skipped`]. A file that cannot be opened
/// stops the read with its error, after the files before it.
pub fn read_files(
    paths: &[PathBuf],
    threads: usize,
    prefilter: bool,
    on: &mut impl FnMut(Activity),
) -> Result<Stats, String> {
    let threads = threads.clamp(1, paths.len().max(1));
    let mut receivers: Vec<Receiver<Msg>> = Vec::with_capacity(threads);
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let (tx, rx) = sync_channel::<Msg>(8);
        let share: Vec<(usize, PathBuf)> =
            paths.iter().cloned().enumerate().filter(|(i, _)| i % threads == t).collect();
        handles.push(std::thread::spawn(move || read_share(share, prefilter, tx)));
        receivers.push(rx);
    }
    let mut stats = Stats::default();
    let mut failure = None;
    'files: for i in 0..paths.len() {
        for msg in receivers[i % threads].iter() {
            match msg {
                Msg::Batch(batch) => batch.into_iter().for_each(&mut *on),
                Msg::End(Ok(file)) => {
                    merge(&mut stats, file);
                    continue 'files;
                }
                Msg::End(Err(e)) => {
                    failure = Some(e);
                    break 'files;
                }
            }
        }
        failure = Some("a reader thread stopped".into());
        break;
    }
    drop(receivers);
    for h in handles {
        let _ = h.join();
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(stats),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn write_files(dir: &std::path::Path, sizes: &[usize], seed: u64) -> Vec<PathBuf> {
        let mut s = crate::signin::synth::Synth::new(seed, 40, 4_000, 1);
        sizes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let records: Vec<String> = (0..*n).map(|_| s.org_record(5).to_string()).collect();
                let mut text = format!("{{\"Records\":[{}]}}", records.join(","));
                if i % 5 == 3 {
                    text.insert_str(text.len() - 2, ",{\"eventID\":\"no-time\"}");
                }
                let path = dir.join(format!("{i:03}.json"));
                std::fs::write(&path, text).unwrap();
                path
            })
            .collect()
    }

    type Seen = (Vec<String>, usize, usize, usize, usize, Vec<String>, String, Vec<String>);

    fn seen(ids: Vec<String>, stats: Stats) -> Seen {
        let files =
            stats.files.iter().map(|f| format!("{} {} {}", f.name, f.records, f.skipped)).collect();
        let by_reason = format!("{:?}", stats.by_reason);
        (
            ids,
            stats.records,
            stats.unread,
            stats.skimmed,
            stats.skipped,
            stats.reasons,
            by_reason,
            files,
        )
    }

    fn run(paths: &[PathBuf], threads: usize) -> Seen {
        let mut ids = Vec::new();
        let stats = read_files(paths, threads, true, &mut |a| ids.push(a.event_id)).unwrap();
        seen(ids, stats)
    }

    /// The reference: one `Reader` reading the files one after another on this thread.
    fn one_reader(paths: &[PathBuf]) -> Seen {
        let mut ids = Vec::new();
        let mut push = |a: Activity| ids.push(a.event_id);
        let mut reader = Reader::new(&mut push).unread_skipped();
        for path in paths {
            reader.read_named(&path.display().to_string(), std::fs::File::open(path).unwrap());
        }
        let stats = std::mem::take(&mut reader.stats);
        drop(reader);
        seen(ids, stats)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

        /// However many threads read (one among them), the stream and the counts are one
        /// reader's reading the files in turn.
        #[test]
        fn any_number_of_threads_gives_one_readers_stream(
            sizes in proptest::collection::vec(0..120usize, 1..12),
            threads in 2..5usize,
            seed in 0..1_000u64,
        ) {
            let dir = std::env::temp_dir().join(format!("idc-guard-parallel-{}", fastrand::u64(..)));
            std::fs::create_dir_all(&dir).unwrap();
            let paths = write_files(&dir, &sizes, seed);
            let reference = one_reader(&paths);
            let one = run(&paths, 1);
            let many = run(&paths, threads);
            let _ = std::fs::remove_dir_all(&dir);
            prop_assert_eq!(&one, &reference);
            prop_assert_eq!(many, reference);
        }
    }

    #[test]
    fn a_file_that_cannot_be_opened_stops_the_read_after_the_files_before_it() {
        let dir = std::env::temp_dir().join(format!("idc-guard-parallel-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let mut paths = write_files(&dir, &[10, 10, 10], 1);
        paths.insert(1, dir.join("missing.json"));
        let mut seen = 0;
        let e = read_files(&paths, 2, true, &mut |_| seen += 1).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(e.contains("missing.json"), "{e}");
        assert!(seen <= 10, "only the first file's activities: {seen}");
    }
}
