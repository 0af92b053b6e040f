//! `RedisCache` against a real Redis at `GATEWAY_TEST_REDIS_URL` (e.g. `redis://127.0.0.1:6379`);
//! each test writes under a random prefix, so runs never see each other's keys, and every key
//! expires by itself. The dead-Redis test starts (and kills) a `redis-server` of its own.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use llm_gateway::cache::{CacheBackend, RedisCache, SemanticEntry};
use llm_gateway::{Error, ErrorKind};

const MINUTE: Duration = Duration::from_secs(60);

fn redis_url() -> Option<String> {
    match std::env::var("GATEWAY_TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!("skipped: GATEWAY_TEST_REDIS_URL not set");
            None
        }
    }
}

fn random_prefix() -> String {
    format!("test:{:016x}", fastrand::u64(..))
}

/// A cache with its own connection, as one gateway replica has.
async fn replica(url: &str, prefix: &str) -> RedisCache {
    RedisCache::connect(url, prefix)
        .await
        .expect("GATEWAY_TEST_REDIS_URL is reachable")
}

fn entry(group: &str, vector: Vec<f32>, key: &str) -> SemanticEntry {
    SemanticEntry {
        group: group.into(),
        vector,
        key: key.into(),
    }
}

async fn nearest_key(cache: &RedisCache, ns: &str, group: &str, v: &[f32]) -> Option<String> {
    cache.nearest(ns, group, v).await.unwrap().map(|n| n.key)
}

#[tokio::test]
async fn answers_are_kept_until_they_expire() {
    let Some(url) = redis_url() else { return };
    let cache = replica(&url, &random_prefix()).await;
    assert_eq!(cache.name(), "redis");
    assert_eq!(cache.get("a").await.unwrap(), None);
    cache.put("a", vec![1, 0, 255], MINUTE).await.unwrap();
    assert_eq!(cache.get("a").await.unwrap(), Some(vec![1, 0, 255]));
    cache.put("a", b"again".to_vec(), MINUTE).await.unwrap();
    assert_eq!(cache.get("a").await.unwrap(), Some(b"again".to_vec()));
    cache
        .put("b", vec![2; 20], Duration::from_millis(50))
        .await
        .unwrap();
    assert!(cache.get("b").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(cache.get("b").await.unwrap(), None, "expired");
    // Kept for no time: gone at once.
    cache.put("a", vec![3], Duration::ZERO).await.unwrap();
    assert_eq!(cache.get("a").await.unwrap(), None);
    // Another prefix is another cache.
    cache.put("c", vec![4], MINUTE).await.unwrap();
    let other = replica(&url, &random_prefix()).await;
    assert_eq!(other.get("c").await.unwrap(), None);
}

#[tokio::test]
async fn finds_the_nearest_entry_of_the_same_namespace_and_group() {
    let Some(url) = redis_url() else { return };
    let cache = replica(&url, &random_prefix()).await;
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
    let found = cache
        .nearest("ns2", "g", &[0.0, 1.0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.key, "k4");
    assert!((found.similarity - 1.0).abs() < 1e-6);
}

#[tokio::test]
async fn a_namespace_keeps_its_newest_entries_and_expires() {
    let Some(url) = redis_url() else { return };
    let prefix = random_prefix();
    let cache = replica(&url, &prefix).await;
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

    // Redis holds three entries, and the namespace's keys expire.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ns = format!("gw:cache:{prefix}:s:ns");
    let ids: usize = redis::cmd("ZCARD")
        .arg(format!("{ns}:ids"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let data: usize = redis::cmd("HLEN")
        .arg(format!("{ns}:data"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let keys: usize = redis::cmd("HLEN")
        .arg(format!("{ns}:keys"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!((ids, data, keys), (3, 3, 3));
    for what in ["seq", "ids", "data", "keys"] {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(format!("{ns}:{what}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 50_000 && ttl <= 60_000, "{what}: {ttl}");
    }

    // An answer indexed again replaces its older entry.
    cache
        .remember("ns", entry("g", vec![1.0, 0.0], "k4"), MINUTE, 3)
        .await
        .unwrap();
    let found = cache
        .nearest("ns", "g", &[1.0, 0.0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.key, "k4");
    assert!((found.similarity - 1.0).abs() < 1e-6);
    let data: usize = redis::cmd("HLEN")
        .arg(format!("{ns}:data"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(data, 3, "k2, k3 and the new k4");

    // Entries expire with their TTL.
    cache
        .remember(
            "short",
            entry("g", vec![1.0], "brief"),
            Duration::from_millis(100),
            3,
        )
        .await
        .unwrap();
    assert_eq!(
        nearest_key(&cache, "short", "g", &[1.0]).await.as_deref(),
        Some("brief")
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(nearest_key(&cache, "short", "g", &[1.0]).await, None);
}

#[tokio::test]
async fn replicas_see_each_others_entries() {
    let Some(url) = redis_url() else { return };
    let prefix = random_prefix();
    let (a, b) = (replica(&url, &prefix).await, replica(&url, &prefix).await);
    let (x, y) = ([1.0, 0.0], [0.0, 1.0]);
    assert_eq!(nearest_key(&b, "ns", "g", &x).await, None);
    a.remember("ns", entry("g", vec![0.6, 0.8], "first"), MINUTE, 3)
        .await
        .unwrap();
    assert_eq!(
        nearest_key(&b, "ns", "g", &x).await.as_deref(),
        Some("first")
    );
    // b mirrors the namespace now: it still sees what a adds.
    a.remember("ns", entry("g", vec![1.0, 0.0], "second"), MINUTE, 3)
        .await
        .unwrap();
    assert_eq!(
        nearest_key(&b, "ns", "g", &x).await.as_deref(),
        Some("second")
    );
    assert_eq!(
        nearest_key(&b, "ns", "g", &y).await.as_deref(),
        Some("first")
    );
    // And what a's writes trim: "first" goes.
    for key in ["third", "fourth"] {
        a.remember("ns", entry("g", vec![0.0, -1.0], key), MINUTE, 3)
            .await
            .unwrap();
    }
    let found = b.nearest("ns", "g", &y).await.unwrap().unwrap();
    assert_eq!(found.key, "second", "first was trimmed");
    assert!(found.similarity.abs() < 1e-6);
    // And an answer indexed again.
    a.remember("ns", entry("g", vec![0.0, 1.0], "third"), MINUTE, 3)
        .await
        .unwrap();
    assert_eq!(
        nearest_key(&b, "ns", "g", &y).await.as_deref(),
        Some("third")
    );
    // b's writes reach a the same way.
    b.remember("ns", entry("h", vec![0.0, 1.0], "from-b"), MINUTE, 3)
        .await
        .unwrap();
    assert_eq!(
        nearest_key(&a, "ns", "h", &y).await.as_deref(),
        Some("from-b")
    );
}

#[tokio::test]
async fn corrupt_index_entries_are_ignored() {
    let Some(url) = redis_url() else { return };
    let prefix = random_prefix();
    let cache = replica(&url, &prefix).await;
    cache
        .remember("ns", entry("g", vec![1.0, 0.0], "good"), MINUTE, 10)
        .await
        .unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ns = format!("gw:cache:{prefix}:s:ns");
    let seq: u64 = redis::cmd("GET")
        .arg(format!("{ns}:seq"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let (bad, missing) = (seq + 1, seq + 2);
    let _: () = redis::pipe()
        .cmd("ZADD")
        .arg(format!("{ns}:ids"))
        .arg(bad)
        .arg(bad)
        .cmd("HSET")
        .arg(format!("{ns}:data"))
        .arg(bad)
        .arg(&b"12:\xff\xfe garbage"[..])
        .cmd("ZADD")
        .arg(format!("{ns}:ids"))
        .arg(missing)
        .arg(missing)
        .cmd("ZADD")
        .arg(format!("{ns}:ids"))
        .arg(0)
        .arg("not-an-id")
        .query_async(&mut conn)
        .await
        .unwrap();
    // The writer (no mirror yet) and another replica, each twice (fetching, then caught up).
    let other = replica(&url, &prefix).await;
    for reader in [&cache, &other] {
        for _ in 0..2 {
            let found = reader.nearest("ns", "g", &[1.0, 0.0]).await.unwrap();
            assert_eq!(found.map(|n| n.key).as_deref(), Some("good"));
        }
    }
    // Writes go on, and trim the bad entries like any other.
    for i in 0..4 {
        cache
            .remember(
                "ns",
                entry("g", vec![0.0, 1.0], &format!("k{i}")),
                MINUTE,
                2,
            )
            .await
            .unwrap();
    }
    let found = cache
        .nearest("ns", "g", &[1.0, 0.0])
        .await
        .unwrap()
        .unwrap();
    assert!(found.key == "k2" || found.key == "k3", "{}", found.key);
}

fn unit_vector(dims: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dims).map(|_| fastrand::f32() - 0.5).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_entries_are_fetched_once() {
    let Some(url) = redis_url() else { return };
    const ENTRIES: usize = 10_000;
    const DIMS: usize = 768;
    let prefix = random_prefix();
    let writer = Arc::new(replica(&url, &prefix).await);
    let vectors: Arc<Vec<Vec<f32>>> = Arc::new((0..ENTRIES).map(|_| unit_vector(DIMS)).collect());
    let started = Instant::now();
    // k0 first and alone, so it is the oldest entry, the one the trim below removes (the eight
    // writers after it race, so their first entries come in any order).
    writer
        .remember("big", entry("g", vectors[0].clone(), "k0"), MINUTE, ENTRIES)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for task in 0..8 {
        let (writer, vectors) = (Arc::clone(&writer), Arc::clone(&vectors));
        tasks.push(tokio::spawn(async move {
            for i in (1 + task..ENTRIES).step_by(8) {
                let e = entry("g", vectors[i].clone(), &format!("k{i}"));
                writer.remember("big", e, MINUTE, ENTRIES).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    println!(
        "indexed {ENTRIES} entries of {DIMS} dimensions in {:?}",
        started.elapsed()
    );

    let reader = replica(&url, &prefix).await;
    let target = 1234;
    for lookup in ["first (fetches the namespace)", "second", "third"] {
        let started = Instant::now();
        let found = reader
            .nearest("big", "g", &vectors[target])
            .await
            .unwrap()
            .unwrap();
        println!(
            "{lookup} lookup among {ENTRIES} entries: {:?}",
            started.elapsed()
        );
        assert_eq!(found.key, format!("k{target}"));
        assert!((found.similarity - 1.0).abs() < 1e-4);
    }
    // Without the similarities (no entry of that group): what the round trip costs.
    let started = Instant::now();
    assert_eq!(reader.nearest("big", "h", &vectors[0]).await.unwrap(), None);
    println!(
        "lookup of another group (no similarity computed): {:?}",
        started.elapsed()
    );
    // One more entry: the next lookup fetches only it.
    let newest = unit_vector(DIMS);
    writer
        .remember("big", entry("g", newest.clone(), "newest"), MINUTE, ENTRIES)
        .await
        .unwrap();
    let started = Instant::now();
    let found = reader.nearest("big", "g", &newest).await.unwrap().unwrap();
    println!(
        "lookup after one more entry (the oldest trimmed): {:?}",
        started.elapsed()
    );
    assert_eq!(found.key, "newest");
    let oldest = reader
        .nearest("big", "g", &vectors[0])
        .await
        .unwrap()
        .unwrap();
    assert_ne!(oldest.key, "k0", "trimmed beyond {ENTRIES}");
}

/// A `redis-server` of this test's own, killed when dropped.
struct Server {
    child: Child,
}

impl Server {
    fn start(port: u16, password: &str) -> Option<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--requirepass", password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(Self { child })
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (at most 5 s) for `cache` to reach its Redis.
async fn until_up(cache: &RedisCache) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Err(e) = cache.ping().await {
        assert!(Instant::now() < deadline, "redis-server did not start: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_unavailable(e: &Error, password: &str) {
    assert_eq!(*e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("Redis"), "{e}");
    assert!(!e.to_string().contains(password), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_redis_fails_fast_and_a_restarted_one_is_used_again() {
    if redis_url().is_none() {
        return;
    }
    let password = "s3cret-cache-pw";
    let port = free_port();
    let Some(server) = Server::start(port, password) else {
        eprintln!("skipped: redis-server is not installed");
        return;
    };
    let url = format!("redis://:{password}@127.0.0.1:{port}");
    // Lazy: made before Redis answers, as a gateway starting while Redis is down.
    let cache = RedisCache::connect_lazy(&url, &random_prefix()).unwrap();
    until_up(&cache).await;
    cache.put("a", vec![1], MINUTE).await.unwrap();
    cache
        .remember("ns", entry("g", vec![1.0], "a"), MINUTE, 10)
        .await
        .unwrap();
    assert_eq!(
        nearest_key(&cache, "ns", "g", &[1.0]).await.as_deref(),
        Some("a")
    );

    server.kill();
    for op in ["get", "put", "nearest", "remember", "get again"] {
        let started = Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(3), async {
            match op {
                "put" => cache.put("b", vec![2], MINUTE).await.map(drop),
                "nearest" => cache.nearest("ns", "g", &[1.0]).await.map(drop),
                "remember" => {
                    let e = entry("g", vec![1.0], "b");
                    cache.remember("ns", e, MINUTE, 10).await
                }
                _ => cache.get("a").await.map(drop),
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{op} hung on a dead Redis"));
        let elapsed = started.elapsed();
        println!("{op} on a dead Redis: {elapsed:?}");
        assert_unavailable(&outcome.expect_err(op), password);
        assert!(elapsed < Duration::from_millis(1_500), "{op}: {elapsed:?}");
    }

    let _server = Server::start(port, password).expect("redis-server restarts");
    // The first operations may still find the connection broken; within a few seconds, they
    // work again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Err(e) = cache.put("b", vec![2], MINUTE).await {
        assert_unavailable(&e, password);
        assert!(
            Instant::now() < deadline,
            "Redis is back, the cache is not: {e}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cache.get("b").await.unwrap(), Some(vec![2]));
    assert_eq!(
        cache.get("a").await.unwrap(),
        None,
        "lost with the old Redis"
    );
    assert_eq!(
        nearest_key(&cache, "ns", "g", &[1.0]).await,
        None,
        "the mirror follows the empty Redis"
    );
    cache
        .remember("ns", entry("g", vec![1.0], "b"), MINUTE, 10)
        .await
        .unwrap();
    assert_eq!(
        nearest_key(&cache, "ns", "g", &[1.0]).await.as_deref(),
        Some("b")
    );
}

#[tokio::test]
async fn an_unreachable_redis_is_unavailable_and_a_bad_url_a_config_error() {
    let Some(_) = redis_url() else { return };
    let password = "hunter2-cache";
    let url = format!("redis://:{password}@127.0.0.1:{}", free_port());
    let started = Instant::now();
    let e = RedisCache::connect(&url, "x").await.unwrap_err();
    assert_unavailable(&e, password);
    assert!(started.elapsed() < Duration::from_secs(2));
    let cache = RedisCache::connect_lazy(&url, "x").unwrap();
    assert!(!format!("{cache:?}").contains(password));
    assert_unavailable(&cache.get("k").await.unwrap_err(), password);
    let e = RedisCache::connect_lazy("nope://:hunter2@host", "x").unwrap_err();
    assert_eq!(*e.kind(), ErrorKind::Config);
    assert!(!e.to_string().contains("hunter2"), "{e}");
}
