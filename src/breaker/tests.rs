//! Tests of `breaker`.

use super::*;

const COOL_DOWN: Duration = Duration::from_secs(10);

fn config() -> BreakerConfig {
    BreakerConfig {
        consecutive_failures: 3,
        failure_rate_percent: 0,
        window: 10,
        min_calls: 4,
        cool_down_ms: 10_000,
        half_open_max_calls: 1,
        half_open_successes: 2,
    }
}

fn breaker(config: BreakerConfig) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    let b = CircuitBreaker::with_clock("gemini/gemini-2.5-flash", config, Arc::new(clock.clone()));
    (b, clock)
}

fn fail(b: &CircuitBreaker) {
    b.try_acquire().expect("admitted").failure();
}

fn succeed(b: &CircuitBreaker) {
    b.try_acquire().expect("admitted").success();
}

fn is_open(b: &CircuitBreaker) -> bool {
    matches!(b.state(), BreakerState::Open { .. })
}

#[test]
fn opens_after_consecutive_failures_and_a_success_resets_the_run() {
    let (b, _clock) = breaker(config());
    fail(&b);
    fail(&b);
    succeed(&b);
    fail(&b);
    fail(&b);
    assert_eq!(
        b.state(),
        BreakerState::Closed {
            consecutive_failures: 2,
            window_calls: 5,
            window_failures: 4
        }
    );
    fail(&b);
    assert!(is_open(&b));
    let open = b.try_acquire().unwrap_err();
    assert_eq!(open.retry_after, COOL_DOWN);
    assert_eq!(&*open.route, "gemini/gemini-2.5-flash");
    assert_eq!(b.snapshot().times_opened, 1);
}

#[test]
fn opens_on_failure_rate_once_the_window_holds_min_calls() {
    let (b, _clock) = breaker(BreakerConfig {
        consecutive_failures: 0,
        failure_rate_percent: 50,
        window: 6,
        min_calls: 4,
        ..config()
    });
    // fail, ok, fail: 2 of 3 failed, but fewer than min_calls calls.
    fail(&b);
    succeed(&b);
    fail(&b);
    assert!(!is_open(&b));
    succeed(&b); // 2 of 4: the rule applies now, but only a failure is checked against it.
    assert!(!is_open(&b));
    succeed(&b);
    succeed(&b); // window [f ok f ok ok ok]: 2 of 6
    fail(&b); // oldest failure slides out: [ok f ok ok ok f]: 2 of 6 = 33%
    assert!(!is_open(&b));
    fail(&b); // [f ok ok ok f f]: 3 of 6 = 50%
    assert!(is_open(&b));
}

#[test]
fn the_window_slides_out_old_failures() {
    let (b, _clock) = breaker(BreakerConfig {
        consecutive_failures: 0,
        failure_rate_percent: 60,
        window: 5,
        min_calls: 5,
        ..config()
    });
    for _ in 0..2 {
        fail(&b);
    }
    for _ in 0..20 {
        succeed(&b);
    }
    assert_eq!(
        b.state(),
        BreakerState::Closed {
            consecutive_failures: 0,
            window_calls: 5,
            window_failures: 0
        }
    );
    for _ in 0..2 {
        fail(&b);
    }
    assert!(!is_open(&b), "2 of 5 is under 60%");
    fail(&b);
    assert!(is_open(&b), "3 of 5 is 60%");
}

#[test]
fn cool_down_leads_to_half_open() {
    let (b, clock) = breaker(config());
    for _ in 0..3 {
        fail(&b);
    }
    clock.advance(COOL_DOWN - Duration::from_millis(1));
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after,
        Duration::from_millis(1)
    );
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        b.state(),
        BreakerState::HalfOpen {
            in_flight: 0,
            successes: 0
        }
    );
    let trial = b.try_acquire().expect("a trial call");
    assert!(trial.is_trial());
    // half_open_max_calls = 1: a second caller waits for the trial's outcome.
    let busy = b.try_acquire().unwrap_err();
    assert_eq!(busy.retry_after, Duration::from_secs(1));
    assert_eq!(
        b.state(),
        BreakerState::HalfOpen {
            in_flight: 1,
            successes: 0
        }
    );
    trial.success();
}

#[test]
fn half_open_successes_close_it() {
    let (b, clock) = breaker(config());
    for _ in 0..3 {
        fail(&b);
    }
    clock.advance(COOL_DOWN);
    succeed(&b);
    assert_eq!(
        b.state(),
        BreakerState::HalfOpen {
            in_flight: 0,
            successes: 1
        }
    );
    succeed(&b);
    assert_eq!(
        b.state(),
        BreakerState::Closed {
            consecutive_failures: 0,
            window_calls: 0,
            window_failures: 0
        }
    );
    // Closed afresh: it takes a full run of failures to open it again.
    fail(&b);
    fail(&b);
    assert!(!is_open(&b));
    fail(&b);
    assert!(is_open(&b));
    let snap = b.snapshot();
    assert_eq!(
        (snap.times_opened, snap.times_half_opened, snap.times_closed),
        (2, 1, 1)
    );
}

#[test]
fn half_open_failure_reopens_for_a_full_cool_down() {
    let (b, clock) = breaker(config());
    for _ in 0..3 {
        fail(&b);
    }
    clock.advance(COOL_DOWN);
    succeed(&b);
    clock.advance(Duration::from_secs(3));
    fail(&b);
    let open = b.try_acquire().unwrap_err();
    assert_eq!(open.retry_after, COOL_DOWN);
    assert_eq!(b.snapshot().times_opened, 2);
}

#[test]
fn cancelled_permits_count_as_neither() {
    let (b, clock) = breaker(config());
    for _ in 0..10 {
        drop(b.try_acquire().expect("closed"));
    }
    assert_eq!(
        b.state(),
        BreakerState::Closed {
            consecutive_failures: 0,
            window_calls: 0,
            window_failures: 0
        }
    );
    for _ in 0..3 {
        fail(&b);
    }
    clock.advance(COOL_DOWN);
    // A cancelled trial frees its slot without deciding anything.
    drop(b.try_acquire().expect("trial"));
    assert_eq!(
        b.state(),
        BreakerState::HalfOpen {
            in_flight: 0,
            successes: 0
        }
    );
    succeed(&b);
    succeed(&b);
    assert!(matches!(b.state(), BreakerState::Closed { .. }));
}

#[test]
fn record_counts_only_unhealthy_failures() {
    let (b, _clock) = breaker(config());
    let bad_request: Result<()> = Err(Error::invalid_request("bad"));
    let auth: Result<()> = Err(Error::new(ErrorKind::Auth, "key"));
    let down: Result<()> = Err(Error::new(ErrorKind::Upstream { status: 503 }, "down"));
    for _ in 0..10 {
        b.try_acquire().unwrap().record(&bad_request);
        b.try_acquire().unwrap().record(&auth);
    }
    assert!(!is_open(&b));
    for _ in 0..3 {
        b.try_acquire().unwrap().record(&down);
    }
    assert!(is_open(&b));
}

#[test]
fn results_of_calls_from_before_a_state_change_are_ignored() {
    let (b, clock) = breaker(config());
    let slow: Vec<Permit> = (0..5).map(|_| b.try_acquire().unwrap()).collect();
    for _ in 0..3 {
        fail(&b);
    }
    assert!(is_open(&b));
    // The in-flight calls fail too, later: the cool-down is not extended.
    clock.advance(Duration::from_secs(4));
    let mut slow = slow.into_iter();
    slow.next().unwrap().failure();
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after,
        Duration::from_secs(6)
    );
    clock.advance(Duration::from_secs(6));
    let trial = b.try_acquire().unwrap();
    // An old call succeeding now is not a trial success.
    slow.next().unwrap().success();
    assert_eq!(
        b.state(),
        BreakerState::HalfOpen {
            in_flight: 1,
            successes: 0
        }
    );
    trial.success();
    assert_eq!(
        b.state(),
        BreakerState::HalfOpen {
            in_flight: 0,
            successes: 1
        }
    );
}

#[test]
fn half_open_admits_up_to_max_calls_at_a_time() {
    let (b, clock) = breaker(BreakerConfig {
        half_open_max_calls: 2,
        half_open_successes: 2,
        ..config()
    });
    for _ in 0..3 {
        fail(&b);
    }
    clock.advance(COOL_DOWN);
    let t1 = b.try_acquire().unwrap();
    let t2 = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    t1.success();
    t2.success();
    assert!(matches!(b.state(), BreakerState::Closed { .. }));
}

#[test]
fn registry_creates_on_first_use_and_lists_snapshots() {
    let clock = ManualClock::new();
    let breakers = Breakers::with_clock(config(), Arc::new(clock.clone()));
    assert!(breakers.snapshots().is_empty());
    let (hf, gemini) = (RouteId::new("hf", "*"), RouteId::new("gemini", "m"));
    for _ in 0..3 {
        breakers.try_acquire(&hf).unwrap().failure();
    }
    breakers.try_acquire(&gemini).unwrap().success();
    clock.advance(Duration::from_secs(4));
    let snapshots = breakers.snapshots();
    assert_eq!(snapshots.len(), 2);
    assert_eq!(snapshots[0].route, "gemini/m");
    assert_eq!(snapshots[1].route, "hf/*");
    assert_eq!(
        serde_json::to_value(&snapshots).unwrap(),
        serde_json::json!([
            {"route": "gemini/m", "state": "closed", "consecutive_failures": 0,
             "window_calls": 1, "window_failures": 0, "times_opened": 0,
             "times_half_opened": 0, "times_closed": 0},
            {"route": "hf/*", "state": "open", "retry_after_ms": 6000, "times_opened": 1,
             "times_half_opened": 0, "times_closed": 0},
        ])
    );
    // The same breaker, not a new one.
    assert!(breakers.try_acquire(&hf).is_err());
}

#[test]
fn open_becomes_an_unavailable_error() {
    let open = BreakerOpen {
        route: "gemini".into(),
        retry_after: Duration::from_millis(2500),
    };
    let e = Error::from(open);
    assert_eq!(e.kind(), &ErrorKind::Unavailable);
    assert!(!e.is_retryable());
    assert!(e.message().contains("gemini"), "{e}");
    assert!(e.message().contains("2500 ms"), "{e}");
}

#[test]
fn config_defaults_parse_and_validate() {
    let c: BreakerConfig = toml::from_str("").unwrap();
    assert_eq!(c, BreakerConfig::default());
    c.validate().unwrap();
    let c: BreakerConfig = toml::from_str("consecutive_failures = 3\ncool_down_ms = 5000").unwrap();
    assert_eq!(c.consecutive_failures, 3);
    assert_eq!(c.cool_down(), Duration::from_secs(5));
    assert_eq!(c.window, 20);
    assert!(toml::from_str::<BreakerConfig>("cooldown_ms = 1").is_err());
    let bad = BreakerConfig {
        min_calls: 30,
        ..BreakerConfig::default()
    };
    assert_eq!(bad.validate().unwrap_err().kind(), &ErrorKind::Config);
    let bad = BreakerConfig {
        half_open_max_calls: 0,
        ..BreakerConfig::default()
    };
    assert!(bad.validate().is_err());
    // An unvalidated config still makes a working breaker.
    let (b, clock) = breaker(bad);
    for _ in 0..5 {
        fail(&b);
    }
    clock.advance(Duration::from_secs(30));
    succeed(&b);
    succeed(&b);
    assert!(matches!(b.state(), BreakerState::Closed { .. }));
}
