//! Keys and plans a process remembers, and how long it may trust them.
//!
//! A key revoked or a plan changed anywhere moves the database's auth epoch (`auth_changes`,
//! in the transaction that makes the change). A process that watches it
//! ([`Store::check_auth_changes`]; the server does every `[store] auth_poll_ms`) drops what it
//! remembers when it moves. While it is watched, a remembered entry is trusted for [`LIFE`], less
//! up to a quarter at random; while it is not (a library user that does not watch, or a
//! database that could not be asked for as long as the base time), only for the base time: the
//! key cache's `key_cache_ms`, 10 s for plans.
//!
//! The base time alone used to be the rule, and it cost a tail: entries remembered together
//! (every user's first request after a start) expired together every 10 s, and each user's next
//! request then waited for two database reads, a key and a plan. With the bench's 1,000 users
//! that was about 1% of the requests of the second after, enough to move the p99 of a 5 s run.
//!
//! A lookup that began before what is remembered was dropped does not remember what it read
//! (it may predate the change): each drop counts a generation, and an entry is kept only when
//! the generation is the one its lookup began under.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gateway_core::Result;

use crate::Store;

/// How long a remembered key or plan is trusted at most while the process watches for changes.
const LIFE: Duration = Duration::from_secs(300);

/// The instant [`AuthWatch`] counts its milliseconds from.
static SINCE: LazyLock<Instant> = LazyLock::new(Instant::now);

/// What a process knows of the changes made anywhere to keys and plans.
#[derive(Default)]
pub(crate) struct AuthWatch {
    /// The auth epoch last read.
    seen: Mutex<Option<i64>>,
    /// When it was last read, in milliseconds since [`SINCE`] plus one (0: never): an atomic,
    /// because every request whose key is remembered asks.
    read_at: AtomicU64,
    /// How many times what is remembered was dropped.
    generation: AtomicU64,
}

impl AuthWatch {
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Counts a drop of what is remembered: call it before dropping, so a lookup racing the
    /// drop sees the new generation and does not remember what it read.
    pub(crate) fn next_generation(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Records the epoch just read; whether it moved, so what is remembered must go. The first
    /// read counts as a move: what was remembered before it may predate one.
    fn moved(&self, epoch: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.replace(epoch) != Some(epoch)
    }

    /// Records that what is remembered agrees with the epoch read now (after dropping what had
    /// to go).
    fn confirm(&self) {
        let now = SINCE.elapsed().as_millis() as u64 + 1;
        self.read_at.store(now, Ordering::Release);
    }

    /// Whether what is remembered was confirmed within `base`.
    fn confirmed_within(&self, base: Duration) -> bool {
        match self.read_at.load(Ordering::Acquire) {
            0 => false,
            at => {
                (SINCE.elapsed().as_millis() as u64 + 1).saturating_sub(at)
                    < base.as_millis() as u64
            }
        }
    }
}

/// When an entry was remembered, and how long it may be trusted while changes are watched.
#[derive(Debug, Clone, Copy)]
pub struct Remembered {
    at: Instant,
    life: Duration,
}

impl Remembered {
    /// An entry remembered now: trusted, while watched, for five minutes less up to a quarter,
    /// so entries remembered together are not looked up again together.
    pub fn now() -> Self {
        let quarter = LIFE.as_millis() as u64 / 4;
        let noise = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::from(d.subsec_nanos()));
        Self {
            at: Instant::now(),
            life: LIFE - Duration::from_millis(noise % quarter.max(1)),
        }
    }

    /// Whether the entry may still be used: younger than `base`, or than its life while
    /// changes are `watched` (asked only of an entry older than `base`).
    pub fn trusted(&self, base: Duration, watched: impl FnOnce() -> bool) -> bool {
        let age = self.at.elapsed();
        age < base || (age < self.life && watched())
    }
}

impl Store {
    /// Reads the auth epoch (see [`Store::auth_epoch`]) and, when it moved since the last call
    /// (or on the first call), drops the remembered plans and returns `true`: the caller drops
    /// what it remembers of keys. Called regularly, it lets remembered keys and plans be trusted
    /// for five minutes instead of their base time ([`Store::watches_auth_within`]).
    pub async fn check_auth_changes(&self) -> Result<bool> {
        let epoch = self.auth_epoch().await?;
        let moved = self.auth.moved(epoch);
        if moved {
            self.forget_plans();
        }
        self.auth.confirm();
        Ok(moved)
    }

    /// Whether [`Store::check_auth_changes`] read the epoch within `base`: if so, what this
    /// process remembers is trusted for its life, otherwise for `base` only.
    pub fn watches_auth_within(&self, base: Duration) -> bool {
        self.auth.confirmed_within(base)
    }

    /// How many times remembered keys and plans were dropped: read it before a lookup, and
    /// remember what the lookup found only while it is unchanged (see the module docs).
    pub fn auth_generation(&self) -> u64 {
        self.auth.generation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_trusted_for_its_base_time_or_while_watched_for_its_life() {
        let fresh = Remembered::now();
        assert!(fresh.life <= LIFE && fresh.life > LIFE * 3 / 4);
        let base = Duration::from_secs(10);
        assert!(fresh.trusted(base, || unreachable!("a young entry asks nothing")));
        let old = Remembered {
            at: Instant::now() - Duration::from_secs(20),
            life: LIFE,
        };
        assert!(!old.trusted(base, || false));
        assert!(old.trusted(base, || true));
        let older = Remembered {
            at: Instant::now() - Duration::from_secs(20),
            life: Duration::from_secs(15),
        };
        assert!(!older.trusted(base, || true));
    }

    #[test]
    fn the_first_epoch_read_and_every_move_count_as_changes() {
        let watch = AuthWatch::default();
        let base = Duration::from_secs(10);
        assert!(!watch.confirmed_within(base));
        assert!(watch.moved(3));
        assert!(!watch.confirmed_within(base), "not before it is confirmed");
        watch.confirm();
        assert!(watch.confirmed_within(base));
        assert!(!watch.moved(3));
        assert!(watch.moved(4));
        let before = watch.generation();
        watch.next_generation();
        assert_eq!(watch.generation(), before + 1);
    }
}
