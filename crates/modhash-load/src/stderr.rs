//! Forwarding an isolated worker's stderr to the host's, bounded and
//! escaped.
//!
//! Everything on that pipe after lockdown may come from the module, so it
//! is treated like any other hostile input: read in fixed-size chunks (no
//! line is ever held whole), cut into lines of at most
//! [`StderrLimits::max_line`] bytes, rate limited, and escaped so that each
//! forwarded line is one line of printable text behind its
//! `modhash-worker[PID]:` prefix — no carriage return, ANSI sequence or
//! bidirectional override can erase the prefix or forge a host log line.
//! A worker that writes more than [`StderrLimits::flood_per_second`] in one
//! second is killed: the host's call then fails with
//! [`Limit::Output`](crate::Limit::Output).

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::escape::escape;

/// How many bytes of a worker's last (escaped) stderr output a crash report
/// keeps.
const TAIL: usize = 2048;

/// Size of the buffer the pipe is read into.
const CHUNK: usize = 8 * 1024;

/// The window the rates are counted over.
const WINDOW: Duration = Duration::from_secs(1);

/// How much of an isolated worker's stderr reaches the host's stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StderrLimits {
    /// Longest line forwarded, in bytes before escaping; longer lines are
    /// split, each part forwarded with a `modhash-worker[PID]+` prefix.
    pub max_line: usize,
    /// Bytes forwarded per second; the rest of that second's output is
    /// dropped, and the host's stderr says how much.
    pub per_second: u64,
    /// Bytes per second that count as a flood: the worker is killed and
    /// the call fails with [`Limit::Output`](crate::Limit::Output).
    pub flood_per_second: u64,
}

impl Default for StderrLimits {
    fn default() -> Self {
        Self {
            max_line: 4096,
            per_second: 64 * 1024,
            flood_per_second: 1024 * 1024,
        }
    }
}

/// What the forwarder learned, shared with the host side of the worker.
#[derive(Debug, Default)]
struct Shared {
    /// The last forwarded lines, escaped.
    tail: Vec<u8>,
    /// Whether the worker flooded its stderr (and was killed for it).
    flooded: bool,
}

/// A thread forwarding one worker's stderr.
#[derive(Debug)]
pub(crate) struct Forwarder {
    thread: Option<JoinHandle<()>>,
    shared: Arc<Mutex<Shared>>,
}

impl Forwarder {
    /// Forward `pipe` to this process's stderr until its end-of-file.
    /// `worker` is a pidfd of the writing process, to kill it on a flood.
    pub(crate) fn start(pipe: OwnedFd, pid: Pid, worker: OwnedFd, limits: StderrLimits) -> Self {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!(
                "modhash-worker[{pid}] stderr",
                pid = pid.as_raw_nonzero()
            ))
            .spawn(move || forward(&pipe, pid, &worker, limits, &state));
        Self {
            // Without a thread nobody reads the pipe: the worker blocks on a
            // full pipe, the call times out and the host sees that.
            thread: thread.ok(),
            shared,
        }
    }

    /// Wait until the pipe is at its end (the worker is gone).
    pub(crate) fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// The last forwarded output, escaped, for a crash report.
    pub(crate) fn tail(&self) -> String {
        String::from_utf8_lossy(&self.lock().tail).trim().to_owned()
    }

    /// Whether the worker was killed for flooding its stderr.
    pub(crate) fn flooded(&self) -> bool {
        self.lock().flooded
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn forward(
    pipe: &OwnedFd,
    pid: Pid,
    worker: &OwnedFd,
    limits: StderrLimits,
    shared: &Mutex<Shared>,
) {
    let mut filter = Filter::new(pid, limits);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match rustix::io::read(pipe, &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        };
        let mut out = Vec::new();
        let flood = filter.feed(buf.get(..n).unwrap_or_default(), Instant::now(), &mut out);
        publish(shared, &out, flood);
        if flood {
            // Marked before the kill, so the host's failed call sees it.
            let _ = rustix::process::pidfd_send_signal(worker, Signal::KILL);
        }
    }
    let mut out = Vec::new();
    filter.finish(&mut out);
    publish(shared, &out, false);
}

/// Write filtered lines to this process's stderr and keep their tail.
fn publish(shared: &Mutex<Shared>, out: &[u8], flood: bool) {
    if !out.is_empty() {
        let _ = std::io::stderr().lock().write_all(out);
    }
    let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
    shared.flooded |= flood;
    shared.tail.extend_from_slice(out);
    if shared.tail.len() > TAIL {
        let cut = shared.tail.len() - TAIL;
        shared.tail.drain(..cut);
    }
}

/// The forwarding rules, apart from the pipe and the clock, so they can be
/// tested with any input and any timing.
#[derive(Debug)]
struct Filter {
    pid: Pid,
    limits: StderrLimits,
    /// The line being assembled, raw, at most `max_line` bytes.
    line: Vec<u8>,
    /// Whether `line` continues a line that was split.
    continued: bool,
    window_start: Option<Instant>,
    /// Bytes received in the current window.
    received: u64,
    /// Bytes dropped in the current window.
    dropped: u64,
    /// Whether the flood was already reported; nothing is forwarded after.
    flooded: bool,
}

impl Filter {
    fn new(pid: Pid, limits: StderrLimits) -> Self {
        Self {
            pid,
            limits,
            line: Vec::new(),
            continued: false,
            window_start: None,
            received: 0,
            dropped: 0,
            flooded: false,
        }
    }

    /// Take `bytes` that arrived at `now`; write what is forwarded to
    /// `out`. Returns `true` when this input makes the output a flood.
    fn feed(&mut self, bytes: &[u8], now: Instant, out: &mut Vec<u8>) -> bool {
        if self.flooded {
            return false;
        }
        let window_over = self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW);
        if window_over {
            self.report_dropped(out);
            self.window_start = Some(now);
            self.received = 0;
        }
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let budget = self.limits.per_second.saturating_sub(self.received);
        self.received = self.received.saturating_add(len);
        let take = usize::try_from(budget.min(len)).unwrap_or(bytes.len());
        let (forwarded, excess) = bytes.split_at(take.min(bytes.len()));
        for &byte in forwarded {
            self.push(byte, out);
        }
        self.dropped = self
            .dropped
            .saturating_add(u64::try_from(excess.len()).unwrap_or(u64::MAX));
        if self.received > self.limits.flood_per_second {
            self.flooded = true;
            self.flush_line(out);
            self.report_dropped(out);
            let _ = writeln!(
                out,
                "modhash-worker[{}]: more than {} bytes of output in one second: the worker is killed",
                self.pid.as_raw_nonzero(),
                self.limits.flood_per_second
            );
            return true;
        }
        false
    }

    /// End of input: forward the unfinished line and the drop count.
    fn finish(&mut self, out: &mut Vec<u8>) {
        self.flush_line(out);
        self.report_dropped(out);
    }

    fn push(&mut self, byte: u8, out: &mut Vec<u8>) {
        if byte == b'\n' {
            self.emit(out);
            self.continued = false;
            return;
        }
        self.line.push(byte);
        if self.line.len() >= self.limits.max_line.max(1) {
            self.emit(out);
            self.continued = true;
        }
    }

    fn flush_line(&mut self, out: &mut Vec<u8>) {
        if !self.line.is_empty() {
            self.emit(out);
            self.continued = false;
        }
    }

    /// Write the assembled line, prefixed and escaped.
    fn emit(&mut self, out: &mut Vec<u8>) {
        let mark = if self.continued { '+' } else { ':' };
        let _ = write!(out, "modhash-worker[{}]{mark} ", self.pid.as_raw_nonzero());
        escape(&self.line, out);
        out.push(b'\n');
        self.line.clear();
    }

    fn report_dropped(&mut self, out: &mut Vec<u8>) {
        if self.dropped > 0 {
            let _ = writeln!(
                out,
                "modhash-worker[{}]: dropped {} bytes of output over the limit of {} bytes per second",
                self.pid.as_raw_nonzero(),
                self.dropped,
                self.limits.per_second
            );
            self.dropped = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid() -> Pid {
        Pid::from_raw(42).expect("a valid pid")
    }

    fn filter(max_line: usize, per_second: u64, flood_per_second: u64) -> Filter {
        Filter::new(
            pid(),
            StderrLimits {
                max_line,
                per_second,
                flood_per_second,
            },
        )
    }

    fn text(out: &[u8]) -> &str {
        std::str::from_utf8(out).unwrap_or("<not utf-8>")
    }

    #[test]
    fn lines_get_the_prefix_and_control_characters_are_escaped() {
        let mut f = filter(100, 1000, 10_000);
        let mut out = Vec::new();
        let now = Instant::now();
        assert!(!f.feed(
            b"ok\n\x1b[2K\rmodhash: forged\n\xff\xc3\xa9\\x41\t\xe2\x80\xae\xc2\x9b",
            now,
            &mut out
        ));
        f.finish(&mut out);
        assert_eq!(
            text(&out),
            "modhash-worker[42]: ok\n\
             modhash-worker[42]: \\x1b[2K\\x0dmodhash: forged\n\
             modhash-worker[42]: \\xffé\\\\x41\t\\u{202e}\\u{009b}\n"
        );
    }

    #[test]
    fn long_lines_are_split_and_marked() {
        let mut f = filter(4, 1000, 10_000);
        let mut out = Vec::new();
        f.feed(b"abcdefghij\nxy\n", Instant::now(), &mut out);
        assert_eq!(
            text(&out),
            "modhash-worker[42]: abcd\n\
             modhash-worker[42]+ efgh\n\
             modhash-worker[42]+ ij\n\
             modhash-worker[42]: xy\n"
        );
    }

    #[test]
    fn output_over_the_rate_is_dropped_and_counted() {
        let mut f = filter(100, 6, 100);
        let mut out = Vec::new();
        let start = Instant::now();
        assert!(!f.feed(b"12345\n", start, &mut out));
        assert!(!f.feed(b"abcdef\n", start, &mut out));
        // A new window: the count of the last one, then new lines again.
        assert!(!f.feed(b"z\n", start + WINDOW, &mut out));
        assert_eq!(
            text(&out),
            "modhash-worker[42]: 12345\n\
             modhash-worker[42]: dropped 7 bytes of output over the limit of 6 bytes per second\n\
             modhash-worker[42]: z\n"
        );
    }

    #[test]
    fn a_flood_is_reported_once_and_ends_forwarding() {
        let mut f = filter(100, 4, 10);
        let mut out = Vec::new();
        let now = Instant::now();
        assert!(!f.feed(b"abcdefgh", now, &mut out));
        assert!(f.feed(b"ijk", now, &mut out));
        assert!(!f.feed(b"more\n", now + WINDOW, &mut out));
        f.finish(&mut out);
        assert_eq!(
            text(&out),
            "modhash-worker[42]: abcd\n\
             modhash-worker[42]: dropped 7 bytes of output over the limit of 4 bytes per second\n\
             modhash-worker[42]: more than 10 bytes of output in one second: the worker is killed\n"
        );
    }
}
