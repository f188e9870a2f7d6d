//! The log writer: a request appends its formatted line to one shared buffer, and a thread
//! writes what has gathered there in one write(2) per batch.
//!
//! A queue with a writer that wakes for every line (as `tracing-appender`'s does) costs a
//! futex wake-up, a context switch and a write(2) per request when requests arrive one at a
//! time per core: about a quarter of a GET's CPU on two cores (BENCHMARKS.md). Here the
//! thread is woken only by the first line after it went idle, then lets lines gather for
//! [`BatchLimits::window`] (or until [`BatchLimits::flush_bytes`] are queued) before it
//! writes them, so a busy server makes a few writes a second and no wake-up per line.
//!
//! Not lossy: while [`BatchLimits::queue_bytes`] are queued a request waits for the writer
//! instead of dropping its line. Dropping the [`BatchWriterGuard`] writes what is queued.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How much the writer gathers and how much may wait for it.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// How long lines gather after the first one before they are written.
    pub window: Duration,
    /// Queued bytes that make the writer write at once, without waiting out the window.
    pub flush_bytes: usize,
    /// Queued bytes past which a new line waits until the writer has taken the queue.
    pub queue_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> BatchLimits {
        BatchLimits {
            window: Duration::from_millis(20),
            flush_bytes: 64 * 1024,
            queue_bytes: 8 * 1024 * 1024,
        }
    }
}

/// The `MakeWriter` the subscriber writes its lines through.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Keeps the writer thread running; dropping it writes the queued lines and stops it.
#[must_use = "dropping the guard stops the log writer"]
pub struct BatchWriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: a first line after idling, a full batch, or closing.
    ready: Condvar,
    /// Wakes the requests waiting for room in the queue.
    room: Condvar,
    limits: BatchLimits,
}

#[derive(Default)]
struct State {
    lines: Vec<u8>,
    /// The writer waits for a first line (and must be woken for it).
    writer_idle: bool,
    /// Requests waiting for room.
    waiting_for_room: usize,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only bytes behind: keep logging.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn append(&self, line: &[u8]) {
        let limits = self.limits;
        let mut state = self.lock();
        // A line longer than the whole queue still goes in, once the queue is empty.
        while !state.lines.is_empty() && state.lines.len() + line.len() > limits.queue_bytes {
            state.waiting_for_room += 1;
            state = self
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.waiting_for_room -= 1;
        }
        let before = state.lines.len();
        state.lines.extend_from_slice(line);
        let filled = before < limits.flush_bytes && state.lines.len() >= limits.flush_bytes;
        if state.writer_idle || filled {
            state.writer_idle = false;
            self.ready.notify_one();
        }
    }
}

/// Starts the writer thread writing to `out`.
pub fn batch_writer<W: Write + Send + 'static>(
    out: W,
    limits: BatchLimits,
) -> std::io::Result<(BatchWriter, BatchWriterGuard)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        ready: Condvar::new(),
        room: Condvar::new(),
        limits,
    });
    let thread = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_batches(&shared, out))?
    };
    Ok((
        BatchWriter {
            shared: Arc::clone(&shared),
        },
        BatchWriterGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

/// The writer thread: waits for a first line, lets a batch gather, writes it; until closed
/// and empty.
fn write_batches(shared: &Shared, mut out: impl Write) {
    let limits = shared.limits;
    let mut batch = Vec::new();
    loop {
        let mut state = shared.lock();
        while state.lines.is_empty() && !state.closed {
            state.writer_idle = true;
            state = shared
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.writer_idle = false;
        if state.lines.is_empty() {
            return; // closed, and everything written
        }
        if !state.closed && state.lines.len() < limits.flush_bytes {
            // Woken early by a full batch or by closing.
            state = shared
                .ready
                .wait_timeout(state, limits.window)
                .map_or_else(|e| e.into_inner().0, |(state, _)| state);
        }
        std::mem::swap(&mut state.lines, &mut batch);
        let waiting = state.waiting_for_room > 0;
        drop(state);
        if waiting {
            shared.room.notify_all();
        }
        // A log that cannot be written (stderr closed) must not stop the server.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        // One burst must not keep its buffer for the life of the process.
        if batch.capacity() > 4 * limits.flush_bytes {
            batch = Vec::new();
        }
    }
}

/// One line's writer: the subscriber formats a whole line, then writes it in one call.
pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.shared.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter {
            shared: &self.shared,
        }
    }
}

impl Drop for BatchWriterGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    use super::*;

    /// A sink that keeps what it is given and counts its writes; it can be held shut.
    #[derive(Clone, Default)]
    struct Sink {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<AtomicUsize>,
        gate: Option<Arc<Mutex<mpsc::Receiver<()>>>>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Some(gate) = &self.gate {
                let _ = gate.lock().unwrap().recv();
            }
            self.writes.fetch_add(1, Ordering::SeqCst);
            self.bytes.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn line(i: usize) -> String {
        format!("{{\"line\":{i},\"padding\":\"{}\"}}\n", "x".repeat(80))
    }

    fn write_line(writer: &BatchWriter, i: usize) {
        writer.make_writer().write_all(line(i).as_bytes()).unwrap();
    }

    #[test]
    fn every_line_reaches_the_output_in_order_by_the_time_the_guard_drops() {
        let sink = Sink::default();
        let (writer, guard) = batch_writer(sink.clone(), BatchLimits::default()).unwrap();
        for i in 0..5000 {
            write_line(&writer, i);
        }
        drop(guard);
        let want: String = (0..5000).map(line).collect();
        assert_eq!(
            String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap(),
            want
        );
    }

    #[test]
    fn a_burst_of_lines_is_written_in_a_few_writes_not_one_per_line() {
        let sink = Sink::default();
        let limits = BatchLimits {
            window: Duration::from_secs(5),
            ..BatchLimits::default()
        };
        let (writer, guard) = batch_writer(sink.clone(), limits).unwrap();
        for i in 0..1000 {
            write_line(&writer, i);
        }
        drop(guard);
        // About 100 KB: one write when 64 KiB were queued, one for the rest at closing.
        assert!(sink.writes.load(Ordering::SeqCst) <= 3, "{:?}", sink.writes);
        let want: String = (0..1000).map(line).collect();
        assert_eq!(
            String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap(),
            want
        );
    }

    #[test]
    fn a_line_waits_for_room_rather_than_being_dropped_when_the_queue_is_full() {
        let (open, gate) = mpsc::channel();
        let sink = Sink {
            gate: Some(Arc::new(Mutex::new(gate))),
            ..Sink::default()
        };
        let limits = BatchLimits {
            window: Duration::from_millis(1),
            flush_bytes: 100,
            queue_bytes: 1000,
        };
        let (writer, guard) = batch_writer(sink.clone(), limits).unwrap();
        // The writer takes the first batch and is held in its write; ten more lines fill
        // the queue, and the next one has to wait.
        let producer = std::thread::spawn(move || {
            for i in 0..30 {
                write_line(&writer, i);
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(!producer.is_finished(), "30 lines fit in a 1000-byte queue");
        for _ in 0..30 {
            let _ = open.send(());
        }
        producer.join().unwrap();
        drop(open); // closing writes can no longer be held
        drop(guard);
        let want: String = (0..30).map(line).collect();
        assert_eq!(
            String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap(),
            want
        );
    }
}
