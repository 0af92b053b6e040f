//! The log's writer: request threads hand each formatted line to a buffer, and one thread of its
//! own writes the buffer out, so no request waits on a `write` to stderr (a terminal, a pipe
//! that a log shipper drains slowly, a full disk).
//!
//! Lines written while the writer thread is busy go out together in its next write. The buffer
//! is bounded ([`LogWriter::MAX_BUFFERED`]): when the output cannot keep up, further lines are
//! dropped and counted, and a line saying how many is written once the output catches up; a
//! request is never slowed down by its log. Lines still buffered when the process is killed
//! (`kill -9`, a crash) are lost; [`LogWriter::finish`] writes them on a normal exit.
//!
//! The line each request leaves is not formatted by the request: it is handed over as data
//! ([`RequestLine`]) and the writer thread formats it, in its place among the other lines.

use std::borrow::Cow;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use axum::http::{Method, Uri};
use tracing_subscriber::fmt::MakeWriter;

/// A [`MakeWriter`] for `tracing_subscriber::fmt` whose lines a thread of its own writes out.
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Ends the writer thread, once everything buffered is written: [`LogWriter::finish`].
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
    /// Whether request lines are written with ANSI colours, as the other lines are.
    ansi: AtomicBool,
}

#[derive(Default)]
struct State {
    lines: Vec<u8>,
    /// Request lines, each with the length `lines` had when it came: its place among them.
    requests: Vec<(usize, RequestLine)>,
    dropped: u64,
    closed: bool,
}

impl State {
    fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.requests.is_empty()
    }

    /// What is buffered, counting a request line at about the size it will have.
    fn buffered(&self) -> usize {
        self.lines.len() + self.requests.len() * REQUEST_LINE_BYTES
    }
}

/// The target request lines are logged under, and filtered by (`RUST_LOG`), whether the
/// writer thread formats them or they are `tracing` events.
pub const REQUEST_TARGET: &str = "gw_server::app";

/// About the length of a formatted request line, for the buffer's bound.
const REQUEST_LINE_BYTES: usize = 160;

/// The line one request leaves in the log, as data: the writer thread formats it.
pub struct RequestLine {
    /// When the request came; the line is stamped `at + elapsed`, when its answer began.
    pub at: SystemTime,
    /// The request id, as in the `x-gateway-request-id` answer header.
    pub id: String,
    /// The request's method.
    pub method: Method,
    /// The request's path, without its query (a query may carry secrets): see
    /// [`RequestLine::path_of`].
    pub path: Cow<'static, str>,
    /// The caller's name, or `admin`; none when the request was refused before it was known.
    pub caller: Option<Arc<str>>,
    /// The answer's status.
    pub status: u16,
    /// From the request's arrival to its answer's headers (a stream's body goes on after).
    pub elapsed: Duration,
    /// A failed request's error type and message: the line is then a warning.
    pub error: Option<(&'static str, String)>,
}

/// The writer request lines go to: see [`LogWriter::take_request_lines`].
static REQUEST_LINES: OnceLock<LogWriter> = OnceLock::new();

/// The writer that formats request lines, when the process's log has one; without one, the
/// request's line is a `tracing` event like any other.
pub fn request_lines() -> Option<&'static LogWriter> {
    REQUEST_LINES.get()
}

impl LogWriter {
    /// The most bytes of lines waiting to be written; lines past it are dropped (and counted).
    pub const MAX_BUFFERED: usize = 8 << 20;

    /// Starts the thread that writes the lines to `out`.
    pub fn start(out: impl Write + Send + 'static) -> std::io::Result<(LogWriter, Flusher)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            ansi: AtomicBool::new(false),
        });
        let thread = std::thread::Builder::new()
            .name("gateway-log".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || write_out(&shared, out)
            })?;
        Ok((
            LogWriter {
                shared: Arc::clone(&shared),
            },
            Flusher {
                shared,
                thread: Some(thread),
            },
        ))
    }

    /// Makes this writer the process's writer of request lines ([`request_lines`]), with ANSI
    /// colours or not, like the rest of the log. The first call wins.
    pub fn take_request_lines(&self, ansi: bool) {
        self.shared.ansi.store(ansi, Ordering::Relaxed);
        let _ = REQUEST_LINES.set(self.clone());
    }

    /// Buffers a request's line, to be formatted and written by the writer thread.
    pub fn push_request(&self, line: RequestLine) {
        let mut state = self.shared.lock();
        let before = state.buffered();
        if before + REQUEST_LINE_BYTES > LogWriter::MAX_BUFFERED {
            state.dropped += 1;
            return;
        }
        let at = state.lines.len();
        state.requests.push((at, line));
        drop(state);
        self.shared.woken(before, REQUEST_LINE_BYTES);
    }
}

impl Flusher {
    /// Writes what is still buffered, then ends the writer thread.
    pub fn finish(mut self) {
        self.close();
    }

    fn close(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves a buffer of whole lines: still good to write.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the writer thread if `added` bytes onto `before` need it: it sleeps only on an
    /// empty buffer, or for its linger. So the first line wakes it, and so does a buffer that
    /// fills up; the lines between wait for its round.
    fn woken(&self, before: usize, added: usize) {
        let crossed = before < LINGER_MARK && before + added >= LINGER_MARK;
        if before == 0 || crossed {
            self.ready.notify_one();
        }
    }
}

/// How long the writer thread lets lines gather after the first one wakes it: one wake-up and
/// one write for all the lines of that time, instead of one each under load.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// Buffered bytes past which the writer thread writes at once instead of lingering.
const LINGER_MARK: usize = LogWriter::MAX_BUFFERED / 4;

/// The writer thread: sleeps until a line comes, lets more gather for [`LINGER`] (less when the
/// buffer fills up or the writer is closing), writes them all in one go; until closed with
/// nothing left.
fn write_out(shared: &Shared, mut out: impl Write) {
    let (mut batch, mut requests, mut formatted) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let (dropped, closed) = {
            let mut state = shared.lock();
            while state.is_empty() && state.dropped == 0 && !state.closed {
                state = shared
                    .ready
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if !state.closed && state.buffered() < LINGER_MARK {
                // Lines written meanwhile find the buffer not empty and wake no one.
                state = shared
                    .ready
                    .wait_timeout(state, LINGER)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            std::mem::swap(&mut batch, &mut state.lines);
            std::mem::swap(&mut requests, &mut state.requests);
            (std::mem::take(&mut state.dropped), state.closed)
        };
        let lines = if requests.is_empty() {
            &batch
        } else {
            // The request lines formatted in their places among the others.
            let ansi = shared.ansi.load(Ordering::Relaxed);
            let mut from = 0;
            for (at, line) in requests.drain(..) {
                formatted.extend_from_slice(&batch[from..at]);
                from = at;
                line.write(&mut formatted, ansi);
            }
            formatted.extend_from_slice(&batch[from..]);
            &formatted
        };
        // Nowhere to report a failing log output: the lines are dropped.
        let _ = out.write_all(lines);
        if dropped > 0 {
            let _ = writeln!(
                out,
                "gateway: {dropped} log lines dropped: the log output could not keep up"
            );
        }
        let _ = out.flush();
        batch.clear();
        formatted.clear();
        if closed && shared.lock().is_empty() {
            return;
        }
    }
}

impl RequestLine {
    /// The path a request line keeps: a constant for the paths of the OpenAI-compatible
    /// routes without parameters (the ones served most), a copy of any other.
    ///
    /// Not the request's `Uri`, which the line kept until its thread had written it: a
    /// request's URI shares the buffer hyper read the request into, so that buffer lived until
    /// then, and was freed on the log's thread (about 900 instructions a request there, and a
    /// free across threads).
    pub fn path_of(uri: &Uri) -> Cow<'static, str> {
        const ROUTES: [&str; 9] = [
            "/v1/chat/completions",
            "/v1/embeddings",
            "/v1/images/generations",
            "/v1/images/edits",
            "/v1/audio/speech",
            "/v1/audio/transcriptions",
            "/v1/search",
            "/v1/models",
            "/v1/videos",
        ];
        let path = uri.path();
        match ROUTES.iter().find(|route| **route == path) {
            Some(route) => Cow::Borrowed(route),
            None => Cow::Owned(path.to_owned()),
        }
    }

    /// The line as `tracing_subscriber`'s default format writes an event under
    /// [`REQUEST_TARGET`], as it is logged without a writer of request lines: `<time> <level>
    /// gw_server::app: request done id=.. method=.. path=.. caller=".." status=.. elapsed_ms=..`.
    ///
    /// Written byte by byte rather than through `write!`: the formatting machinery (an
    /// adapter per call, padding, a float printed to three places) cost about 10,000
    /// instructions a line, as much as a tenth of a proxied request's.
    fn write(&self, out: &mut Vec<u8>, ansi: bool) {
        let (dim, italic, reset): (&[u8], &[u8], &[u8]) = if ansi {
            (b"\x1b[2m", b"\x1b[3m", b"\x1b[0m")
        } else {
            (b"", b"", b"")
        };
        let (level, message): (&[u8], &[u8]) = match self.error {
            None if ansi => (b"\x1b[32m INFO\x1b[0m", b"request done"),
            None => (b" INFO", b"request done"),
            Some(_) if ansi => (b"\x1b[33m WARN\x1b[0m", b"request failed"),
            Some(_) => (b" WARN", b"request failed"),
        };
        // Stamped when the request's answer began, as the event it stands for would be.
        out.extend_from_slice(dim);
        gw_store::UtcMicros(self.at + self.elapsed).push_to(out);
        for part in [
            reset,
            b" ",
            level,
            b" ",
            dim,
            REQUEST_TARGET.as_bytes(),
            reset,
        ] {
            out.extend_from_slice(part);
        }
        for part in [dim, b":", reset, b" ", message, b" "] {
            out.extend_from_slice(part);
        }
        let field = |out: &mut Vec<u8>, name: &str| {
            for part in [italic, name.as_bytes(), reset, dim, b"=", reset] {
                out.extend_from_slice(part);
            }
        };
        field(out, "id");
        out.extend_from_slice(self.id.as_bytes());
        out.push(b' ');
        field(out, "method");
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        field(out, "path");
        out.extend_from_slice(self.path.as_bytes());
        out.push(b' ');
        if let Some(caller) = &self.caller {
            field(out, "caller");
            push_quoted(out, caller);
            out.push(b' ');
        }
        field(out, "status");
        push_decimal(out, u64::from(self.status), 1);
        out.push(b' ');
        field(out, "elapsed_ms");
        // Milliseconds to three places: whole microseconds, rounded.
        let micros = (self.elapsed.as_nanos() + 500) / 1_000;
        let micros = u64::try_from(micros).unwrap_or(u64::MAX);
        push_decimal(out, micros / 1_000, 1);
        out.push(b'.');
        push_decimal(out, micros % 1_000, 3);
        if let Some((kind, message)) = &self.error {
            out.push(b' ');
            field(out, "error_type");
            out.extend_from_slice(kind.as_bytes());
            out.push(b' ');
            field(out, "error");
            push_quoted(out, message);
        }
        out.push(b'\n');
    }
}

/// `n` in decimal, zero-padded to at least `width` digits.
fn push_decimal(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    while n > 0 || digits.len() - at < width.max(1) {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits[at..]);
}

/// `text` quoted as `{:?}` quotes it: as it is when it holds nothing to escape (printable
/// ASCII other than `"` and `\`), else by `Debug` itself.
fn push_quoted(out: &mut Vec<u8>, text: &str) {
    let plain = text
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
    if plain {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        let _ = write!(out, "{text:?}");
    }
}

/// One event's writer: its bytes go to the buffer.
pub struct Line<'a> {
    shared: &'a Shared,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut state = self.shared.lock();
        let before = state.buffered();
        if before + bytes.len() > LogWriter::MAX_BUFFERED {
            state.dropped += 1;
            return Ok(bytes.len());
        }
        state.lines.extend_from_slice(bytes);
        drop(state);
        self.shared.woken(before, bytes.len());
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            shared: &self.shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` into a shared vector, to read what the writer thread wrote.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_it_finishes() {
        let sink = Sink::default();
        let (writer, flusher) = LogWriter::start(sink.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        writer
                            .make_writer()
                            .write_all(format!("t{t} line {i}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        flusher.finish();
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 4000);
        for t in 0..4 {
            let mine: Vec<&str> = out
                .lines()
                .filter(|l| l.starts_with(&format!("t{t} ")))
                .collect();
            let expected: Vec<String> = (0..1000).map(|i| format!("t{t} line {i}")).collect();
            assert_eq!(mine, expected, "thread {t}'s lines, in its order");
        }
    }

    fn request_line(id: &str, error: Option<(&'static str, String)>) -> RequestLine {
        RequestLine {
            at: std::time::UNIX_EPOCH + Duration::from_micros(1_795_680_142_123_456),
            id: id.into(),
            method: Method::POST,
            path: RequestLine::path_of(&"/v1/chat/completions?key=secret".parse().unwrap()),
            caller: Some("team \"a\"\nnext".into()),
            status: if error.is_some() { 429 } else { 200 },
            elapsed: Duration::from_micros(1_234_567),
            error,
        }
    }

    #[test]
    fn a_request_line_keeps_the_path_without_its_query() {
        let path = |uri: &str| RequestLine::path_of(&uri.parse().unwrap());
        assert!(matches!(
            path("/v1/chat/completions?key=secret"),
            Cow::Borrowed("/v1/chat/completions")
        ));
        let other = path("/v1/files/file-1/content?token=secret");
        assert!(matches!(&other, Cow::Owned(p) if p == "/v1/files/file-1/content"));
    }

    #[test]
    fn request_lines_are_formatted_in_their_place_among_the_others() {
        let sink = Sink::default();
        let (writer, flusher) = LogWriter::start(sink.clone()).unwrap();
        writer.make_writer().write_all(b"before\n").unwrap();
        writer.push_request(request_line("gw-1", None));
        writer.make_writer().write_all(b"between\n").unwrap();
        writer.push_request(request_line(
            "gw-2",
            Some(("rate_limit_exceeded", "over the plan".into())),
        ));
        writer.make_writer().write_all(b"after\n").unwrap();
        flusher.finish();
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            [
                "before",
                "2026-11-26T08:02:23.358023Z  INFO gw_server::app: request done id=gw-1 \
                 method=POST path=/v1/chat/completions caller=\"team \\\"a\\\"\\nnext\" \
                 status=200 elapsed_ms=1234.567",
                "between",
                "2026-11-26T08:02:23.358023Z  WARN gw_server::app: request failed id=gw-2 \
                 method=POST path=/v1/chat/completions caller=\"team \\\"a\\\"\\nnext\" \
                 status=429 elapsed_ms=1234.567 error_type=rate_limit_exceeded \
                 error=\"over the plan\"",
                "after",
            ],
            "the query is left out, names are quoted and escaped: one line per request"
        );
    }

    #[test]
    fn a_request_line_prints_its_numbers_and_names_as_formatting_would() {
        let cases = [
            (
                Duration::ZERO,
                "bench",
                200,
                "elapsed_ms=0.000",
                r#""bench""#,
            ),
            (
                Duration::from_nanos(1_000_499),
                "it's",
                404,
                "elapsed_ms=1.000",
                r#""it's""#,
            ),
            (
                Duration::from_nanos(1_000_500),
                "é",
                500,
                "elapsed_ms=1.001",
                r#""é""#,
            ),
            (
                Duration::from_secs(90),
                "a\\b",
                503,
                "elapsed_ms=90000.000",
                r#""a\\b""#,
            ),
        ];
        for (elapsed, caller, status, shown, quoted) in cases {
            let line = RequestLine {
                elapsed,
                caller: Some(caller.into()),
                status,
                ..request_line("gw-1", None)
            };
            let mut out = Vec::new();
            line.write(&mut out, false);
            let out = String::from_utf8(out).unwrap();
            let tail = format!(" caller={quoted} status={status} {shown}\n");
            assert!(out.ends_with(&tail), "{out}");
            assert_eq!(format!("{caller:?}"), quoted);
        }
        let mut coloured = Vec::new();
        request_line("gw-1", None).write(&mut coloured, true);
        assert!(
            String::from_utf8(coloured)
                .unwrap()
                .contains("\x1b[3mstatus\x1b[0m\x1b[2m=\x1b[0m200 "),
        );
    }

    /// An output that blocks until told to go on: lines past the bound are dropped and counted,
    /// never waited for.
    #[test]
    fn a_stuck_output_drops_lines_past_the_bound_and_says_how_many() {
        struct Gate {
            open: Arc<(Mutex<bool>, Condvar)>,
            sink: Sink,
        }
        impl Write for Gate {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                let (open, cv) = &*self.open;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = cv.wait(open).unwrap();
                }
                self.sink.write(bytes)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let open = Arc::new((Mutex::new(false), Condvar::new()));
        let sink = Sink::default();
        let (writer, flusher) = LogWriter::start(Gate {
            open: Arc::clone(&open),
            sink: sink.clone(),
        })
        .unwrap();
        // The first line: the writer thread takes it and blocks writing it.
        writer.make_writer().write_all(b"first\n").unwrap();
        while !writer.shared.lock().lines.is_empty() {
            std::thread::yield_now();
        }
        let mut line = vec![b'x'; 1023];
        line.push(b'\n');
        let fits = LogWriter::MAX_BUFFERED / line.len();
        for _ in 0..fits + 10 {
            writer.make_writer().write_all(&line).unwrap();
        }
        *open.0.lock().unwrap() = true;
        open.1.notify_all();
        flusher.finish();
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "first");
        assert_eq!(
            lines.len(),
            1 + fits + 1,
            "the lines that fit, and the report"
        );
        assert!(
            lines.last().unwrap().contains("log lines dropped"),
            "{}",
            lines.last().unwrap()
        );
    }
}
