//! Tests of `ratelimit`.

use super::*;
use crate::breaker::ManualClock;

fn n(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap()
}

fn limiter(quota: Quota) -> (LocalLimiter, ManualClock) {
    let clock = ManualClock::new();
    (
        LocalLimiter::with_clock(quota, Arc::new(clock.clone())),
        clock,
    )
}

fn limited(retry_after: Duration) -> Decision {
    Decision::Limited { retry_after }
}

#[test]
fn allows_exactly_the_burst_then_limits_until_one_interval() {
    let (l, clock) = limiter(Quota::per_minute(n(60)).with_burst(n(10)));
    for i in 0..10 {
        assert_eq!(
            l.check_now("alice", 1).unwrap(),
            Decision::Allowed,
            "call {i}"
        );
    }
    assert_eq!(
        l.check_now("alice", 1).unwrap(),
        limited(Duration::from_secs(1))
    );
    clock.advance(Duration::from_millis(400));
    assert_eq!(
        l.check_now("alice", 1).unwrap(),
        limited(Duration::from_millis(600))
    );
    clock.advance(Duration::from_millis(600));
    assert_eq!(l.check_now("alice", 1).unwrap(), Decision::Allowed);
    assert_eq!(
        l.check_now("alice", 1).unwrap(),
        limited(Duration::from_secs(1))
    );
    // A full period later the whole burst is back, but no more.
    clock.advance(Duration::from_secs(60));
    for _ in 0..10 {
        assert!(l.check_now("alice", 1).unwrap().is_allowed());
    }
    assert!(!l.check_now("alice", 1).unwrap().is_allowed());
}

#[test]
fn keys_are_isolated() {
    let (l, _clock) = limiter(Quota::per_hour(n(2)));
    assert!(l.check_now("alice", 1).unwrap().is_allowed());
    assert!(l.check_now("alice", 1).unwrap().is_allowed());
    assert_eq!(
        l.check_now("alice", 1).unwrap(),
        limited(Duration::from_secs(1800))
    );
    assert!(l.check_now("bob", 1).unwrap().is_allowed());
    assert!(l.check_now("bob", 1).unwrap().is_allowed());
    assert_eq!(l.len(), 2);
}

#[test]
fn costs_weigh_tokens() {
    // 1000 tokens a minute: one token replenishes every 60 ms.
    let (l, clock) = limiter(Quota::per_minute(n(1000)));
    assert!(l.check_now("gemini-key-1", 700).unwrap().is_allowed());
    // 400 more would be 100 over the burst: 100 tokens × 60 ms.
    assert_eq!(
        l.check_now("gemini-key-1", 400).unwrap(),
        limited(Duration::from_secs(6))
    );
    assert!(l.check_now("gemini-key-1", 300).unwrap().is_allowed());
    assert!(l.check_now("gemini-key-1", 0).unwrap().is_allowed());
    let e = l.check_now("gemini-key-1", 1001).unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::QuotaExceeded);
    clock.advance(Duration::from_secs(60));
    assert!(l.check_now("gemini-key-1", 1000).unwrap().is_allowed());
}

#[test]
fn replenished_keys_are_swept() {
    let (l, clock) = limiter(Quota::per_second(n(5)));
    for i in 0..100 {
        assert!(l.check_now(&format!("user-{i}"), 1).unwrap().is_allowed());
    }
    assert_eq!(l.len(), 100);
    clock.advance(Duration::from_secs(2));
    l.retain_recent();
    assert!(l.is_empty());
}

#[tokio::test]
async fn works_as_a_trait_object() {
    let clock = ManualClock::new();
    let limiters = RateLimiters::local_with_clock(Arc::new(clock.clone()));
    assert!(!limiters.is_shared());
    let quota = Quota::per_second(n(1));
    let l: Arc<dyn RateLimiter> = limiters.limiter("in-user-requests", quota);
    assert_eq!(l.quota(), quota);
    assert_eq!(l.check("u", 1).await.unwrap(), Decision::Allowed);
    assert_eq!(
        l.check("u", 1).await.unwrap(),
        limited(Duration::from_secs(1))
    );
}

#[test]
fn limited_becomes_a_rate_limited_error() {
    assert!(Decision::Allowed.into_result().is_ok());
    let e = limited(Duration::from_millis(1500))
        .into_result()
        .unwrap_err();
    assert_eq!(
        e.kind(),
        &ErrorKind::RateLimited {
            retry_after: Some(Duration::from_millis(1500))
        }
    );
    assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
    assert_eq!(
        limited(Duration::from_secs(2)).retry_after(),
        Some(Duration::from_secs(2))
    );
}

#[test]
fn quota_shapes() {
    let q = Quota::per_minute(n(60)).with_burst(n(10));
    assert_eq!(
        (q.count(), q.period(), q.burst()),
        (60, Duration::from_secs(60), 10)
    );
    assert_eq!(q.interval(), Duration::from_secs(1));
    assert_eq!(Quota::new(n(3), Duration::ZERO), None);
    let q = Quota::new(n(3), Duration::from_secs(1)).unwrap();
    assert_eq!(q.burst(), 3);
    // Faster than a nanosecond a unit is clamped, not zero.
    assert_eq!(
        Quota::new(n(u32::MAX), Duration::from_secs(1))
            .unwrap()
            .interval(),
        Duration::from_nanos(1)
    );
}

#[test]
fn config_shapes() {
    let c: RateLimitConfig =
        toml::from_str("requests_per_minute = 60\nburst = 10\ntokens_per_minute = 100000").unwrap();
    c.validate().unwrap();
    assert_eq!(
        c.requests(),
        Some(Quota::per_minute(n(60)).with_burst(n(10)))
    );
    assert_eq!(c.tokens(), Some(Quota::per_minute(n(100_000))));
    let none: RateLimitConfig = toml::from_str("").unwrap();
    assert_eq!((none.requests(), none.tokens()), (None, None));
    assert!(toml::from_str::<RateLimitConfig>("requests_per_minute = 0").is_err());
    assert!(toml::from_str::<RateLimitConfig>("rpm = 1").is_err());
    let orphan: RateLimitConfig = toml::from_str("token_burst = 5").unwrap();
    assert_eq!(orphan.validate().unwrap_err().kind(), &ErrorKind::Config);

    let local: LimiterBackend = toml::from_str("backend = \"local\"").unwrap();
    assert!(matches!(local, LimiterBackend::Local));
    let redis: LimiterBackend = toml::from_str(
        "backend = \"redis\"\nurl = \"redis://:pw@cache:6379/2\"\nprefix = \"gw-prod\"",
    )
    .unwrap();
    let LimiterBackend::Redis(redis) = redis else {
        panic!("not redis: {redis:?}");
    };
    assert_eq!(redis.url.expose(), "redis://:pw@cache:6379/2");
    assert_eq!(redis.prefix, "gw-prod");
    assert_eq!(redis.response_timeout_ms, 1000);
    assert!(!format!("{redis:?}").contains("pw@"), "{redis:?}");
    assert!(
        toml::from_str::<LimiterBackend>("backend = \"redis\"\nurl = \"redis://x\"\nurll = 1")
            .is_err()
    );
    assert!(toml::from_str::<LimiterBackend>("backend = \"memcached\"").is_err());
}

#[cfg(not(feature = "redis"))]
#[tokio::test]
async fn redis_backend_needs_the_feature() {
    let backend = LimiterBackend::Redis(RedisConfig::new("redis://127.0.0.1:6379"));
    let e = RateLimiters::from_config(&backend).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Config);
}
