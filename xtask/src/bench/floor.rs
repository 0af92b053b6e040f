//! `cargo xtask bench floor`: the least a Rust reverse proxy on the gateway's own stack does,
//! as a reference for what the gateway's logic costs.
//!
//! The gateway serves a request with hyper's server and calls the provider on hyper's client
//! connections, on one current-thread tokio runtime per core. This proxy does the same (its
//! connections pooled by hyper-util's client, a little dearer a call than the gateway's own
//! pool) and nothing else: it reads the request body whole (the gateway must, to parse it), sends it to
//! one upstream on a kept-alive connection of its thread's pool, and hands the upstream's
//! answer back as it comes, headers and body untouched. No routing, no JSON, no logging, no
//! accounting. What the gateway costs beyond it is the gateway's own work; what it costs beyond
//! nginx is the price of the stack (two HTTP/1 implementations and the async runtime).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpSocket;

type Upstream = Client<HttpConnector, Full<Bytes>>;

/// Serves the floor proxy on `listen` with `threads` runtimes, forwarding to `upstream`.
pub(crate) fn serve(
    listen: SocketAddr,
    upstream: SocketAddr,
    threads: usize,
) -> Result<(), String> {
    // Every thread listens on the same port (`SO_REUSEPORT`), so the kernel spreads
    // connections over them and no acceptor hands them across threads.
    let threads = threads.max(1);
    let (ready, listening) = std::sync::mpsc::channel();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let ready = ready.clone();
            std::thread::Builder::new()
                .name("floor-worker".into())
                .spawn(move || worker(listen, upstream, ready))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    // Announced once every thread listens, so that a client started on this line connects.
    for _ in 0..threads {
        listening
            .recv()
            .map_err(|_| "a floor worker ended before listening".to_owned())??;
    }
    println!("listening on http://{listen}, forwarding to http://{upstream}");
    for handle in handles {
        handle
            .join()
            .map_err(|_| "a floor worker panicked".to_owned())??;
    }
    Ok(())
}

fn worker(
    listen: SocketAddr,
    upstream: SocketAddr,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let bind = || {
            let socket = TcpSocket::new_v4()?;
            socket.set_reuseport(true)?;
            socket.set_reuseaddr(true)?;
            socket.bind(listen)?;
            socket.listen(1024)
        };
        let listener = match bind() {
            Ok(listener) => listener,
            Err(e) => {
                let e = format!("{listen}: {e}");
                let _ = ready.send(Err(e.clone()));
                return Err(e);
            }
        };
        let _ = ready.send(Ok(()));
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Upstream = Client::builder(TokioExecutor::new()).build(connector);
        let authority = upstream.to_string();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors, say: wait instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (client, authority) = (client.clone(), authority.clone());
            tokio::task::spawn(async move {
                let service =
                    service_fn(move |request| forward(client.clone(), authority.clone(), request));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn forward(
    client: Upstream,
    authority: String,
    request: Request<Incoming>,
) -> Result<Response<Either<Incoming, Full<Bytes>>>, Infallible> {
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let answer = async {
        let body = body.collect().await?.to_bytes();
        parts.uri = Uri::builder()
            .scheme("http")
            .authority(authority)
            .path_and_query(path)
            .build()?;
        parts.headers.remove(hyper::header::HOST);
        let answer = client
            .request(Request::from_parts(parts, Full::new(body)))
            .await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(answer)
    };
    Ok(match answer.await {
        Ok(answer) => answer.map(Either::Left),
        Err(e) => {
            let mut answer = Response::new(Either::Right(Full::new(Bytes::from(e.to_string()))));
            *answer.status_mut() = StatusCode::BAD_GATEWAY;
            answer
        }
    })
}
