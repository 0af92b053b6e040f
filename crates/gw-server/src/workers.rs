//! One single-threaded runtime per core, each serving the connections it is handed.
//!
//! The runtime that `main` builds keeps the background work (the store's writers, job pollers,
//! the listener); each worker is a thread running a current-thread tokio runtime that serves
//! whole connections: the request, the provider call on the worker's own upstream connections
//! ([`llm_gateway::http::use_thread_clients`]) and the answer all run on one thread, without
//! the wake-ups and cache traffic of tasks moving between cores. One acceptor hands accepted
//! connections out in turn; a connection then stays on its worker for its whole life. The
//! listening socket stays one ordinary socket: no `SO_REUSEPORT`, so a second process can never
//! join the port and split its traffic, and a port in use still fails at start.
//!
//! The trade: a request that computes for long on a worker delays the other connections of
//! that worker (a work-stealing runtime would move them to the other core). The gateway's
//! handlers compute for microseconds; the heavy parts (SQLite, files) run on blocking threads.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use axum::extract::Request;
use axum::response::Response;
use axum::serve::IncomingStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

/// What the workers are told to do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serve,
    /// Take no new connection; finish the requests of the open ones.
    Stop,
    /// Everything is settled: drop the runtime (and whatever still runs on it).
    Exit,
}

/// The running workers. Dropping it without [`Workers::exit`] leaves the threads running.
pub struct Workers {
    stopper: Stopper,
    served: Vec<oneshot::Receiver<io::Result<()>>>,
    threads: Vec<JoinHandle<()>>,
}

/// Tells the workers to stop accepting: [`Workers::stopper`].
#[derive(Clone)]
pub struct Stopper {
    phase: Arc<watch::Sender<Phase>>,
    acceptor: tokio::task::AbortHandle,
}

impl Stopper {
    /// Stops accepting connections; the workers finish the requests of those open, then close
    /// them.
    pub fn stop(&self) {
        self.acceptor.abort();
        self.phase.send_if_modified(|p| {
            let was = *p;
            *p = was.max(Phase::Stop);
            *p != was
        });
    }
}

/// How many workers `[server] workers = configured` means: `0` is one per CPU.
pub fn count(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

impl Workers {
    /// Starts `count` workers serving `service` (at least one; a [`Router`](axum::Router) or the
    /// gateway's [`App`](crate::app::App)), and an acceptor, on the current runtime, that hands
    /// each connection `listener` accepts to the next worker in turn, with `TCP_NODELAY` set.
    pub fn start<M, S>(listener: TcpListener, count: usize, service: M) -> io::Result<Workers>
    where
        M: for<'a> tower::Service<IncomingStream<'a, Incoming>, Error = Infallible, Response = S>
            + Clone
            + Send
            + 'static,
        for<'a> <M as tower::Service<IncomingStream<'a, Incoming>>>::Future: Send,
        S: tower::Service<Request, Response = Response, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send,
    {
        let count = count.max(1);
        let (phase, _) = watch::channel(Phase::Serve);
        let mut inboxes = Vec::with_capacity(count);
        let mut served = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        let local_addr = listener.local_addr()?;
        for i in 0..count {
            let (inbox, connections) = mpsc::unbounded_channel();
            let (done, finished) = oneshot::channel();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let service = service.clone();
            let mut phase = phase.subscribe();
            let thread = std::thread::Builder::new()
                .name(format!("gateway-worker-{i}"))
                .spawn(move || {
                    llm_gateway::http::use_thread_clients();
                    runtime.block_on(async move {
                        let incoming = Incoming {
                            connections,
                            local_addr,
                        };
                        let mut stop = phase.clone();
                        let result = axum::serve(incoming, service)
                            .with_graceful_shutdown(async move {
                                let _ = stop.wait_for(|p| *p >= Phase::Stop).await;
                            })
                            .await;
                        let _ = done.send(result);
                        // The runtime lives on until the process has settled what its tasks
                        // (a cancelled request's settlement, a stream's usage) still do.
                        let _ = phase.wait_for(|p| *p >= Phase::Exit).await;
                    });
                })?;
            inboxes.push(inbox);
            served.push(finished);
            threads.push(thread);
        }
        let acceptor = tokio::spawn(accept(listener, inboxes, phase.subscribe()));
        Ok(Workers {
            stopper: Stopper {
                phase: Arc::new(phase),
                acceptor: acceptor.abort_handle(),
            },
            served,
            threads,
        })
    }

    /// What stops the workers from accepting (to hand to a signal handler).
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Resolves when every worker's server has returned (after [`Workers::stop`], once its
    /// connections are closed), with the first error one of them met.
    pub async fn served(&mut self) -> io::Result<()> {
        let mut first = Ok(());
        for done in &mut self.served {
            let result = done.await.unwrap_or(Ok(()));
            if first.is_ok() {
                first = result;
            }
        }
        first
    }

    /// Ends the workers: their runtimes are dropped (cancelling whatever still runs there) and
    /// their threads joined.
    pub fn exit(self) {
        self.stopper.acceptor.abort();
        self.stopper.phase.send_replace(Phase::Exit);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Accepts connections and hands them to the workers in turn, until told to stop.
async fn accept(
    listener: TcpListener,
    inboxes: Vec<mpsc::UnboundedSender<std::net::TcpStream>>,
    mut phase: watch::Receiver<Phase>,
) {
    let next = AtomicUsize::new(0);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = phase.wait_for(|p| *p >= Phase::Stop) => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: axum's own loop waits a second too.
                if !is_connection_error(&e) {
                    tracing::error!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                continue;
            }
        };
        // Each SSE event is its own small write: without TCP_NODELAY the kernel holds the
        // second until the client's delayed ACK (about 40 ms), stalling every stream.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {e}");
        }
        // Handed over as a std socket: a tokio socket belongs to the runtime that registered
        // it, and the worker registers it with its own.
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        let i = next.fetch_add(1, Ordering::Relaxed) % inboxes.len();
        let _ = inboxes[i].send(stream);
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A worker's side of the acceptor: the connections handed to it, as an axum listener.
pub struct Incoming {
    connections: mpsc::UnboundedReceiver<std::net::TcpStream>,
    local_addr: SocketAddr,
}

impl axum::serve::Listener for Incoming {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Some(stream) = self.connections.recv().await else {
                // The acceptor is gone: the server is stopping, and the graceful shutdown
                // ends this loop's caller.
                return std::future::pending().await;
            };
            let peer = stream.peer_addr();
            match (TcpStream::from_std(stream), peer) {
                (Ok(stream), Ok(peer)) => return (stream, peer),
                // The peer left before the worker took the connection over.
                _ => continue,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use axum::Router;

    /// One request on a new connection; the whole answer as text.
    async fn get_once(addr: SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn connections_go_to_every_worker_and_a_stop_lets_requests_in_flight_finish() {
        let router = Router::new()
            .route(
                "/thread",
                get(|| async { std::thread::current().name().unwrap_or("?").to_owned() }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "slow done"
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut workers = Workers::start(listener, 2, router).unwrap();

        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..4 {
            let answer = get_once(addr, "/thread").await;
            let name = answer.lines().last().unwrap().to_owned();
            assert!(name.starts_with("gateway-worker-"), "{answer}");
            seen.insert(name);
        }
        assert_eq!(
            seen.len(),
            2,
            "connections are handed out in turn: {seen:?}"
        );

        let slow = tokio::spawn(get_once(addr, "/slow"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        workers.stopper().stop();
        let answer = slow.await.unwrap();
        assert!(answer.ends_with("slow done"), "{answer}");
        tokio::time::timeout(Duration::from_secs(5), workers.served())
            .await
            .expect("the workers stop once their connections are done")
            .unwrap();
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "no connection is accepted after the stop"
        );
        workers.exit();
    }
}
