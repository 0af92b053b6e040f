//! The semantic cache's lookup on its own: a namespace of 10,000 entries of 768 dimensions
//! (the size of common embedding models), looked up again and again, on each backend. The
//! embedding call a semantic lookup also makes is the provider's time, not measured here.

use std::time::{Duration, Instant};

use llm_gateway::cache::{CacheBackend, MemoryCache, RedisCache, SemanticEntry};

/// Entries in the namespace.
pub(crate) const ENTRIES: usize = 10_000;
/// Their dimensions.
pub(crate) const DIMENSIONS: usize = 768;
/// Lookups measured after the first.
const LOOKUPS: usize = 200;

/// What one backend measured.
pub(crate) struct Lookup {
    pub(crate) backend: &'static str,
    /// Writing the entries.
    pub(crate) fill: Duration,
    /// The first lookup (on Redis: this replica's mirror of the namespace is loaded).
    pub(crate) first: Duration,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
}

/// A pseudo-random unit vector (xorshift), so runs compare.
fn vector(seed: &mut u64) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIMENSIONS)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

async fn measure_one(backend: &dyn CacheBackend, name: &'static str) -> Result<Lookup, String> {
    let namespace = format!("bench-{}", std::process::id());
    let ttl = Duration::from_secs(600);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let started = Instant::now();
    for i in 0..ENTRIES {
        let entry = SemanticEntry {
            group: "group".into(),
            vector: vector(&mut seed),
            key: format!("answer-{i}"),
        };
        backend
            .remember(&namespace, entry, ttl, ENTRIES)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
    }
    let fill = started.elapsed();
    let query = vector(&mut seed);
    let started = Instant::now();
    backend
        .nearest(&namespace, "group", &query)
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let first = started.elapsed();
    let mut times = Vec::with_capacity(LOOKUPS);
    for _ in 0..LOOKUPS {
        let query = vector(&mut seed);
        let started = Instant::now();
        let found = backend
            .nearest(&namespace, "group", &query)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        times.push(started.elapsed());
        if found.is_none() {
            return Err(format!(
                "{name}: the lookup found nothing in a full namespace"
            ));
        }
    }
    times.sort();
    Ok(Lookup {
        backend: name,
        fill,
        first,
        p50: times[LOOKUPS / 2],
        p99: times[LOOKUPS * 99 / 100],
    })
}

/// Measures the in-memory backend, and Redis at `redis` when given.
pub(crate) async fn measure(redis: Option<&str>) -> Result<Vec<Lookup>, String> {
    let mut out = vec![measure_one(&MemoryCache::new(64 << 20), "memory").await?];
    if let Some(url) = redis {
        let prefix = format!("bench-{}", std::process::id());
        let cache = RedisCache::connect(url, &prefix)
            .await
            .map_err(|e| format!("redis: {e}"))?
            .with_timeouts(Duration::from_secs(2), Duration::from_secs(30));
        out.push(measure_one(&cache, "redis").await?);
    }
    Ok(out)
}
