//! Outputs for snapshot lines (and, later, alert lines and a Prometheus
//! textfile): stdout, an append-only file, remote syslog over UDP. Every
//! output is a `Sink` behind its own bounded queue of whole lines, and
//! nothing here blocks: a line that does not fit its queue is dropped whole
//! and counted, a line a sink could not take stays queued and is retried on
//! the loop's drain tick, and one stalled output never delays another, the
//! ring, the timers or signals.

pub mod conn;
pub mod file;
pub mod mqtt;
mod netio;
pub mod prometheus;
pub mod queue;
mod set;
mod spec;
pub mod store;
pub mod syslog;
pub mod syslog_stream;
pub mod tls;
pub(crate) mod tls_provider;
pub mod url;

use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::log::Key;
use queue::LineQueue;
pub use spec::OutputSpec;
#[derive(Debug)]
pub struct OutputError(pub String);

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What one write attempt did with the front line.
pub enum Wrote {
    /// All of it is out.
    All,
    /// A stream took this many more bytes; the rest follows later.
    Some(usize),
    /// Nothing taken (EAGAIN); try again later.
    Blocked,
    /// The line is gone (full disk, refused, broken pipe); a file has been
    /// rolled back to the line's start.
    Lost(&'static str),
}

/// One kind of output. Alerts and a Prometheus textfile plug in as further
/// sinks behind the same queue.
pub trait Sink {
    fn name(&self) -> &str;
    /// Turns a rendered line into what the sink sends (e.g. syslog framing).
    fn encode<'a>(&'a mut self, line: &'a [u8], _time: &str) -> Result<&'a [u8], &'static str> {
        Ok(line)
    }
    /// A rule's alert line; `severity` is the rule priority's syslog
    /// severity (falco_common.cpp: the priority values are syslog's).
    fn encode_alert<'a>(
        &'a mut self,
        line: &'a [u8],
        time: &str,
        _severity: u8,
    ) -> Result<&'a [u8], &'static str> {
        self.encode(line, time)
    }
    /// Writes `data[done..]` without blocking.
    fn write(&mut self, data: &[u8], done: usize) -> Wrote;
    /// Lines reported lost after they were written (UDP: ICMP errors).
    fn take_lost(&mut self) -> u64 {
        0
    }
    /// SIGHUP: reopen (files); Err names why it failed.
    fn reopen(&mut self) -> Result<(), String> {
        Ok(())
    }
    /// An fd to poll for POLLOUT/POLLERR at exit; None: writes never block.
    fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    /// Whether losses can be reported after the write (waited for at exit).
    fn async_losses(&self) -> bool {
        false
    }
    /// A failed start: remove the file if this run created it.
    fn remove_if_created(&mut self) {}
    /// Network outputs: advance connections and timers (every flush).
    fn tick(&mut self) {}
    /// Messages the sink's own store or spool dropped since the last call.
    fn take_dropped(&mut self) -> u64 {
        0
    }
    /// Still delivering what it took (unacknowledged, unsent).
    fn busy(&self) -> bool {
        false
    }
    /// Exit, after the last flush: close, spool or count what is left.
    fn shutdown(&mut self) {}
}

/// One output: a sink, its queue and its counters.
pub struct Output {
    sink: Box<dyn Sink>,
    queue: LineQueue,
    /// Lines refused because the queue was full (Falco's meaning).
    pub queue_drops: u64,
    /// Lines taken into the queue but not delivered: write errors, rolled
    /// back short writes, refused datagrams, unencodable lines.
    pub write_errors: u64,
    /// Lines handed to the kernel whole.
    pub written: u64,
    /// Of queue_drops: those a network output's store or spool dropped
    /// (oldest first), for its `kestrel.` counter.
    pub net_drops: u64,
    /// The `--output` it was opened from (None: added by the agent).
    spec: Option<OutputSpec>,
}

impl Output {
    pub fn new(sink: Box<dyn Sink>) -> Output {
        Output {
            sink,
            queue: LineQueue::new(),
            queue_drops: 0,
            write_errors: 0,
            written: 0,
            net_drops: 0,
            spec: None,
        }
    }

    /// The output as given (`stdout`, `file:PATH`, `syslog://HOST:PORT`),
    /// for per-output counters in logs and exporters.
    pub fn name(&self) -> &str {
        self.sink.name()
    }

    fn push(&mut self, line: &[u8], time: &str, severity: Option<u8>) {
        let encoded = match severity {
            Some(sev) => self.sink.encode_alert(line, time, sev),
            None => self.sink.encode(line, time),
        };
        match encoded {
            Ok(data) => {
                if !self.queue.push(data) {
                    // Falco counts a message its bounded outputs queue refuses:
                    // falcosecurity/falco userspace/falco/falco_outputs.cpp,
                    // falco_outputs::push (try_push fails -> num_drops++).
                    self.queue_drops += 1;
                }
            }
            Err(why) => {
                self.write_errors += 1;
                crate::log_limited!(Key::OutputError, "output {}: {why}", self.sink.name());
            }
        }
        self.flush();
    }

    /// Its line at exit (or when a reload removed it).
    fn log_summary(&self) {
        // A network output's drops are mostly its store's (full, or still
        // unacknowledged at exit), not the line queue's.
        let why = if self.net_drops > 0 {
            "queue or store full, or undelivered at exit"
        } else {
            "queue full"
        };
        crate::log_line!(
            "output {}: {} lines written, {} dropped ({why}), {} lost (write errors)",
            self.sink.name(),
            self.written,
            self.queue_drops,
            self.write_errors
        );
    }

    fn count_net_drops(&mut self) {
        let d = self.sink.take_dropped();
        self.net_drops += d;
        self.queue_drops += d;
    }

    /// Writes queued lines until the sink would block; true when empty
    /// (and the sink has delivered what it took).
    pub fn flush(&mut self) -> bool {
        self.sink.tick();
        self.write_errors += self.sink.take_lost();
        while let Some((data, done)) = self.queue.front() {
            match self.sink.write(data, done) {
                Wrote::All => {
                    self.queue.pop();
                    self.written += 1;
                }
                Wrote::Some(n) => self.queue.advance(n),
                Wrote::Blocked => {
                    self.count_net_drops();
                    return false;
                }
                Wrote::Lost(why) => {
                    self.queue.pop();
                    self.write_errors += 1;
                    let name = self.sink.name();
                    crate::log_limited!(Key::OutputError, "output {name}: {why}");
                }
            }
        }
        self.count_net_drops();
        !self.sink.busy()
    }
}

/// Options for opening outputs.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenOptions {
    /// Accept FIFOs, sockets and devices as `file:` outputs.
    pub allow_special: bool,
}

/// Why outputs could not be opened; `bad_input` maps to exit status 2.
#[derive(Debug)]
pub struct OpenError {
    pub msg: String,
    pub bad_input: bool,
}

/// All outputs, with the counters the snapshot reports.
pub struct Outputs {
    list: Vec<Output>,
    /// Removed by a reload, still delivering what they had queued (set.rs).
    leaving: Vec<(Output, u64)>,
    /// What outputs a reload removed counted, so the totals never go back.
    retired: set::Retired,
}

impl Outputs {
    pub fn open(
        specs: &[OutputSpec],
        hostname: &str,
        opts: OpenOptions,
    ) -> Result<Outputs, OpenError> {
        let mut out = Outputs::empty();
        for s in specs {
            match set::open_one(s, hostname, opts) {
                Ok(Some(o)) => out.list.push(o),
                Ok(None) => {}
                Err(e) => {
                    // Nothing half-made is left behind.
                    out.remove_created();
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// No outputs yet.
    pub fn empty() -> Outputs {
        Outputs {
            list: Vec::new(),
            leaving: Vec::new(),
            retired: set::Retired::default(),
        }
    }

    /// Adds another output (alerts, a textfile exporter).
    pub fn add(&mut self, sink: Box<dyn Sink>) {
        self.list.push(Output::new(sink));
    }

    /// Queues one newline-terminated line on every output and writes what
    /// each can take now.
    pub fn write(&mut self, line: &[u8], time: &str) {
        for o in &mut self.list {
            o.push(line, time, None);
        }
    }

    /// A rule's alert line, at once, on every output.
    pub fn write_alert(&mut self, line: &[u8], time: &str, severity: u8) {
        for o in &mut self.list {
            o.push(line, time, Some(severity));
        }
    }

    /// Retries queued lines (drain tick); true when every queue is empty.
    pub fn flush(&mut self) -> bool {
        self.flush_leaving();
        let mut empty = true;
        for o in &mut self.list {
            empty &= o.flush();
        }
        empty
    }

    pub fn queue_drops(&self) -> u64 {
        self.all().map(|o| o.queue_drops).sum::<u64>() + self.retired.queue_drops
    }

    /// Drops by the network outputs whose name starts with `scheme`.
    pub fn net_drops(&self, scheme: &str) -> u64 {
        self.all()
            .filter(|o| o.sink.name().starts_with(scheme))
            .map(|o| o.net_drops)
            .sum::<u64>()
            + self.retired.net_drops(scheme)
    }

    pub fn write_errors(&self) -> u64 {
        self.all().map(|o| o.write_errors).sum::<u64>() + self.retired.write_errors
    }

    pub fn outputs(&self) -> &[Output] {
        &self.list
    }

    /// SIGHUP: reopen files (after logrotate or BusyBox rotation renamed them).
    pub fn reopen(&mut self) {
        for o in &mut self.list {
            if let Err(e) = o.sink.reopen() {
                o.write_errors += 1;
                crate::log_limited!(Key::OutputReopen, "{e}");
            }
        }
    }

    /// A failed start: remove output files this run created.
    pub fn remove_created(&mut self) {
        for o in &mut self.list {
            o.sink.remove_if_created();
        }
    }

    /// Exit: keeps writing until every queue is empty or `budget_ns` has
    /// passed, waiting in poll(2), never longer. What is still queued then
    /// counts as dropped.
    pub fn finish(&mut self, budget_ns: u64) {
        // Outputs a reload removed get the same last chance.
        self.list.extend(self.leaving.drain(..).map(|(o, _)| o));
        let end = crate::base::time::monotonic_ns() + budget_ns;
        // One extra round after the queues empty, for late UDP errors.
        let mut settle = self.list.iter().any(|o| o.sink.async_losses());
        loop {
            let empty = self.flush();
            let now = crate::base::time::monotonic_ns();
            if (empty && !settle) || now >= end {
                break;
            }
            let mut fds: heapless::Vec<libc::pollfd, 16> = heapless::Vec::new();
            for o in &self.list {
                if let Some(fd) = o.sink.poll_fd() {
                    let mut events = if o.queue.is_empty() { 0 } else { libc::POLLOUT };
                    if o.sink.busy() {
                        events |= libc::POLLIN;
                    }
                    let _ = fds.push(libc::pollfd {
                        fd: fd.as_raw_fd(),
                        events,
                        revents: 0,
                    });
                }
            }
            let wait_ms = ((end - now) / 1_000_000).clamp(1, if empty { 50 } else { 20 });
            // SAFETY: a valid array of pollfds; the timeout bounds the wait.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms as i32) };
            if empty {
                settle = false;
            }
        }
        for o in &mut self.list {
            while o.queue.pop() {
                o.queue_drops += 1;
            }
            o.sink.shutdown();
            o.count_net_drops();
        }
    }

    /// One line per output at exit: what it wrote, dropped and lost.
    pub fn log_summary(&self) {
        for o in &self.list {
            o.log_summary();
        }
    }
}

#[cfg(test)]
mod tests;
