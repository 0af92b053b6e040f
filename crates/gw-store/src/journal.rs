//! The journal: every reservation admitted from a lease (see `ledger.rs`) and every settlement
//! is appended to a local file before it is queued for the database, and let go of once the
//! database has it, so an admission that may reach a provider, and usage that a response
//! already reported, survive the process being killed before the batch was written (and a
//! database outage longer than the writer's patience). The next process on the same journal
//! replays what it finds: reservations the database lacks are written (and, their process
//! being dead, recovered at their estimate unless their settlement is there too); a settlement
//! the database already has is dropped (its reservation is gone), one it does not have is
//! written, correcting the row recovery may have written at the estimate meanwhile; so every
//! request still ends with exactly one usage row.
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
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

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
    /// Held open for its exclusive lock, released when the process exits however it exits.
    _lock: File,
}

struct State {
    /// The segment appended to, opened to append: lines are written to it outside the lock.
    file: Arc<File>,
    segment: u64,
    size: u64,
    /// Settlements appended and not written to the database yet, by segment.
    pending: BTreeMap<u64, usize>,
}

/// What an earlier process left in a journal: its segments and the lines in them.
pub(crate) struct Leftovers {
    pub(crate) segments: Vec<PathBuf>,
    pub(crate) reserved: Vec<Reserved>,
    pub(crate) settlements: Vec<Settlement>,
}

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
            }),
            _lock: lock,
        };
        let leftovers = Leftovers {
            segments: found.into_iter().map(|(_, p)| p).collect(),
            reserved,
            settlements,
        };
        Ok((journal, leftovers))
    }

    /// Appends `settlement`; returns the segment that holds it, for [`Journal::written`].
    pub(crate) fn append(&self, settlement: &Settlement) -> Result<u64> {
        self.append_line(settlement, "a settlement")
    }

    /// Appends the reservation `reserved`, like [`Journal::append`].
    pub(crate) fn append_reserved(&self, reserved: &Reserved) -> Result<u64> {
        self.append_line(reserved, "a reservation")
    }

    fn append_line(&self, value: &impl serde::Serialize, what: &str) -> Result<u64> {
        let mut line = serde_json::to_vec(value)
            .map_err(|e| journal_error(&self.base, format!("encoding {what}: {e}")))?;
        line.push(b'\n');
        // The line is counted under the lock and written after it: the request workers append
        // at once, and a `write(2)` held under the lock made the others wait for it asleep
        // (their whole runtime with them). Counted first, the line keeps its segment from
        // being emptied or deleted while it is being written.
        let (file, segment) = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.size >= SEGMENT_BYTES {
                self.rotate(&mut state)?;
            }
            state.size += line.len() as u64;
            let segment = state.segment;
            *state.pending.entry(segment).or_default() += 1;
            (Arc::clone(&state.file), segment)
        };
        // One write of the whole line, so a kill cuts at most this line; the file is opened
        // to append, so lines written at once each land whole at its end (a write to a file
        // stops short only when the disk is full).
        if let Err(e) = (&*file).write_all(&line) {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(n) = state.pending.get_mut(&segment) {
                *n = n.saturating_sub(1);
            }
            return Err(journal_error(&self.segment_path(segment), e));
        }
        Ok(segment)
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
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
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
        // The request workers write their lines outside the lock: each must still land whole,
        // none over another, across a segment change in the middle of it.
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
        let (_, leftovers) = Journal::open(&path).unwrap();
        let mut ids: Vec<&str> = leftovers
            .settlements
            .iter()
            .map(|s| s.request_id.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 4_000, "every line read back, once");
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
