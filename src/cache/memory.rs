//! The in-process cache backend: for a single gateway process, or a library without Redis.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;
use gateway_core::Result;

use super::{CacheBackend, Nearest, SemanticEntry, dot, now_ms};

/// Entries in this process's memory, at most `max_bytes` of answers (the oldest go first) and
/// the semantic index's `max_entries` per namespace. Nothing is shared with other processes and
/// nothing survives a restart: for several replicas, use `RedisCache`.
pub struct MemoryCache {
    state: Mutex<State>,
    max_bytes: usize,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Stored>,
    /// Keys in the order they were written, with the write's sequence number (a key written
    /// again has a newer one; the older position is then stale and skipped).
    order: VecDeque<(String, u64)>,
    bytes: usize,
    seq: u64,
    semantic: HashMap<String, VecDeque<Indexed>>,
}

struct Stored {
    value: Vec<u8>,
    expires_ms: u64,
    seq: u64,
}

struct Indexed {
    entry: SemanticEntry,
    expires_ms: u64,
}

impl MemoryCache {
    /// A cache holding at most `max_bytes` of answers.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            max_bytes,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// `ttl` from now, in ms since the epoch.
fn expiry(ttl: Duration) -> u64 {
    now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
}

impl State {
    /// Drops the oldest entries until `max_bytes` holds.
    fn evict(&mut self, max_bytes: usize) {
        while self.bytes > max_bytes {
            let Some((key, seq)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&key).is_some_and(|s| s.seq == seq)
                && let Some(gone) = self.entries.remove(&key)
            {
                self.bytes -= gone.value.len() + key.len();
            }
        }
        // Stale positions (keys written again, or expired and read) must not pile up.
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(key, seq)| entries.get(key).is_some_and(|s| s.seq == *seq));
        }
    }
}

impl CacheBackend for MemoryCache {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        let now = now_ms();
        let mut state = self.state();
        let found = match state.entries.get(key) {
            Some(s) if s.expires_ms > now => Some(s.value.clone()),
            Some(_) => {
                if let Some(gone) = state.entries.remove(key) {
                    state.bytes -= gone.value.len() + key.len();
                }
                None
            }
            None => None,
        };
        Box::pin(async move { Ok(found) })
    }

    fn put<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, Result<()>> {
        let size = value.len() + key.len();
        if size <= self.max_bytes {
            let expires_ms = expiry(ttl);
            let mut state = self.state();
            state.seq += 1;
            let seq = state.seq;
            let stored = Stored {
                value,
                expires_ms,
                seq,
            };
            if let Some(old) = state.entries.insert(key.to_owned(), stored) {
                state.bytes -= old.value.len() + key.len();
            }
            state.bytes += size;
            state.order.push_back((key.to_owned(), seq));
            state.evict(self.max_bytes);
        }
        Box::pin(async { Ok(()) })
    }

    fn nearest<'a>(
        &'a self,
        namespace: &'a str,
        group: &'a str,
        vector: &'a [f32],
    ) -> BoxFuture<'a, Result<Option<Nearest>>> {
        let now = now_ms();
        let state = self.state();
        let best = state
            .semantic
            .get(namespace)
            .into_iter()
            .flatten()
            .filter(|i| {
                i.expires_ms > now && i.entry.group == group && i.entry.vector.len() == vector.len()
            })
            .map(|i| (dot(&i.entry.vector, vector), &i.entry.key))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(similarity, key)| Nearest {
                similarity,
                key: key.clone(),
            });
        Box::pin(async move { Ok(best) })
    }

    fn remember<'a>(
        &'a self,
        namespace: &'a str,
        entry: SemanticEntry,
        ttl: Duration,
        max_entries: usize,
    ) -> BoxFuture<'a, Result<()>> {
        let now = now_ms();
        let expires_ms = expiry(ttl);
        let mut state = self.state();
        let index = state.semantic.entry(namespace.to_owned()).or_default();
        index.retain(|i| i.expires_ms > now && i.entry.key != entry.key);
        index.push_back(Indexed { entry, expires_ms });
        while index.len() > max_entries {
            index.pop_front();
        }
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(group: &str, vector: Vec<f32>, key: &str) -> SemanticEntry {
        SemanticEntry {
            group: group.into(),
            vector,
            key: key.into(),
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn keeps_answers_until_they_expire_or_memory_runs_out() {
        let cache = MemoryCache::new(64);
        cache.put("a", vec![1; 20], MINUTE).await.unwrap();
        assert_eq!(cache.get("a").await.unwrap(), Some(vec![1; 20]));
        cache
            .put("b", vec![2; 20], Duration::from_millis(1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(cache.get("b").await.unwrap(), None, "expired");
        // Three more of 21 bytes each: over 64, so the oldest ("a") goes.
        for key in ["c", "d", "e"] {
            cache.put(key, vec![3; 20], MINUTE).await.unwrap();
        }
        assert_eq!(cache.get("a").await.unwrap(), None, "evicted");
        assert_eq!(cache.get("e").await.unwrap(), Some(vec![3; 20]));
        // An answer larger than the whole cache is not kept, and evicts nothing.
        cache.put("huge", vec![0; 100], MINUTE).await.unwrap();
        assert_eq!(cache.get("huge").await.unwrap(), None);
        assert!(cache.get("e").await.unwrap().is_some());
        // Writing a key again replaces it without counting it twice.
        for _ in 0..100 {
            cache.put("e", vec![6; 20], MINUTE).await.unwrap();
        }
        assert_eq!(cache.get("e").await.unwrap(), Some(vec![6; 20]));
        assert!(cache.state().bytes <= 64);
        assert!(
            cache.state().order.len() < 100,
            "stale positions are dropped"
        );
    }

    #[tokio::test]
    async fn finds_the_nearest_entry_of_the_same_namespace_and_group() {
        let cache = MemoryCache::new(1 << 20);
        for (ns, e) in [
            ("ns1", entry("g", vec![1.0, 0.0], "k1")),
            ("ns1", entry("g", vec![0.6, 0.8], "k2")),
            ("ns1", entry("other", vec![0.0, 1.0], "k3")),
            ("ns2", entry("g", vec![0.0, 1.0], "k4")),
        ] {
            cache.remember(ns, e, MINUTE, 10).await.unwrap();
        }
        let found = cache
            .nearest("ns1", "g", &[0.0, 1.0])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            found.key, "k2",
            "not k3 (other group) nor k4 (other namespace)"
        );
        assert!((found.similarity - 0.8).abs() < 1e-6);
        assert_eq!(cache.nearest("ns3", "g", &[0.0, 1.0]).await.unwrap(), None);
        assert_eq!(
            cache.nearest("ns1", "g", &[0.0, 1.0, 0.0]).await.unwrap(),
            None,
            "vectors of another length are ignored"
        );
    }

    #[tokio::test]
    async fn a_namespace_keeps_its_newest_entries() {
        let cache = MemoryCache::new(1 << 20);
        for i in 0..5 {
            let v = if i == 0 {
                vec![1.0, 0.0]
            } else {
                vec![0.0, 1.0]
            };
            let e = entry("g", v, &format!("k{i}"));
            cache.remember("ns", e, MINUTE, 3).await.unwrap();
        }
        let found = cache
            .nearest("ns", "g", &[1.0, 0.0])
            .await
            .unwrap()
            .unwrap();
        assert_ne!(found.key, "k0", "the oldest entry was dropped");
        assert_eq!(cache.state().semantic["ns"].len(), 3);
    }
}
