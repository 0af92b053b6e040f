//! Tests of `ratelimit` against a real Redis at `GATEWAY_TEST_REDIS_URL`; each test writes under
//! a random prefix, so runs never see each other's keys, and every key expires by itself.

use super::shared::{GCRA_LUA, LuaScript};
use super::*;

fn n(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap()
}

fn redis_url() -> Option<String> {
    match std::env::var("GATEWAY_TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!("skipped: GATEWAY_TEST_REDIS_URL is not set");
            None
        }
    }
}

fn random_prefix() -> String {
    format!("llm-gateway-test:{:016x}", fastrand::u64(..))
}

/// A store with its own connection, as one gateway replica has.
async fn replica(url: &str, prefix: &str) -> RedisStore {
    RedisStore::connect(&RedisConfig::new(url).prefix(prefix))
        .await
        .expect("GATEWAY_TEST_REDIS_URL is reachable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_together_admit_exactly_the_burst() {
    let Some(url) = redis_url() else { return };
    let prefix = random_prefix();
    // One unit a minute: nothing replenishes while the test runs.
    let quota = Quota::per_hour(n(60)).with_burst(n(25));
    let replicas = [replica(&url, &prefix).await, replica(&url, &prefix).await];
    let mut tasks = Vec::new();
    for task in 0..8 {
        let limiter = replicas[task % 2].limiter("in-user-requests", quota);
        tasks.push(tokio::spawn(async move {
            let mut allowed = 0u32;
            let mut waits = Vec::new();
            for _ in 0..25 {
                match limiter.check("user-1", 1).await.unwrap() {
                    Decision::Allowed => allowed += 1,
                    Decision::Limited { retry_after } => waits.push(retry_after),
                }
            }
            (allowed, waits)
        }));
    }
    let mut allowed = 0;
    for task in tasks {
        let (a, waits) = task.await.unwrap();
        allowed += a;
        for wait in waits {
            assert!(
                wait > Duration::ZERO && wait <= quota.interval(),
                "retry_after {wait:?}"
            );
        }
    }
    assert_eq!(allowed, 25, "200 checks from two replicas");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let Some(url) = redis_url() else { return };
    let store = replica(&url, &random_prefix()).await;
    // One call every two seconds: the margins below are a second or more.
    let every_2s = Quota::new(n(1), Duration::from_secs(2)).unwrap();
    let limiter = store.limiter("out-gemini-requests", every_2s);
    limiter
        .check("key-a", 1)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    let Decision::Limited { retry_after } = limiter.check("key-a", 1).await.unwrap() else {
        panic!("a second call within the interval passed");
    };
    assert!(
        retry_after > Duration::from_secs(1) && retry_after <= Duration::from_secs(2),
        "{retry_after:?}"
    );
    // Waiting less than asked is still too early; waiting as asked is enough.
    tokio::time::sleep(retry_after / 4).await;
    assert!(!limiter.check("key-a", 1).await.unwrap().is_allowed());
    tokio::time::sleep(retry_after).await;
    assert_eq!(limiter.check("key-a", 1).await.unwrap(), Decision::Allowed);
}

#[tokio::test]
async fn costs_weigh_tokens_and_too_costly_is_refused() {
    let Some(url) = redis_url() else { return };
    let store = replica(&url, &random_prefix()).await;
    let limiter = store.limiter("out-gemini-tokens", Quota::per_hour(n(1000)));
    assert!(limiter.check("key-a", 600).await.unwrap().is_allowed());
    let Decision::Limited { retry_after } = limiter.check("key-a", 600).await.unwrap() else {
        panic!("1200 tokens passed a burst of 1000");
    };
    // 200 tokens short, at 3.6 s a token.
    assert!(
        retry_after > Duration::from_secs(700) && retry_after <= Duration::from_secs(720),
        "{retry_after:?}"
    );
    assert!(limiter.check("key-a", 400).await.unwrap().is_allowed());
    assert!(limiter.check("key-a", 0).await.unwrap().is_allowed());
    let e = limiter.check("key-a", 1001).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::QuotaExceeded);
}

#[tokio::test]
async fn prefixes_isolate_runs_and_keys_expire() {
    let Some(url) = redis_url() else { return };
    let quota = Quota::per_hour(n(2));
    let (first, second) = (random_prefix(), random_prefix());
    let a = replica(&url, &first).await.limiter("in-key", quota);
    let b = replica(&url, &second).await.limiter("in-key", quota);
    for _ in 0..2 {
        assert!(a.check("gw-key-1", 1).await.unwrap().is_allowed());
    }
    assert!(!a.check("gw-key-1", 1).await.unwrap().is_allowed());
    assert!(b.check("gw-key-1", 1).await.unwrap().is_allowed());

    let key = a.redis_key("gw-key-1");
    assert_eq!(key, format!("{first}:in-key:gw-key-1"));
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    // Two units spent at 30 min each: full again in an hour, then the key goes.
    assert!(ttl_ms > 3_000_000 && ttl_ms <= 3_600_001, "PTTL {ttl_ms}");
}

#[tokio::test]
async fn evalsha_falls_back_to_eval_for_an_uncached_script() {
    let Some(url) = redis_url() else { return };
    let store = replica(&url, &random_prefix()).await;
    let limiter = store.limiter("fallback", Quota::per_hour(n(1)));
    // The same script with a unique comment: no Redis has it cached yet.
    let script = LuaScript::new(&format!("{GCRA_LUA}-- {:016x}\n", fastrand::u64(..)));
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let cached = |conn: &mut redis::aio::MultiplexedConnection| {
        let mut cmd = redis::cmd("SCRIPT");
        cmd.arg("EXISTS").arg(script.sha1());
        let mut conn = conn.clone();
        async move { cmd.query_async::<Vec<i64>>(&mut conn).await.unwrap() }
    };
    assert_eq!(cached(&mut conn).await, [0]);
    assert!(
        limiter
            .check_with(&script, "k", 1)
            .await
            .unwrap()
            .is_allowed()
    );
    assert_eq!(cached(&mut conn).await, [1], "EVAL cached the script");
    assert!(
        !limiter
            .check_with(&script, "k", 1)
            .await
            .unwrap()
            .is_allowed()
    );
}

#[tokio::test]
async fn shared_backend_from_config() {
    let Some(url) = redis_url() else { return };
    let backend = LimiterBackend::Redis(RedisConfig::new(url).prefix(random_prefix()));
    let limiters = RateLimiters::from_config(&backend).await.unwrap();
    assert!(limiters.is_shared());
    let l = limiters.limiter("in-user-requests", Quota::per_hour(n(1)));
    assert_eq!(l.check("u", 1).await.unwrap(), Decision::Allowed);
    assert!(!l.check("u", 1).await.unwrap().is_allowed());
}

#[tokio::test]
async fn a_lazy_store_connects_on_its_first_check() {
    let Some(url) = redis_url() else { return };
    let store = RedisStore::connect_lazy(&RedisConfig::new(url).prefix(random_prefix())).unwrap();
    assert!(
        format!("{store:?}").contains("connected: false"),
        "{store:?}"
    );
    let l = store.limiter("lazy", Quota::per_hour(n(1)));
    assert_eq!(l.check("u", 1).await.unwrap(), Decision::Allowed);
    assert!(
        format!("{store:?}").contains("connected: true"),
        "{store:?}"
    );
}

const SECRET_URL: &str = "redis://gw:hunter2-secret@127.0.0.1:1/0";

fn assert_no_secret(e: &Error) {
    for shown in [e.to_string(), format!("{e:?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains(SECRET_URL), "{shown}");
    }
}

// Needs no Redis: nothing listens on port 1.
#[tokio::test]
async fn unreachable_redis_is_unavailable_and_hides_the_url() {
    let config = RedisConfig::new(SECRET_URL);
    let e = RedisStore::connect(&config).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Unavailable, "{e}");
    assert_no_secret(&e);

    let store = RedisStore::connect_lazy(&config).unwrap();
    assert!(!format!("{store:?}").contains("hunter2"));
    let limiter = store.limiter("in-user-requests", Quota::per_second(n(5)));
    for _ in 0..2 {
        let e = limiter.check("u", 1).await.unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Unavailable, "{e}");
        assert_no_secret(&e);
    }
}

#[tokio::test]
async fn an_invalid_url_is_a_config_error() {
    let e = RedisStore::connect(&RedisConfig::new("http://user:hunter2-secret@cache"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Config, "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
}
