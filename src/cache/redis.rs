//! The Redis cache backend: answers and the semantic index in one Redis that every gateway
//! replica shares.
//!
//! # Layout
//!
//! Every key starts with `gw:cache:<prefix>:` (`gw:cache:` alone for an empty prefix), so
//! several gateways or environments can share one Redis:
//!
//! - `…e:<key>`: an answer, written with `SET … PX <ttl>`.
//! - `…s:<namespace>:seq`: the namespace's last entry id (`INCR`). A new namespace starts from
//!   Redis' clock in microseconds, so ids only grow, even across a namespace that expired and
//!   came back, or a Redis that restarted empty.
//! - `…s:<namespace>:ids`: a sorted set of entry ids, scored by id (the oldest first).
//! - `…s:<namespace>:data`: a hash from id to the entry, encoded by [`encode`].
//! - `…s:<namespace>:keys`: a hash from answer key to id, so an answer indexed again replaces
//!   its older entry (as in [`MemoryCache`](super::MemoryCache)).
//!
//! [`CacheBackend::remember`] is one Lua script (atomic across replicas): it adds the entry,
//! drops the oldest beyond `max_entries`, and extends the namespace's keys to the longest TTL
//! written, so an idle namespace vanishes by itself.
//!
//! # Lookups
//!
//! The similarity search runs in the gateway (Redis without a vector search module), on a
//! per-replica mirror of each namespace: a lookup asks Redis, in one script call, only for the
//! entries newer than the last id the mirror holds, plus the namespace's size, lowest and highest
//! ids, which tell the mirror what was trimmed or expired with its namespace. A lookup in a
//! namespace of 10,000 entries moves nothing but the new entries; only the first lookup of a
//! namespace (or one after the mirror was evicted) fetches it whole. That first fetch runs in a
//! task of its own, so it completes, and serves later lookups, even when the caller's time
//! budget ran out first.
//!
//! The mirror's memory is bounded: by default at most 10,000 entries per namespace (the
//! newest), 256 namespaces and 256 MiB in all, the least recently used namespaces going first
//! ([`RedisCache::DEFAULT_MIRROR_ENTRIES`] and the next two constants);
//! [`RedisCache::with_mirror_limits`] changes them.
//!
//! Redis Cluster is not supported: one connection to one Redis (or a proxy in front of one).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use futures_util::future::BoxFuture;
use gateway_core::{Error, ErrorKind, Result};
use tokio::sync::OnceCell;

use super::{CacheBackend, Nearest, SemanticEntry, now_ms};
use crate::ratelimit::redact;

/// The default longest wait for a connection: short, so a dead Redis fails fast.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The default longest wait for an answer (a namespace's first fetch moves its vectors).
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1_000);

/// Entries the sync script returns with their ids; the rest are fetched in chunks.
const INLINE_ENTRIES: usize = 256;

/// Entries fetched per `HMGET` beyond [`INLINE_ENTRIES`].
const FETCH_CHUNK: usize = 512;

/// The longest TTL written (about 100 years): Redis refuses expiry times that overflow.
const MAX_TTL_MS: u64 = 100 * 365 * 86_400_000;

/// Adds an entry to a namespace's index.
///
/// KEYS: seq, ids, data, keys. `ARGV[1]`: the encoded entry; `ARGV[2]`: its answer key;
/// `ARGV[3]`: the most entries kept; `ARGV[4]`: the TTL in ms. Returns the new entry's id.
///
/// Ids are kept as decimal strings (`%d`): a Lua number would be formatted with 14 digits.
const REMEMBER_LUA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local function answer_key(blob)
  local colon = string.find(blob, ':', 1, true)
  if not colon then return nil end
  local len = tonumber(string.sub(blob, 1, colon - 1))
  if not len then return nil end
  return string.sub(blob, colon + 1, colon + len)
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[1], string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2])))
end
local id = string.format('%d', redis.call('INCR', KEYS[1]))
local old = redis.call('HGET', KEYS[4], ARGV[2])
if old then
  redis.call('ZREM', KEYS[2], old)
  redis.call('HDEL', KEYS[3], old)
end
redis.call('ZADD', KEYS[2], id, id)
redis.call('HSET', KEYS[3], id, ARGV[1])
redis.call('HSET', KEYS[4], ARGV[2], id)
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #popped, 2 do
    local gone = popped[i]
    local blob = redis.call('HGET', KEYS[3], gone)
    redis.call('HDEL', KEYS[3], gone)
    if blob then
      local key = answer_key(blob)
      if key and redis.call('HGET', KEYS[4], key) == gone then
        redis.call('HDEL', KEYS[4], key)
      end
    end
  end
end
local ttl = tonumber(ARGV[4])
for i = 1, 4 do
  if redis.call('PTTL', KEYS[i]) < ttl then
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
return id
";

/// What a mirror needs to catch up with a namespace (read only).
///
/// KEYS: ids, data. `ARGV[1]`: the last id the mirror holds; `ARGV[2]`: the most ids returned
/// (the newest); `ARGV[3]`: the most entries returned with them. Returns `{size, lowest id,
/// highest id, newer ids newest first, the entries of the first of them}`.
const SYNC_LUA: &str = r"
local card = redis.call('ZCARD', KEYS[1])
if card == 0 then
  return {0, '0', '0', {}, {}}
end
local lowest = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
local highest = redis.call('ZRANGE', KEYS[1], -1, -1)[1]
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[2])
local blobs = {}
local n = math.min(#ids, tonumber(ARGV[3]))
if n > 0 then
  local first = {}
  for i = 1, n do first[i] = ids[i] end
  blobs = redis.call('HMGET', KEYS[2], unpack(first))
end
return {card, lowest, highest, ids, blobs}
";

static REMEMBER: LazyLock<::redis::Script> = LazyLock::new(|| ::redis::Script::new(REMEMBER_LUA));
static SYNC: LazyLock<::redis::Script> = LazyLock::new(|| ::redis::Script::new(SYNC_LUA));

/// Cache entries in a Redis shared by every gateway replica: answers under their keys, and each
/// namespace's semantic index, searched in each replica's bounded mirror of it (see the module
/// docs for the layout and the costs).
///
/// Every operation fails with [`ErrorKind::Unavailable`] while Redis cannot be reached (within
/// the connection and response timeouts: 500 ms and 1 s by default), and works again once it
/// is back; errors never show the URL or its password. Entries Redis holds that do not decode
/// are ignored.
pub struct RedisCache {
    client: ::redis::Client,
    manager_config: ConnectionManagerConfig,
    /// Set by the first successful connect; a failed connect leaves it empty, so the next
    /// operation tries again.
    conn: OnceCell<ConnectionManager>,
    /// `gw:cache:<prefix>:`.
    base: String,
    /// The URL and its password, blanked out of every error message.
    secrets: Arc<Vec<String>>,
    limits: Limits,
    mirrors: Mutex<HashMap<String, Arc<Mirror>>>,
    /// Lookup counter, ordering the mirrors by last use.
    tick: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    entries: usize,
    namespaces: usize,
    bytes: usize,
}

impl fmt::Debug for RedisCache {
    // Not derived: the client's Debug prints the connection info, password included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.base)
            .field("connected", &self.conn.initialized())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// The most entries a replica mirrors per namespace by default (the newest): the default of
    /// `cache.semantic.max_entries`.
    pub const DEFAULT_MIRROR_ENTRIES: usize = 10_000;

    /// The most namespaces a replica mirrors by default; the least recently used one is dropped
    /// for a new one (and fetched again whole on its next lookup).
    pub const DEFAULT_MIRROR_NAMESPACES: usize = 256;

    /// The most memory a replica's mirrors take by default, in bytes (vectors, keys and groups):
    /// 256 MiB, some 80,000 entries of 768 dimensions. Beyond it, the least recently used
    /// namespaces are dropped (never the one just looked up, which
    /// [`RedisCache::DEFAULT_MIRROR_ENTRIES`] bounds).
    pub const DEFAULT_MIRROR_BYTES: usize = 256 << 20;

    /// Connects to `url` (`redis://[user:password@]host:port[/db]`, or `unix:///path`) now,
    /// writing every key under `gw:cache:<prefix>:`. Fails with [`ErrorKind::Config`] for a
    /// URL that does not parse, and [`ErrorKind::Unavailable`] when Redis cannot be reached.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        let cache = Self::connect_lazy(url, prefix)?;
        cache.ping().await?;
        Ok(cache)
    }

    /// Like [`RedisCache::connect`], but connects on the first operation: the gateway starts
    /// while Redis is down, and the cache's operations fail with [`ErrorKind::Unavailable`]
    /// (so requests go on without it) until Redis is back. Fails only for a URL that does not
    /// parse.
    pub fn connect_lazy(url: &str, prefix: &str) -> Result<Self> {
        let mut secrets = vec![url.to_owned()];
        let client = ::redis::Client::open(url).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                redact(
                    format!("response cache: the Redis URL is not valid: {e}"),
                    &secrets,
                ),
            )
        })?;
        if let Some(password) = &client.get_connection_info().redis.password
            && !password.is_empty()
        {
            secrets.push(password.clone());
        }
        let base = if prefix.is_empty() {
            "gw:cache:".to_owned()
        } else {
            format!("gw:cache:{prefix}:")
        };
        Ok(Self {
            client,
            manager_config: manager_config(CONNECT_TIMEOUT, RESPONSE_TIMEOUT),
            conn: OnceCell::new(),
            base,
            secrets: Arc::new(secrets),
            limits: Limits {
                entries: Self::DEFAULT_MIRROR_ENTRIES,
                namespaces: Self::DEFAULT_MIRROR_NAMESPACES,
                bytes: Self::DEFAULT_MIRROR_BYTES,
            },
            mirrors: Mutex::new(HashMap::new()),
            tick: AtomicU64::new(0),
        })
    }

    /// The same cache with other timeouts: the longest wait for a connection, and for an
    /// answer. A connection already made is dropped, and the next operation makes one with
    /// these.
    pub fn with_timeouts(mut self, connect: Duration, response: Duration) -> Self {
        self.manager_config = manager_config(connect, response);
        self.conn = OnceCell::new();
        self
    }

    /// The same cache with other bounds on its mirrors: the most entries per namespace (set it
    /// to at least `cache.semantic.max_entries`, else the oldest entries of a full namespace
    /// are never found on this replica), the most namespaces, and the most bytes in all. Each
    /// is at least 1.
    pub fn with_mirror_limits(mut self, entries: usize, namespaces: usize, bytes: usize) -> Self {
        self.limits = Limits {
            entries: entries.max(1),
            namespaces: namespaces.max(1),
            bytes: bytes.max(1),
        };
        lock(&self.mirrors).clear();
        self
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.connection().await?;
        ::redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| unavailable("ping", &e, &self.secrets))
    }

    async fn connection(&self) -> Result<ConnectionManager> {
        self.conn
            .get_or_try_init(|| {
                ConnectionManager::new_with_config(self.client.clone(), self.manager_config.clone())
            })
            .await
            .cloned()
            .map_err(|e| unavailable("connect", &e, &self.secrets))
    }

    fn value_key(&self, key: &str) -> String {
        format!("{}e:{key}", self.base)
    }

    fn index_keys(&self, namespace: &str) -> IndexKeys {
        let at = |what: &str| format!("{}s:{namespace}:{what}", self.base);
        IndexKeys {
            seq: at("seq"),
            ids: at("ids"),
            data: at("data"),
            keys: at("keys"),
        }
    }

    /// The mirror of `namespace`, made (dropping the least recently used one beyond the limit)
    /// if there is none.
    fn mirror(&self, namespace: &str) -> Arc<Mirror> {
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        let mut mirrors = lock(&self.mirrors);
        if let Some(mirror) = mirrors.get(namespace) {
            mirror.used.store(tick, Ordering::Relaxed);
            return Arc::clone(mirror);
        }
        while mirrors.len() >= self.limits.namespaces {
            let Some(oldest) = least_recently_used(&mirrors, None) else {
                break;
            };
            mirrors.remove(&oldest);
        }
        let mirror = Arc::new(Mirror::new(tick));
        mirrors.insert(namespace.to_owned(), Arc::clone(&mirror));
        mirror
    }

    /// After a lookup in `current`: forgets it when it is empty (it costs one round trip to
    /// find it empty again), and drops the least recently used others while the mirrors take
    /// more than their byte budget.
    fn trim_mirrors(&self, namespace: &str, current: &Arc<Mirror>) {
        let mut mirrors = lock(&self.mirrors);
        if current.is_empty()
            && mirrors
                .get(namespace)
                .is_some_and(|m| Arc::ptr_eq(m, current))
        {
            mirrors.remove(namespace);
        }
        loop {
            let total: usize = mirrors
                .values()
                .map(|m| m.bytes.load(Ordering::Relaxed))
                .sum();
            if total <= self.limits.bytes {
                break;
            }
            let Some(oldest) = least_recently_used(&mirrors, Some(current)) else {
                break;
            };
            mirrors.remove(&oldest);
        }
    }
}

fn manager_config(connect: Duration, response: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(connect)
        .set_response_timeout(response)
        // Operations wait on connection attempts: make one per failure, not a backoff series.
        // An operation that finds the connection broken starts the next attempt.
        .set_number_of_retries(0)
}

fn least_recently_used(
    mirrors: &HashMap<String, Arc<Mirror>>,
    except: Option<&Arc<Mirror>>,
) -> Option<String> {
    mirrors
        .iter()
        .filter(|(_, m)| except.is_none_or(|e| !Arc::ptr_eq(m, e)))
        .min_by_key(|(_, m)| m.used.load(Ordering::Relaxed))
        .map(|(namespace, _)| namespace.clone())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The keys of one namespace's index.
#[derive(Debug, Clone)]
struct IndexKeys {
    seq: String,
    ids: String,
    data: String,
    keys: String,
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_TTL_MS)
}

impl CacheBackend for RedisCache {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            let mut conn = self.connection().await?;
            ::redis::cmd("GET")
                .arg(self.value_key(key))
                .query_async::<Option<Vec<u8>>>(&mut conn)
                .await
                .map_err(|e| unavailable("get", &e, &self.secrets))
        })
    }

    fn put<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut conn = self.connection().await?;
            let mut cmd;
            if ttl.is_zero() {
                // Kept for no time: as good as replaced by an entry that already expired.
                cmd = ::redis::cmd("DEL");
                cmd.arg(self.value_key(key));
            } else {
                cmd = ::redis::cmd("SET");
                cmd.arg(self.value_key(key))
                    .arg(value)
                    .arg("PX")
                    .arg(millis(ttl));
            }
            cmd.query_async::<()>(&mut conn)
                .await
                .map_err(|e| unavailable("put", &e, &self.secrets))
        })
    }

    fn nearest<'a>(
        &'a self,
        namespace: &'a str,
        group: &'a str,
        vector: &'a [f32],
    ) -> BoxFuture<'a, Result<Option<Nearest>>> {
        Box::pin(async move {
            let mirror = self.mirror(namespace);
            let asked = Instant::now();
            let conn = self.connection().await?;
            // In a task of its own: a sync the caller stops waiting for still completes.
            let task = tokio::spawn(sync(
                Arc::clone(&mirror),
                conn,
                self.index_keys(namespace),
                asked,
                self.limits.entries,
                Arc::clone(&self.secrets),
            ));
            let synced = task.await.map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("response cache: reading the Redis index failed: {e}"),
                )
            });
            let result = synced
                .and_then(|r| r)
                .map(|()| mirror.nearest(group, vector));
            self.trim_mirrors(namespace, &mirror);
            result
        })
    }

    fn remember<'a>(
        &'a self,
        namespace: &'a str,
        entry: SemanticEntry,
        ttl: Duration,
        max_entries: usize,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if ttl.is_zero() {
                // It would never be found: an index entry already expired.
                return Ok(());
            }
            let ttl_ms = millis(ttl);
            let blob = encode(&entry, now_ms().saturating_add(ttl_ms));
            let keys = self.index_keys(namespace);
            let mut conn = self.connection().await?;
            REMEMBER
                .key(&keys.seq)
                .key(&keys.ids)
                .key(&keys.data)
                .key(&keys.keys)
                .arg(blob)
                .arg(entry.key.as_bytes())
                .arg(u64::try_from(max_entries).unwrap_or(u64::MAX))
                .arg(ttl_ms)
                .invoke_async::<::redis::Value>(&mut conn)
                .await
                .map(drop)
                .map_err(|e| unavailable("index write", &e, &self.secrets))
        })
    }
}

/// One replica's copy of a namespace's index.
struct Mirror {
    /// Held while syncing, so concurrent lookups share one round trip; records when the last
    /// attempt started and how it ended.
    sync: tokio::sync::Mutex<Option<(Instant, Option<String>)>>,
    data: RwLock<MirrorData>,
    /// The lookup counter at the last use.
    used: AtomicU64,
    /// What `data` takes, as counted by [`MirrorData::bytes`].
    bytes: AtomicUsize,
}

#[derive(Debug, Default)]
struct MirrorData {
    /// The highest id seen: the next sync asks for newer ones.
    last_id: u64,
    /// Entries by id, the oldest first.
    slots: BTreeMap<u64, Slot>,
    /// Entries Redis counts that the mirror cannot hold (ids that are not numbers), found by
    /// the last full fetch, so they do not make every sync fetch everything again.
    skew: usize,
    /// When the next live entry expires (ms since the epoch).
    next_expiry_ms: u64,
}

/// An entry as mirrored. An expired or undecodable entry keeps its place (Redis still counts
/// it until it is trimmed) but not its vector.
#[derive(Debug)]
struct Slot {
    key: Option<Box<str>>,
    live: Option<Live>,
}

#[derive(Debug, PartialEq)]
struct Live {
    group: Box<str>,
    expires_ms: u64,
    vector: Box<[f32]>,
}

/// What Redis said of a namespace: its size, lowest and highest ids, and the entries newer than
/// the mirror's (ids ascending, each with its encoded entry if Redis still had it).
#[derive(Debug, Default)]
struct Delta {
    card: usize,
    lowest: u64,
    highest: u64,
    entries: Vec<(u64, Option<Vec<u8>>)>,
}

impl Mirror {
    fn new(tick: u64) -> Self {
        Self {
            sync: tokio::sync::Mutex::new(None),
            data: RwLock::new(MirrorData::default()),
            used: AtomicU64::new(tick),
            bytes: AtomicUsize::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, MirrorData> {
        self.data.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, MirrorData> {
        self.data.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_empty(&self) -> bool {
        self.read().slots.is_empty()
    }

    fn nearest(&self, group: &str, vector: &[f32]) -> Option<Nearest> {
        self.read().nearest(group, vector, now_ms())
    }
}

impl MirrorData {
    /// The best live entry of `group` whose vector has `vector`'s length. Ties go to the newest
    /// entry, as in the memory backend.
    fn nearest(&self, group: &str, vector: &[f32], now: u64) -> Option<Nearest> {
        self.slots
            .values()
            .filter_map(|slot| {
                let live = slot.live.as_ref()?;
                let key = slot.key.as_deref()?;
                (live.expires_ms > now
                    && *live.group == *group
                    && live.vector.len() == vector.len())
                .then(|| (super::dot(&live.vector, vector), key))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(similarity, key)| Nearest {
                similarity,
                key: key.to_owned(),
            })
    }

    /// Applies what Redis said. `false` when the mirror no longer agrees with Redis on the
    /// number of entries (something changed that the delta cannot tell, e.g. Redis' clock went
    /// back): it must then be fetched whole.
    fn apply(&mut self, delta: Delta, cap: usize, now: u64) -> bool {
        if delta.card == 0 {
            // The namespace is gone (expired, or Redis restarted empty). Ids only grow, so
            // `last_id` stays.
            self.slots.clear();
            self.skew = 0;
            return true;
        }
        if delta.highest < self.last_id {
            return false;
        }
        // Trimmed, or older than a namespace that expired and came back.
        self.slots = self.slots.split_off(&delta.lowest);
        let mut fresh = Vec::with_capacity(delta.entries.len());
        for (id, blob) in delta.entries {
            if id > self.last_id {
                fresh.push((id, blob.map_or_else(Slot::missing, |b| decode(&b, now))));
            }
        }
        // An answer indexed again replaced its older entry in Redis: here too.
        let keys: HashSet<&str> = fresh.iter().filter_map(|(_, s)| s.key.as_deref()).collect();
        if !keys.is_empty() {
            self.slots
                .retain(|_, slot| slot.key.as_deref().is_none_or(|k| !keys.contains(k)));
        }
        for (id, slot) in fresh {
            if let Some(live) = &slot.live {
                self.next_expiry_ms = self.next_expiry_ms.min(live.expires_ms);
            }
            self.slots.insert(id, slot);
        }
        self.last_id = self.last_id.max(delta.highest);
        while self.slots.len() > cap {
            self.slots.pop_first();
        }
        if now >= self.next_expiry_ms {
            self.expire(now);
        }
        self.slots.len() + self.skew == delta.card.min(cap)
    }

    /// Frees the vectors of expired entries.
    fn expire(&mut self, now: u64) {
        let mut next = u64::MAX;
        for slot in self.slots.values_mut() {
            match &slot.live {
                Some(live) if live.expires_ms <= now => slot.live = None,
                Some(live) => next = next.min(live.expires_ms),
                None => {}
            }
        }
        self.next_expiry_ms = next;
    }

    /// Forgets everything, for a fetch of the whole namespace.
    fn reset(&mut self) {
        *self = Self {
            next_expiry_ms: u64::MAX,
            ..Self::default()
        };
    }

    /// About what the entries take in memory.
    fn bytes(&self) -> usize {
        self.slots
            .values()
            .map(|s| {
                64 + s.key.as_ref().map_or(0, |k| k.len())
                    + s.live
                        .as_ref()
                        .map_or(0, |l| l.group.len() + 4 * l.vector.len())
            })
            .sum()
    }
}

impl Slot {
    /// An id whose entry Redis no longer had when asked (trimmed meanwhile).
    fn missing() -> Self {
        Self {
            key: None,
            live: None,
        }
    }
}

/// Brings `mirror` up to date, unless a sync that started after `asked` already did (its
/// outcome is then this one's).
async fn sync(
    mirror: Arc<Mirror>,
    mut conn: ConnectionManager,
    keys: IndexKeys,
    asked: Instant,
    cap: usize,
    secrets: Arc<Vec<String>>,
) -> Result<()> {
    let mut last = mirror.sync.lock().await;
    if let Some((started, outcome)) = &*last
        && *started >= asked
    {
        return match outcome {
            None => Ok(()),
            Some(message) => Err(Error::new(ErrorKind::Unavailable, message.clone())),
        };
    }
    let started = Instant::now();
    let outcome = sync_now(&mirror, &mut conn, &keys, cap, &secrets).await;
    *last = Some((
        started,
        outcome.as_ref().err().map(|e| e.message().to_owned()),
    ));
    outcome
}

async fn sync_now(
    mirror: &Mirror,
    conn: &mut ConnectionManager,
    keys: &IndexKeys,
    cap: usize,
    secrets: &[String],
) -> Result<()> {
    let last_id = mirror.read().last_id;
    let delta = fetch(conn, keys, last_id, cap, secrets).await?;
    let agrees = mirror.write().apply(delta, cap, now_ms());
    if !agrees {
        let delta = fetch(conn, keys, 0, cap, secrets).await?;
        let mut data = mirror.write();
        data.reset();
        let card = delta.card;
        data.apply(delta, cap, now_ms());
        data.skew = card.min(cap).saturating_sub(data.slots.len());
    }
    let bytes = mirror.read().bytes();
    mirror.bytes.store(bytes, Ordering::Relaxed);
    Ok(())
}

/// Asks Redis for the namespace's size and bounds and the (at most `cap`) newest entries with
/// an id above `after`.
async fn fetch(
    conn: &mut ConnectionManager,
    keys: &IndexKeys,
    after: u64,
    cap: usize,
    secrets: &[String],
) -> Result<Delta> {
    type Reply = (u64, Vec<u8>, Vec<u8>, Vec<Vec<u8>>, Vec<Option<Vec<u8>>>);
    let (card, lowest, highest, ids, mut blobs) = SYNC
        .key(&keys.ids)
        .key(&keys.data)
        .arg(after)
        // Redis wants a signed 64-bit count.
        .arg(i64::try_from(cap).unwrap_or(i64::MAX))
        .arg(INLINE_ENTRIES)
        .invoke_async::<Reply>(conn)
        .await
        .map_err(|e| unavailable("index read", &e, secrets))?;
    // Members that are not ids (not written by this backend) are left out.
    let ids: Vec<u64> = ids.iter().filter_map(|id| parse_id(id)).collect();
    if ids.len() > blobs.len() {
        // One request per chunk (all in flight at once on the connection), so the response
        // timeout bounds each chunk rather than the whole namespace.
        let chunks = ids[blobs.len()..].chunks(FETCH_CHUNK).map(|chunk| {
            let mut conn = conn.clone();
            let mut cmd = ::redis::cmd("HMGET");
            cmd.arg(&keys.data).arg(chunk);
            async move { cmd.query_async::<Vec<Option<Vec<u8>>>>(&mut conn).await }
        });
        let chunks = futures_util::future::try_join_all(chunks)
            .await
            .map_err(|e| unavailable("index read", &e, secrets))?;
        blobs.extend(chunks.into_iter().flatten());
    }
    blobs.resize(ids.len(), None);
    let mut entries: Vec<_> = ids.into_iter().zip(blobs).collect();
    entries.reverse();
    Ok(Delta {
        card: usize::try_from(card).unwrap_or(usize::MAX),
        lowest: parse_id(&lowest).unwrap_or(0),
        highest: parse_id(&highest).unwrap_or(0),
        entries,
    })
}

fn parse_id(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// An index entry as Redis keeps it: `<key length>:<key><group length>:<group><expiry in ms
/// since the epoch>:` then the vector's little-endian `f32`s. The answer key comes first so the
/// Lua script can read it.
fn encode(entry: &SemanticEntry, expires_ms: u64) -> Vec<u8> {
    let mut blob =
        Vec::with_capacity(entry.key.len() + entry.group.len() + 4 * entry.vector.len() + 3 * 21);
    for text in [&entry.key, &entry.group] {
        blob.extend_from_slice(format!("{}:", text.len()).as_bytes());
        blob.extend_from_slice(text.as_bytes());
    }
    blob.extend_from_slice(format!("{expires_ms}:").as_bytes());
    for x in &entry.vector {
        blob.extend_from_slice(&x.to_le_bytes());
    }
    blob
}

/// The entry `blob` encodes ([`encode`]), live unless it expired by `now`; as much as can be
/// read of a blob that does not decode (its key, so a newer entry can still replace it).
fn decode(blob: &[u8], now: u64) -> Slot {
    fn number(bytes: &[u8]) -> Option<(u64, &[u8])> {
        let colon = bytes.iter().take(21).position(|&b| b == b':')?;
        let n = std::str::from_utf8(&bytes[..colon]).ok()?.parse().ok()?;
        Some((n, &bytes[colon + 1..]))
    }
    fn text(bytes: &[u8]) -> Option<(&str, &[u8])> {
        let (len, rest) = number(bytes)?;
        let len = usize::try_from(len).ok()?;
        let text = std::str::from_utf8(rest.get(..len)?).ok()?;
        Some((text, &rest[len..]))
    }
    let Some((key, rest)) = text(blob) else {
        return Slot::missing();
    };
    let live = (|| {
        let (group, rest) = text(rest)?;
        let (expires_ms, rest) = number(rest)?;
        if !rest.len().is_multiple_of(4) || expires_ms <= now {
            return None;
        }
        let vector = rest
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Some(Live {
            group: group.into(),
            expires_ms,
            vector,
        })
    })();
    Slot {
        key: Some(key.into()),
        live,
    }
}

/// An [`ErrorKind::Unavailable`] for a failed Redis `action`, without any secret.
fn unavailable(action: &str, e: &::redis::RedisError, secrets: &[String]) -> Error {
    crate::ratelimit::redis_unavailable("response cache", action, e, secrets)
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

    const NOW: u64 = 1_000_000;

    #[test]
    fn entries_decode_as_encoded() {
        let e = entry("g:1", vec![0.6, -0.8, f32::MIN_POSITIVE], "k:ey");
        let slot = decode(&encode(&e, NOW + 5), NOW);
        assert_eq!(slot.key.as_deref(), Some("k:ey"));
        assert_eq!(
            slot.live,
            Some(Live {
                group: "g:1".into(),
                expires_ms: NOW + 5,
                vector: e.vector.clone().into(),
            })
        );
        let expired = decode(&encode(&e, NOW), NOW);
        assert_eq!(expired.key.as_deref(), Some("k:ey"));
        assert_eq!(expired.live, None, "expired: no vector kept");
    }

    #[test]
    fn corrupt_entries_are_ignored_without_panicking() {
        let blob = encode(&entry("group", vec![1.0, 0.0], "key"), NOW + 5);
        let header = blob.len() - 8;
        for end in 0..blob.len() {
            let slot = decode(&blob[..end], NOW);
            let whole = end >= header && (end - header).is_multiple_of(4);
            assert_eq!(slot.live.is_some(), whole, "cut at {end}");
        }
        for garbage in [
            &b""[..],
            b":",
            b"99999999999999999999999:x",
            b"3:k\xffy5:group",
            b"-1:",
            b"3:key5:group1:\x00\x00",
        ] {
            assert!(decode(garbage, NOW).live.is_none(), "{garbage:?}");
        }
        // The key of an entry whose rest is garbage is still known (an entry indexed again
        // replaces it).
        assert_eq!(decode(b"3:keyjunk", NOW).key.as_deref(), Some("key"));
    }

    fn delta(card: usize, lowest: u64, highest: u64, new: &[(u64, &SemanticEntry)]) -> Delta {
        Delta {
            card,
            lowest,
            highest,
            entries: new
                .iter()
                .map(|(id, e)| (*id, Some(encode(e, NOW + 60_000))))
                .collect(),
        }
    }

    #[test]
    fn a_mirror_follows_additions_trims_replacements_and_expiry() {
        let a = entry("g", vec![1.0, 0.0], "a");
        let b = entry("g", vec![0.6, 0.8], "b");
        let c = entry("other", vec![0.0, 1.0], "c");
        let mut m = MirrorData::default();
        assert!(m.apply(delta(3, 10, 12, &[(10, &a), (11, &b), (12, &c)]), 100, NOW));
        let found = m.nearest("g", &[0.0, 1.0], NOW).unwrap();
        assert_eq!(found.key, "b");
        assert_eq!(m.nearest("g", &[0.0, 1.0, 0.0], NOW), None, "other length");
        // 10 trimmed, "b" indexed again as 13.
        let b2 = entry("g", vec![0.0, 1.0], "b");
        assert!(m.apply(delta(2, 12, 13, &[(13, &b2)]), 100, NOW));
        assert_eq!(m.slots.keys().copied().collect::<Vec<_>>(), [12, 13]);
        assert!((m.nearest("g", &[0.0, 1.0], NOW).unwrap().similarity - 1.0).abs() < 1e-6);
        // Nothing new: nothing changes.
        assert!(m.apply(delta(2, 12, 13, &[]), 100, NOW));
        // Expired entries keep their place but not their vectors.
        let later = NOW + 60_000;
        assert!(m.apply(delta(2, 12, 13, &[]), 100, later));
        assert!(m.slots.values().all(|s| s.live.is_none()));
        assert_eq!(m.nearest("g", &[0.0, 1.0], later), None);
        // The namespace expired and came back with higher ids.
        assert!(m.apply(delta(1, 500, 500, &[(500, &a)]), 100, later));
        assert_eq!(m.slots.keys().copied().collect::<Vec<_>>(), [500]);
        // Gone.
        assert!(m.apply(delta(0, 0, 0, &[]), 100, later));
        assert!(m.slots.is_empty());
        assert_eq!(m.last_id, 500);
    }

    #[test]
    fn a_mirror_keeps_its_newest_entries_and_notices_disagreement() {
        let e: Vec<_> = (0..5)
            .map(|i| entry("g", vec![1.0], &format!("k{i}")))
            .collect();
        let mut m = MirrorData::default();
        let new: Vec<_> = (0..5).map(|i| (i + 1, &e[i as usize])).collect();
        assert!(m.apply(delta(5, 1, 5, &new), 3, NOW), "5 in Redis, 3 here");
        assert_eq!(m.slots.keys().copied().collect::<Vec<_>>(), [3, 4, 5]);
        // Redis' ids went back (its clock did): fetch everything again.
        assert!(!m.apply(delta(1, 2, 2, &[]), 3, NOW));
        // A count that does not add up.
        let mut m = MirrorData::default();
        assert!(!m.apply(delta(4, 1, 2, &new[..2]), 10, NOW));
    }
}
