//! The journal: every reservation admitted from a lease (see `ledger.rs`) and every settlement is
//! written to a local file before its request goes on (to the provider, or to its answer), and let
//! go of once the database has it, so an admission that may reach a provider, and usage that a
//! response already reported, survive the process being killed before the batch was written (and a
//! database outage longer than the writer's patience). The next process on the same journal replays
//! what it finds: reservations the database lacks are written (and, their process being dead,
//! recovered at their estimate unless their settlement is there too); a settlement the database
//! already has is dropped (its reservation is gone), one it does not have is written, correcting
//! the row recovery may have written at the estimate meanwhile; so every request still ends with
//! exactly one usage row.
//!
//! Lines are group-committed: a line is added to the batch being gathered, and its caller
//! waits for the batch to be written ([`Journal::committed`]). The first caller to wait yields
//! once, so that the other requests its runtime already has ready add their lines meanwhile,
//! then writes the whole batch in one `write(2)`; the others find theirs written. Under load a
//! request worker writes one batch for many requests instead of two lines for each; alone, a
//! request writes its own line as before. A caller that goes away while it waits writes its
//! batch as it is dropped, so a line added is always written.
//!
//! One JSON line per reservation or settlement, in segments `<path>.<n>`; a new segment is
//! started once one reaches [`SEGMENT_BYTES`], and segments are deleted in order (the current
//! one emptied) once every line in them and in the older ones is written. Lines are written
//! with `write(2)`, not synced: they survive a killed process (the kernel has them), not a
//! power loss or a kernel crash. A process holds its journal through an exclusive lock on
//! `<path>.lock`; a second process given the same path (two gateways on one host) takes
//! `<path>-2`, `<path>-3`, ... instead, and a dead process's lock is released by the kernel, so
//! the next start replays its journal.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};
use std::task::{Context, Poll, Waker};

use gateway_core::{Error, ErrorKind, Result};

use crate::accounting::Reserved;
use crate::settlement::Settlement;

/// A journal line: a reservation admitted from a lease, or a settlement. Told apart by their
/// fields (a reservation has `reservation`, a settlement `reservation_id`), so journals written
/// before reservations were journaled read as they are.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Line {
    Reserved(Reserved),
    Settlement(Settlement),
}

/// The size past which the journal starts a new segment.
const SEGMENT_BYTES: u64 = 16 << 20;

/// How many journals one path may stand for: one per process on the same host.
const MAX_OWNERS: usize = 16;

/// A process's settlement journal.
pub(crate) struct Journal {
    /// `<path>` (or `<path>-N`): segments are `<base>.<n>`.
    base: PathBuf,
    state: Mutex<State>,
    /// Held by the one caller writing a batch; the others never wait for it asleep (a request
    /// worker asleep stalls its whole runtime), they register in `waiting` instead.
    writing: Mutex<()>,
    /// Callers whose batch is still gathering while another one is being written, woken when
    /// that write is done (theirs is then next).
    waiting: Mutex<Vec<Waker>>,
    /// Held open for its exclusive lock, released when the process exits however it exits.
    _lock: File,
}

struct State {
    /// The segment appended to, opened to append: batches are written to it outside the lock.
    file: Arc<File>,
    segment: u64,
    size: u64,
    /// Settlements appended and not written to the database yet, by segment.
    pending: BTreeMap<u64, usize>,
    /// The lines added and not written yet, by segment (more than one only across a segment
    /// change).
    gathering: Vec<Lines>,
    /// What the lines in `gathering` wait for.
    batch: Arc<Batch>,
}

/// Lines for one segment, one after the other.
struct Lines {
    file: Arc<File>,
    segment: u64,
    bytes: Vec<u8>,
}

/// A batch of lines being gathered or written: what its writing came to, once it is done.
#[derive(Default)]
pub(crate) struct Batch {
    outcome: OnceLock<std::result::Result<(), String>>,
}

/// A line added to the journal: its segment (for [`Journal::written`]) and its batch (for
/// [`Journal::committed`]).
pub(crate) struct Added {
    pub(crate) segment: u64,
    batch: Arc<Batch>,
}

/// What an earlier process left in a journal: its segments and the lines in them.
pub(crate) struct Leftovers {
    pub(crate) segments: Vec<PathBuf>,
    pub(crate) reserved: Vec<Reserved>,
    pub(crate) settlements: Vec<Settlement>,
}

/// About the length of a line, to size its buffer once.
const LINE_BYTES: usize = 512;

fn journal_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("settlement journal `{}`: {e}", path.display()),
    )
}

impl Journal {
    /// Opens the journal at `path` (its directory must exist), or the next free one beside it
    /// when another live process holds it, and reads what an earlier process left there.
    pub(crate) fn open(path: &Path) -> Result<(Journal, Leftovers)> {
        for owner in 1..=MAX_OWNERS {
            let base = if owner == 1 {
                path.to_owned()
            } else {
                let mut name = path.as_os_str().to_owned();
                name.push(format!("-{owner}"));
                PathBuf::from(name)
            };
            let lock_path = with_suffix(&base, "lock");
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| journal_error(&lock_path, e))?;
            match lock.try_lock() {
                Ok(()) => return Self::take(base, lock),
                Err(std::fs::TryLockError::WouldBlock) => continue,
                Err(std::fs::TryLockError::Error(e)) => return Err(journal_error(&lock_path, e)),
            }
        }
        Err(journal_error(
            path,
            format!("{MAX_OWNERS} processes already hold a journal at this path"),
        ))
    }

    /// Reads the segments under `base` (held through `lock`) and starts a new one after them.
    fn take(base: PathBuf, lock: File) -> Result<(Journal, Leftovers)> {
        let mut found = segments_of(&base)?;
        found.sort();
        let (mut reserved, mut settlements) = (Vec::new(), Vec::new());
        let mut unreadable = 0usize;
        for (_, segment) in &found {
            let file = File::open(segment).map_err(|e| journal_error(segment, e))?;
            for line in BufReader::new(file).split(b'\n') {
                let line = line.map_err(|e| journal_error(segment, e))?;
                if line.is_empty() {
                    continue;
                }
                // A line cut by the kill, or from a version that wrote something else.
                match serde_json::from_slice::<Line>(&line) {
                    Ok(Line::Reserved(r)) => reserved.push(r),
                    Ok(Line::Settlement(s)) => settlements.push(s),
                    Err(_) => unreadable += 1,
                }
            }
        }
        if unreadable > 0 {
            tracing::warn!(
                journal = %base.display(),
                lines = unreadable,
                "settlement journal: lines that cannot be read are skipped (a write cut by a \
                 crash); their reservations are recovered at the estimate"
            );
        }
        let segment = found.last().map_or(1, |(n, _)| n + 1);
        let path = with_suffix(&base, &segment.to_string());
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| journal_error(&path, e))?;
        let journal = Journal {
            base,
            state: Mutex::new(State {
                file: Arc::new(file),
                segment,
                size: 0,
                pending: BTreeMap::new(),
                gathering: Vec::new(),
                batch: Arc::default(),
            }),
            writing: Mutex::new(()),
            waiting: Mutex::new(Vec::new()),
            _lock: lock,
        };
        let leftovers = Leftovers {
            segments: found.into_iter().map(|(_, p)| p).collect(),
            reserved,
            settlements,
        };
        Ok((journal, leftovers))
    }

    /// Adds `settlement` to the batch being gathered; it is written once
    /// [`Journal::committed`] resolves.
    pub(crate) fn add(&self, settlement: &Settlement) -> Result<Added> {
        self.add_line(|line| settlement.write_json(line), "a settlement")
    }

    /// Adds the reservation `reserved`, like [`Journal::add`].
    pub(crate) fn add_reserved(&self, reserved: &Reserved) -> Result<Added> {
        self.add_line(|line| reserved.write_json(line), "a reservation")
    }

    /// Appends `settlement` and writes it before returning; the segment that holds it.
    #[cfg(test)]
    fn append(&self, settlement: &Settlement) -> Result<u64> {
        let added = self.add(settlement)?;
        self.write_gathered(&lock(&self.writing));
        match added.batch.outcome.get() {
            Some(Ok(())) => Ok(added.segment),
            _ => Err(journal_error(&self.base, "the batch was not written")),
        }
    }

    fn add_line(
        &self,
        encode: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
        what: &str,
    ) -> Result<Added> {
        let mut line = Vec::with_capacity(LINE_BYTES);
        encode(&mut line)
            .map_err(|e| journal_error(&self.base, format!("encoding {what}: {e}")))?;
        line.push(b'\n');
        // Counted when added, so its segment is neither emptied nor deleted before the line is
        // written (and while the database writes what it was queued with).
        let mut state = lock(&self.state);
        if state.size >= SEGMENT_BYTES {
            self.rotate(&mut state)?;
        }
        state.size += line.len() as u64;
        let segment = state.segment;
        *state.pending.entry(segment).or_default() += 1;
        match state.gathering.last_mut() {
            Some(lines) if lines.segment == segment => lines.bytes.extend_from_slice(&line),
            _ => {
                let file = Arc::clone(&state.file);
                state.gathering.push(Lines {
                    file,
                    segment,
                    bytes: line,
                });
            }
        }
        Ok(Added {
            segment,
            batch: Arc::clone(&state.batch),
        })
    }

    /// Resolves once the batch `added` belongs to is written: `Err` with what went wrong when
    /// it could not be. Dropped before, it writes the batch then and there.
    pub(crate) fn committed(&self, added: Added) -> Committed<'_> {
        Committed {
            journal: self,
            batch: added.batch,
            yielded: false,
        }
    }

    /// Writes the lines gathered so far as one batch (the caller holds `writing`), and wakes
    /// the callers waiting for the writer.
    fn write_gathered(&self, _writing: &MutexGuard<'_, ()>) {
        let (gathered, batch) = {
            let mut state = lock(&self.state);
            if state.gathering.is_empty() {
                return;
            }
            let batch = std::mem::take(&mut state.batch);
            (std::mem::take(&mut state.gathering), batch)
        };
        // One write for each segment's lines (one but across a segment change). The files are
        // opened to append, and only the holder of `writing` writes, so a kill cuts at most
        // the end of this batch; a write to a file stops short only when the disk is full.
        // Lines that fail stay counted in their segments: they were queued for the database
        // with them, and are let go of when it has them.
        let mut outcome = Ok(());
        for lines in &gathered {
            if let Err(e) = (&*lines.file).write_all(&lines.bytes) {
                outcome = Err(journal_error(&self.segment_path(lines.segment), e).to_string());
            }
        }
        let _ = batch.outcome.set(outcome);
        for waker in std::mem::take(&mut *lock(&self.waiting)) {
            waker.wake();
        }
    }

    /// Records that the lines appended to `segments` (one entry each) are in the database.
    /// Segments go in order: the oldest ones none of whose lines is pending any more are
    /// deleted (the current one emptied), and a segment waits for the older ones. So a line
    /// whose segment is left has every later line left too: a replay that finds a reservation
    /// finds its settlement, if one was made.
    pub(crate) fn written(&self, segments: &[u64]) {
        if segments.is_empty() {
            return;
        }
        let mut state = lock(&self.state);
        for &segment in segments {
            if let Some(n) = state.pending.get_mut(&segment) {
                *n = n.saturating_sub(1);
            }
        }
        let done: Vec<u64> = state
            .pending
            .iter()
            .take_while(|&(_, &n)| n == 0)
            .map(|(&s, _)| s)
            .collect();
        for segment in done {
            state.pending.remove(&segment);
            if segment == state.segment {
                if let Err(e) = state.file.set_len(0) {
                    tracing::warn!(error = %e, "settlement journal: emptying the segment failed");
                } else {
                    state.size = 0;
                }
            } else {
                self.remove(segment);
            }
        }
    }

    /// Deletes the segments an earlier process left, once they are replayed.
    pub(crate) fn forget(&self, leftovers: &Leftovers) {
        for path in &leftovers.segments {
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(segment = %path.display(), error = %e, "settlement journal: a replayed segment could not be deleted");
            }
        }
    }

    /// Starts the next segment; the one it replaces is deleted now if nothing in it is pending.
    fn rotate(&self, state: &mut State) -> Result<()> {
        let next = state.segment + 1;
        let path = self.segment_path(next);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| journal_error(&path, e))?;
        let old = std::mem::replace(&mut state.segment, next);
        state.file = Arc::new(file);
        state.size = 0;
        if state.pending.is_empty() {
            self.remove(old);
        } else {
            // Deleted in its turn, after the older segments still pending.
            state.pending.entry(old).or_default();
        }
        Ok(())
    }

    fn remove(&self, segment: u64) {
        let path = self.segment_path(segment);
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(segment = %path.display(), error = %e, "settlement journal: a written segment could not be deleted");
        }
    }

    fn segment_path(&self, segment: u64) -> PathBuf {
        with_suffix(&self.base, &segment.to_string())
    }
}

/// `mutex` locked, whether or not a holder panicked (what it guards stays consistent: every
/// change to it is made whole under the lock).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// [`Journal::committed`]'s future.
pub(crate) struct Committed<'a> {
    journal: &'a Journal,
    batch: Arc<Batch>,
    /// Whether it has let the tasks ready before it run (and add their lines) once.
    yielded: bool,
}

impl Committed<'_> {
    fn outcome(&self) -> Option<Result<()>> {
        self.batch.outcome.get().map(|outcome| {
            outcome
                .clone()
                .map_err(|e| Error::new(ErrorKind::Unavailable, e))
        })
    }
}

impl Future for Committed<'_> {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if let Some(outcome) = self.outcome() {
            return Poll::Ready(outcome);
        }
        if !self.yielded {
            // To the back of the runtime's queue: the tasks ahead add their lines to the
            // batch before it is written.
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let writing = match self.journal.writing.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => {
                // Another thread is writing the batch before this one: woken when it is done.
                lock(&self.journal.waiting).push(cx.waker().clone());
                return match self.outcome() {
                    Some(outcome) => Poll::Ready(outcome),
                    None => Poll::Pending,
                };
            }
        };
        // No other write is under way, so this batch is the one gathering (or was just
        // written by the last holder).
        if self.batch.outcome.get().is_none() {
            self.journal.write_gathered(&writing);
        }
        drop(writing);
        match self.outcome() {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

impl Drop for Committed<'_> {
    fn drop(&mut self) {
        // Its caller went away: the line is still written (it was queued for the database
        // with its segment, and a reservation's release is journaled after it).
        if self.batch.outcome.get().is_none() {
            let writing = lock(&self.journal.writing);
            if self.batch.outcome.get().is_none() {
                self.journal.write_gathered(&writing);
            }
        }
    }
}

/// `<base>.<suffix>`.
fn with_suffix(base: &Path, suffix: &str) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// The segments `<base>.<n>` that exist, with their numbers.
fn segments_of(base: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let dir = match base.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let Some(stem) = base.file_name().and_then(|n| n.to_str()) else {
        return Err(journal_error(base, "the file name must be UTF-8"));
    };
    let prefix = format!("{stem}.");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| journal_error(&dir, e))? {
        let entry = entry.map_err(|e| journal_error(&dir, e))?;
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((n, entry.path()));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settlement(n: u32) -> Settlement {
        Settlement {
            reservation_id: format!("res_{n}"),
            reserved_requests: 1,
            request_id: format!("req_{n}"),
            provider: "gemini".into(),
            model: "gemini-2.5-flash".into(),
            modality: gateway_core::Modality::Text,
            operation: "chat".into(),
            status: "ok".into(),
            error_message: None,
            tokens: gateway_core::TokenUsage::default(),
            units: 0,
            cost_nanos: Some(1),
            pricing_version: "v".into(),
            estimated: false,
            billable: true,
            latency_ms: 1,
            ttft_ms: None,
            retries: 0,
            cache_semantic: None,
            cost_saved_nanos: None,
            attempts: "[]".into(),
            end_user: None,
            metadata: BTreeMap::from([("team".into(), "a\nb".into())]),
        }
    }

    #[test]
    fn lines_are_the_json_their_types_serialize_and_read_back() {
        let plain = settlement(1);
        let full = Settlement {
            error_message: Some("the provider said \"no\"\n".into()),
            tokens: gateway_core::TokenUsage {
                input_tokens: 12,
                output_tokens: 345,
                reasoning_tokens: 6,
                cached_input_tokens: 7,
            },
            units: 3,
            cost_nanos: None,
            estimated: true,
            billable: false,
            ttft_ms: Some(42),
            retries: 2,
            cache_semantic: Some(true),
            cost_saved_nanos: Some(u64::MAX),
            attempts: r#"[{"route":"hf/m","error":"x"}]"#.into(),
            end_user: Some("é".into()),
            metadata: BTreeMap::new(),
            ..settlement(2)
        };
        for s in [plain, full] {
            let mut line = Vec::new();
            s.write_json(&mut line).unwrap();
            assert_eq!(
                String::from_utf8(line.clone()).unwrap(),
                serde_json::to_string(&s).unwrap()
            );
            let back: Settlement = serde_json::from_slice(&line).unwrap();
            assert_eq!(format!("{back:?}"), format!("{s:?}"));
        }
        let reserved = Reserved {
            reservation: "res_\"1\"".into(),
            request_id: "req_1".into(),
            user_id: "u".into(),
            period: "2026-11".into(),
            provider: "hf".into(),
            model: "org/m:provider".into(),
            modality: gateway_core::Modality::Image,
            operation: "images".into(),
            requests: 1,
            tokens: 1_024,
            units: 4,
            cost_nanos: Some(99),
            instance_id: "i-1".into(),
            created_at: -5,
            leased: [1; crate::counters::COUNTERS],
        };
        let mut line = Vec::new();
        reserved.write_json(&mut line).unwrap();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            serde_json::to_string(&reserved).unwrap()
        );
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "gw-store-journal-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn what_is_not_written_is_found_by_the_next_owner() {
        let dir = temp_dir("next");
        let path = dir.join("usage.journal");
        let (journal, leftovers) = Journal::open(&path).unwrap();
        assert!(leftovers.settlements.is_empty());
        let a = journal.append(&settlement(1)).unwrap();
        let b = journal.append(&settlement(2)).unwrap();
        journal.append(&settlement(3)).unwrap();
        journal.written(&[a, b]);
        // A second process on the same path gets a journal of its own.
        let (other, none) = Journal::open(&path).unwrap();
        assert!(none.settlements.is_empty());
        assert_eq!(other.base, dir.join("usage.journal-2"));
        drop(other);
        // A torn last line, as a kill mid-write leaves.
        let segment = journal.segment_path(a);
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        file.write_all(b"{\"reservation_id\":\"res_").unwrap();
        drop(journal); // the process dies: its lock goes with it

        let (journal, leftovers) = Journal::open(&path).unwrap();
        let ids: Vec<&str> = leftovers
            .settlements
            .iter()
            .map(|s| s.request_id.as_str())
            .collect();
        assert_eq!(ids, ["req_1", "req_2", "req_3"]);
        assert_eq!(leftovers.settlements[0].metadata["team"], "a\nb");
        journal.forget(&leftovers);
        assert_eq!(segments_of(&path).unwrap().len(), 1, "only the new segment");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lines_appended_at_once_from_many_threads_are_each_whole() {
        // Lines added from many threads at once, written in batches by whichever holds
        // `writing`: each must still land whole, none over another, once, across a segment
        // change in the middle of it.
        let dir = temp_dir("threads");
        let path = dir.join("j");
        let (journal, _) = Journal::open(&path).unwrap();
        std::thread::scope(|scope| {
            for t in 0..8u32 {
                let journal = &journal;
                scope.spawn(move || {
                    for i in 0..500 {
                        if t == 0 && i == 250 {
                            journal
                                .state
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .size = SEGMENT_BYTES;
                        }
                        journal.append(&settlement(t * 1_000 + i)).unwrap();
                    }
                });
            }
        });
        assert_eq!(segments_of(&path).unwrap().len(), 2);
        drop(journal);
        let mut ids = read_back(&path);
        assert_eq!(ids.len(), 4_000, "every line read back, once");
        ids.dedup();
        assert_eq!(ids.len(), 4_000, "every line read back, once");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The request ids of the settlements in `path`'s segments, as the next owner reads them.
    fn read_back(path: &Path) -> Vec<String> {
        let (_, leftovers) = Journal::open(path).unwrap();
        let mut ids: Vec<String> = leftovers
            .settlements
            .into_iter()
            .map(|s| s.request_id)
            .collect();
        ids.sort_unstable();
        ids
    }

    #[tokio::test(flavor = "current_thread")]
    async fn lines_added_by_requests_ready_together_are_written_in_one_batch() {
        let dir = temp_dir("batch");
        let path = dir.join("j");
        let (journal, _) = Journal::open(&path).unwrap();
        let journal = Arc::new(journal);
        // As on a request worker: many requests ready at once, each adding its line and
        // waiting for it to be written.
        let tasks: Vec<_> = (0..100)
            .map(|n| {
                let journal = Arc::clone(&journal);
                tokio::spawn(async move {
                    let added = journal.add(&settlement(n)).unwrap();
                    let batch = Arc::clone(&added.batch);
                    journal.committed(added).await.unwrap();
                    batch
                })
            })
            .collect();
        // Every batch is held until counted, so no two share an address.
        let mut batches: Vec<Arc<Batch>> = Vec::new();
        for task in tasks {
            let batch = task.await.unwrap();
            if !batches.iter().any(|b| Arc::ptr_eq(b, &batch)) {
                batches.push(batch);
            }
        }
        assert_eq!(batches.len(), 1, "one write for the hundred lines");
        drop(journal);
        assert_eq!(read_back(&path).len(), 100);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_line_whose_caller_goes_away_is_written_all_the_same() {
        let dir = temp_dir("dropped");
        let path = dir.join("j");
        let (journal, _) = Journal::open(&path).unwrap();
        // Dropped before it was ever polled.
        drop(journal.committed(journal.add(&settlement(1)).unwrap()));
        // Dropped after it yielded once, its batch still gathering.
        let mut committed = journal.committed(journal.add(&settlement(2)).unwrap());
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(Pin::new(&mut committed).poll(&mut cx).is_pending());
        drop(committed);
        // Added, never waited for: written with the next batch.
        let unwaited = journal.add(&settlement(3)).unwrap();
        let next = journal.add(&settlement(4)).unwrap();
        journal.committed(next).await.unwrap();
        assert!(matches!(unwaited.batch.outcome.get(), Some(Ok(()))));
        drop(journal);
        assert_eq!(read_back(&path), ["req_1", "req_2", "req_3", "req_4"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_caller_of_a_batch_that_cannot_be_written_is_told() {
        let full = Path::new("/dev/full");
        if !full.exists() {
            eprintln!("skipped: no /dev/full to fail writes on");
            return;
        }
        let dir = temp_dir("full");
        let (journal, _) = Journal::open(&dir.join("j")).unwrap();
        // The disk is full: every write fails (ENOSPC).
        lock(&journal.state).file = Arc::new(OpenOptions::new().append(true).open(full).unwrap());
        let a = journal.committed(journal.add(&settlement(1)).unwrap());
        let b = journal.committed(journal.add(&settlement(2)).unwrap());
        let (a, b) = tokio::join!(a, b);
        for outcome in [a, b] {
            let e = outcome.unwrap_err();
            assert_eq!(e.kind(), &ErrorKind::Unavailable, "{e}");
            assert!(e.message().contains("settlement journal"), "{e}");
        }
        // Still counted in their segment: the database lets them go once it has them.
        assert_eq!(lock(&journal.state).pending.values().sum::<usize>(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn written_segments_are_emptied_and_deleted() {
        let dir = temp_dir("written");
        let path = dir.join("j");
        let (journal, _) = Journal::open(&path).unwrap();
        let s = journal.append(&settlement(1)).unwrap();
        journal.written(&[s]);
        let current = journal.segment_path(s);
        assert_eq!(std::fs::metadata(&current).unwrap().len(), 0);
        // Past the segment size: the next append starts a new segment, and the full one goes
        // once its last settlement is written.
        let first = journal.append(&settlement(2)).unwrap();
        journal
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .size = SEGMENT_BYTES;
        let second = journal.append(&settlement(3)).unwrap();
        assert_eq!(second, first + 1);
        assert!(journal.segment_path(first).exists());
        journal.written(&[first]);
        assert!(!journal.segment_path(first).exists());
        assert!(journal.segment_path(second).exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
