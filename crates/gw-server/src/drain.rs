//! Graceful shutdown: on SIGTERM (or Ctrl-C) the gateway stops accepting connections, lets the
//! requests in flight finish for `[server] drain_ms` (30 s by default), then cancels what is
//! left. A cancelled request ends as a dropped one does: its handler answers 503 (or its stream
//! ends), and its reservation is settled at once (released if no provider was called, else
//! charged at what was reserved, marked estimated); the store then writes every settlement
//! before the process exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::{Notify, watch};

use crate::app::AppState;
use crate::error::ApiError;

/// The requests in flight, and the switches that end them.
#[derive(Debug)]
pub struct Drain {
    in_flight: AtomicUsize,
    idle: Notify,
    /// Set when the shutdown begins (the listener stops accepting).
    draining: watch::Sender<bool>,
    /// Set when the drain time is over: what is still running is cancelled.
    cancelled: watch::Sender<bool>,
}

impl Default for Drain {
    fn default() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            draining: watch::channel(false).0,
            cancelled: watch::channel(false).0,
        }
    }
}

/// One request in flight; dropped when its response (its whole body) is done.
#[derive(Debug)]
pub struct InFlight(Arc<Drain>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Drain {
    /// Counts a request in until the returned guard is dropped.
    pub fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }

    /// The requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Marks the start of the shutdown.
    pub fn begin(&self) {
        self.draining.send_replace(true);
    }

    /// Waits for the start of the shutdown.
    pub async fn draining(&self) {
        let mut rx = self.draining.subscribe();
        let _ = rx.wait_for(|on| *on).await;
    }

    /// Cancels every request still in flight.
    pub fn cancel(&self) {
        self.cancelled.send_replace(true);
    }

    /// Waits until the requests in flight are cancelled.
    fn cancelled(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.cancelled.subscribe();
        async move {
            let _ = rx.wait_for(|on| *on).await;
        }
    }

    /// Waits (at most `within`) until no request is in flight; whether none is.
    pub async fn idle(&self, within: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.idle.notified();
                if self.in_flight() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(within, wait).await.is_ok()
    }
}

/// Counts every request in flight until its response is done (a stream's whole body), and ends
/// it when the drain time is over: a handler still running answers 503; a stream ends.
pub(crate) async fn track(state: &AppState, handler: impl Future<Output = Response>) -> Response {
    let drain = state.drain();
    let guard = drain.enter();
    let response = tokio::select! {
        response = handler => response,
        () = drain.cancelled() => {
            return ApiError::unavailable("the gateway is shutting down: try again").into_response();
        }
    };
    // A body of known length is sent at once; a stream (no length) stays counted, and is cut,
    // until it ends.
    if axum::body::HttpBody::size_hint(response.body())
        .exact()
        .is_some()
    {
        return response;
    }
    let cancelled = drain.cancelled();
    response.map(|body| {
        Body::from_stream(
            body.into_data_stream()
                .take_until(cancelled)
                .map(move |chunk| {
                    let _counted = &guard;
                    chunk
                }),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_waits_for_the_last_request_and_no_longer() {
        let drain = Arc::new(Drain::default());
        assert!(drain.idle(Duration::from_millis(1)).await);
        let first = drain.enter();
        let second = drain.enter();
        assert_eq!(drain.in_flight(), 2);
        assert!(!drain.idle(Duration::from_millis(20)).await);
        drop(first);
        let waiting = {
            let drain = Arc::clone(&drain);
            tokio::spawn(async move { drain.idle(Duration::from_secs(5)).await })
        };
        drop(second);
        assert!(waiting.await.unwrap());
        assert_eq!(drain.in_flight(), 0);
    }

    #[tokio::test]
    async fn cancel_reaches_whoever_waits_for_it() {
        let drain = Arc::new(Drain::default());
        let waiting = tokio::spawn(drain.cancelled());
        let draining = {
            let drain = Arc::clone(&drain);
            tokio::spawn(async move { drain.draining().await })
        };
        drain.begin();
        draining.await.unwrap();
        drain.cancel();
        waiting.await.unwrap();
        // A request that comes after the cancel is cancelled at once.
        drain.cancelled().await;
    }
}
