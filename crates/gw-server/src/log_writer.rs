//! The log's writer: request threads hand each formatted line to a buffer, and one thread of its
//! own writes the buffer out, so no request waits on a `write` to stderr (a terminal, a pipe
//! that a log shipper drains slowly, a full disk).
//!
//! Lines written while the writer thread is busy go out together in its next write. The buffer
//! is bounded ([`LogWriter::MAX_BUFFERED`]): when the output cannot keep up, further lines are
//! dropped and counted, and a line saying how many is written once the output catches up; a
//! request is never slowed down by its log. Lines still buffered when the process is killed
//! (`kill -9`, a crash) are lost; [`LogWriter::finish`] writes them on a normal exit.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

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
}

#[derive(Default)]
struct State {
    lines: Vec<u8>,
    dropped: u64,
    closed: bool,
}

impl LogWriter {
    /// The most bytes of lines waiting to be written; lines past it are dropped (and counted).
    pub const MAX_BUFFERED: usize = 8 << 20;

    /// Starts the thread that writes the lines to `out`.
    pub fn start(out: impl Write + Send + 'static) -> std::io::Result<(LogWriter, Flusher)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
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
    let mut batch = Vec::new();
    loop {
        let (dropped, closed) = {
            let mut state = shared.lock();
            while state.lines.is_empty() && state.dropped == 0 && !state.closed {
                state = shared
                    .ready
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if !state.closed && state.lines.len() < LINGER_MARK {
                // Lines written meanwhile find the buffer not empty and wake no one.
                state = shared
                    .ready
                    .wait_timeout(state, LINGER)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            std::mem::swap(&mut batch, &mut state.lines);
            (std::mem::take(&mut state.dropped), state.closed)
        };
        // Nowhere to report a failing log output: the lines are dropped.
        let _ = out.write_all(&batch);
        if dropped > 0 {
            let _ = writeln!(
                out,
                "gateway: {dropped} log lines dropped: the log output could not keep up"
            );
        }
        let _ = out.flush();
        batch.clear();
        if closed && shared.lock().lines.is_empty() {
            return;
        }
    }
}

/// One event's writer: its bytes go to the buffer.
pub struct Line<'a> {
    shared: &'a Shared,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut state = self.shared.lock();
        if state.lines.len() + bytes.len() > LogWriter::MAX_BUFFERED {
            state.dropped += 1;
            return Ok(bytes.len());
        }
        let before = state.lines.len();
        state.lines.extend_from_slice(bytes);
        drop(state);
        // The writer thread sleeps only on an empty buffer, or for its linger: wake it for the
        // first line, or to write a buffer that fills up; the lines between wait for its round.
        let crossed = before < LINGER_MARK && before + bytes.len() >= LINGER_MARK;
        if before == 0 || crossed {
            self.shared.ready.notify_one();
        }
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
