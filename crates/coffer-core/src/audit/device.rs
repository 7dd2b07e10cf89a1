//! Audit devices: where entries go (`file`, `socket`, `syslog`), each served by one writer
//! thread that seals entries into the device's chain in arrival order, writes a whole batch at
//! once, syncs by the device's policy, and only then acknowledges the batch.
//!
//! A request waits for the acknowledgement at most the device's `write_timeout`: a stuck disk
//! or socket fails requests fast (and shows in health) instead of freezing the server, as a
//! blocked device does in Vault. The `file` device notices when its path was moved away,
//! deleted or made read-only (logrotate, an operator): it reopens the path, or fails.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::chain::{self, Chain, Head};

/// Entries waiting for a writer before new ones are refused.
const QUEUE_CAPACITY: usize = 64 * 1024;
/// Entries written in one batch at most.
const MAX_BATCH: usize = 4096;
/// How often an open file is checked: its descriptor (deleted, made read-only) and its path
/// (moved away or replaced). Not on every batch: two stat calls per write cost as much as the
/// write itself.
pub(crate) const FILE_CHECK_INTERVAL: Duration = Duration::from_millis(200);
/// How often `fsync = "interval"` syncs, and how often an idle writer wakes.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// The default `write_timeout`.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// When a file device calls fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// After every batch, before it is acknowledged.
    Always,
    /// At most once a second (the default).
    Interval,
    /// Never; the OS writes back when it likes.
    Never,
}

impl SyncPolicy {
    pub fn parse(s: &str) -> Option<SyncPolicy> {
        match s {
            "always" => Some(SyncPolicy::Always),
            "interval" => Some(SyncPolicy::Interval),
            "never" => Some(SyncPolicy::Never),
            _ => None,
        }
    }
}

/// Where a device writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    File {
        path: PathBuf,
        /// `None`: leave the mode alone (OpenBao's `mode = "0000"`).
        mode: Option<u32>,
        sync: SyncPolicy,
    },
    Stdout,
    Socket {
        address: String,
        kind: SocketKind,
    },
    Syslog {
        facility: u8,
        tag: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    Tcp,
    Udp,
    Unix,
}

/// A device's state as `sys/health` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeviceHealth {
    pub path: String,
    #[serde(rename = "type")]
    pub device_type: String,
    /// `healthy` or `failing`.
    pub status: &'static str,
    /// RFC 3339; when the current run of failures began.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Entries this device could not record (the request was refused if no other device
    /// recorded it).
    pub dropped: u64,
    /// Entries written.
    pub written: u64,
    /// The chain's last sequence number.
    pub seq: u64,
}

/// What a writer reports back for one entry.
pub type Ack = tokio::sync::oneshot::Sender<Result<(), String>>;

/// An entry handed to a device, not yet known to be written.
pub enum Submitted {
    /// Sealed into an inline device's chain under this ticket.
    Sealed(u64),
    /// Queued for a writer thread.
    Queued(tokio::sync::oneshot::Receiver<Result<(), String>>),
    /// Not taken.
    Refused(&'static str),
}

enum Msg {
    Entry(Vec<u8>, Ack),
    Reopen(Ack),
    Stop,
}

/// Health counters shared by a device's writer and its callers.
#[derive(Default)]
pub struct State {
    failing: Mutex<Option<(DateTime<Utc>, String)>>,
    dropped: AtomicU64,
    written: AtomicU64,
    seq: AtomicU64,
    head: Mutex<Head>,
}

impl State {
    pub fn fail(&self, error: &str) {
        let mut failing = self
            .failing
            .lock()
            .expect("audit state lock is not poisoned");
        match failing.as_mut() {
            Some((_, last)) => error.clone_into(last),
            None => {
                tracing::error!(error, "audit device failing");
                *failing = Some((Utc::now(), error.to_owned()));
            }
        }
    }

    pub fn drop_entry(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn succeed(&self, n: u64, head: &Head) {
        self.written.fetch_add(n, Ordering::Relaxed);
        self.seq.store(head.seq, Ordering::Relaxed);
        head.clone_into(&mut self.head.lock().expect("audit state lock is not poisoned"));
        let mut failing = self
            .failing
            .lock()
            .expect("audit state lock is not poisoned");
        if failing.take().is_some() {
            tracing::warn!("audit device recovered");
        }
    }

    pub fn head(&self) -> Head {
        self.head
            .lock()
            .expect("audit state lock is not poisoned")
            .clone()
    }

    pub fn health(&self, path: &str, device_type: &str) -> DeviceHealth {
        let failing = self
            .failing
            .lock()
            .expect("audit state lock is not poisoned")
            .clone();
        DeviceHealth {
            path: path.to_owned(),
            device_type: device_type.to_owned(),
            status: if failing.is_some() {
                "failing"
            } else {
                "healthy"
            },
            failing_since: failing
                .as_ref()
                .map(|(t, _)| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            last_error: failing.map(|(_, e)| e),
            dropped: self.dropped.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            seq: self.seq.load(Ordering::Relaxed),
        }
    }
}

/// The handle of a running device: entries are written inline (a local file that is not
/// synced per entry: one `write` under an async lock, no thread hop on the hot path) or by a
/// writer thread (sockets, syslog, `fsync = "always"`: batched group commits).
pub struct Writer {
    kind: Kind,
    pub state: Arc<State>,
}

enum Kind {
    Thread(SyncSender<Msg>),
    Inline(Arc<Inline>),
}

/// An inline device: requests seal their entries into `pending` (a short critical section
/// without I/O), then the first request to find `io` free writes everything pending in one
/// `write` (group commit) while the others wait for `done`. A request whose entry is already
/// written returns without taking any lock, arming a timer or parking; the common case.
/// A helper thread syncs the file every second (`interval`).
struct Inline {
    pending: Mutex<Pending>,
    /// Held while a batch is written; only ever taken with `try_lock` by requests, so no
    /// worker thread blocks on it.
    io: Mutex<Io>,
    /// Every ticket below this one was written or failed.
    processed: AtomicU64,
    /// The end of the last ticket range whose batch failed (0: none yet): a processed ticket
    /// at or past it was written, without looking at `failed`.
    failed_end: AtomicU64,
    /// Recent ticket ranges whose batch failed.
    failed: Mutex<std::collections::VecDeque<std::ops::Range<u64>>>,
    /// Wakes the requests waiting for a batch once it is written.
    done: tokio::sync::Notify,
}

struct Pending {
    chain: Chain,
    buf: Vec<u8>,
    /// The ticket of the next entry sealed; the buffer holds tickets `processed..next`.
    next: u64,
    /// The head after the last batch that was written (where a failed batch rolls back to).
    written: Head,
    stopped: bool,
}

struct Io {
    sink: Sink,
    spare: Vec<u8>,
}

impl Inline {
    /// Writes everything pending (the caller holds `io`), then wakes the waiting requests.
    fn flush(&self, io: &mut Io, state: &State) {
        let start = self.processed.load(Ordering::Acquire);
        let (end, head, stopped) = {
            let mut p = self
                .pending
                .lock()
                .expect("audit pending lock is not poisoned");
            std::mem::swap(&mut p.buf, &mut io.spare);
            (p.next, p.chain.head().clone(), p.stopped)
        };
        if end == start {
            return;
        }
        let result = if stopped {
            Err("the audit device is closed".to_owned())
        } else {
            io.sink.write(&io.spare).map_err(|e| e.to_string())
        };
        io.spare.clear();
        match result {
            Ok(()) => {
                state.succeed(end - start, &head);
                self.pending
                    .lock()
                    .expect("audit pending lock is not poisoned")
                    .written = head;
                self.processed.store(end, Ordering::Release);
            }
            Err(e) => {
                // Entries sealed meanwhile follow the lost ones: they are lost too, and the
                // chain goes back to the last entry written.
                let mut p = self
                    .pending
                    .lock()
                    .expect("audit pending lock is not poisoned");
                p.buf.clear();
                let written = p.written.clone();
                p.chain.reset(written);
                let lost = start..p.next;
                drop(p);
                {
                    let mut failed = self
                        .failed
                        .lock()
                        .expect("audit failed lock is not poisoned");
                    failed.push_back(lost.clone());
                    if failed.len() > 64 {
                        failed.pop_front();
                    }
                }
                self.failed_end.store(lost.end, Ordering::Release);
                self.processed.store(lost.end, Ordering::Release);
                state.fail(&e);
            }
        }
        self.done.notify_waiters();
    }

    /// Waits until the entry under `ticket` is written (true) or lost (false), writing the
    /// pending batch itself when nobody else is.
    async fn wait(
        &self,
        ticket: u64,
        deadline: tokio::time::Instant,
        state: &State,
    ) -> Result<bool, String> {
        let mut done = std::pin::pin!(self.done.notified());
        // Let the other requests ready on this worker seal their entries first: whoever runs
        // next writes them all in one `write` (about ten entries a write under load, instead of
        // one or two), and a write costs more than the yield.
        tokio::task::yield_now().await;
        loop {
            if self.processed.load(Ordering::Acquire) > ticket {
                return Ok(self.written(ticket));
            }
            if let Ok(mut io) = self.io.try_lock() {
                self.flush(&mut io, state);
                continue;
            }
            // Another request is writing: wait for its batch. Registered before looking
            // again, so that a batch finishing in between still wakes this one.
            done.as_mut().enable();
            if self.processed.load(Ordering::Acquire) > ticket {
                continue;
            }
            if let Ok(mut io) = self.io.try_lock() {
                self.flush(&mut io, state);
                continue;
            }
            if tokio::time::timeout_at(deadline, done.as_mut())
                .await
                .is_err()
            {
                return Err("write timed out (the device is busy)".to_owned());
            }
            done.set(self.done.notified());
        }
    }

    /// Whether a processed ticket was written (not in a failed batch).
    fn written(&self, ticket: u64) -> bool {
        ticket >= self.failed_end.load(Ordering::Acquire)
            || !self
                .failed
                .lock()
                .expect("audit failed lock is not poisoned")
                .iter()
                .any(|r| r.contains(&ticket))
    }

    /// Writes what is pending and runs `f` on the sink, waiting for a batch in progress
    /// (called off the async workers).
    fn with_sink<T>(&self, state: &State, f: impl FnOnce(&mut Sink) -> T) -> T {
        let mut io = self.io.lock().expect("audit io lock is not poisoned");
        self.flush(&mut io, state);
        let out = f(&mut io.sink);
        drop(io);
        // Requests that found `io` taken meanwhile wait for a notification: they may now
        // write their own batch.
        self.done.notify_waiters();
        out
    }
}

impl Writer {
    /// Opens the target (a failure to open leaves the device failing; it retries on every
    /// write) and resumes the chain from the file's last entry.
    pub fn spawn(name: &str, target: Target, chain_key: &secrecy::SecretBox<Vec<u8>>) -> Writer {
        let inline = matches!(
            target,
            Target::Stdout
                | Target::File {
                    sync: SyncPolicy::Interval | SyncPolicy::Never,
                    ..
                }
        );
        let mut sink = Sink::new(target);
        sink.defer_sync = inline;
        let head = sink.resume().unwrap_or_default();
        let state = Arc::new(State::default());
        state.seq.store(head.seq, Ordering::Relaxed);
        head.clone_into(&mut state.head.lock().expect("fresh lock"));
        if let Err(e) = sink.ensure_open() {
            state.fail(&e.to_string());
        }
        let chain = Chain::new(chain_key, head);
        let thread_name = format!("audit-{}", name.trim_end_matches('/'));
        if inline {
            let shared = Arc::new(Inline {
                pending: Mutex::new(Pending {
                    written: chain.head().clone(),
                    chain,
                    buf: Vec::with_capacity(64 * 1024),
                    next: 0,
                    stopped: false,
                }),
                io: Mutex::new(Io {
                    sink,
                    spare: Vec::with_capacity(64 * 1024),
                }),
                processed: AtomicU64::new(0),
                failed_end: AtomicU64::new(0),
                failed: Mutex::new(std::collections::VecDeque::new()),
                done: tokio::sync::Notify::new(),
            });
            let weak = Arc::downgrade(&shared);
            let sync_state = state.clone();
            let spawned = std::thread::Builder::new()
                .name(thread_name)
                .spawn(move || sync_loop(&weak, &sync_state));
            if let Err(e) = spawned {
                state.fail(&format!("cannot start the sync thread: {e}"));
            }
            return Writer {
                kind: Kind::Inline(shared),
                state,
            };
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_CAPACITY);
        let thread_state = state.clone();
        let spawned = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || run(rx, sink, chain, &thread_state));
        if let Err(e) = spawned {
            state.fail(&format!("cannot start the writer thread: {e}"));
        }
        Writer {
            kind: Kind::Thread(tx),
            state,
        }
    }

    /// Hands one entry to the device without waiting: an inline device seals it into its
    /// chain at once (so `entry` can be a buffer the caller reuses), a thread device queues a
    /// copy. [`Writer::wait`] then waits until it is written.
    pub fn submit(&self, entry: &[u8]) -> Submitted {
        match &self.kind {
            Kind::Thread(tx) => {
                let (ack, rx) = tokio::sync::oneshot::channel();
                match tx.try_send(Msg::Entry(entry.to_vec(), ack)) {
                    Ok(()) => Submitted::Queued(rx),
                    Err(TrySendError::Full(_)) => Submitted::Refused("the audit queue is full"),
                    Err(TrySendError::Disconnected(_)) => {
                        Submitted::Refused("the audit writer stopped")
                    }
                }
            }
            Kind::Inline(inline) => {
                let mut p = inline
                    .pending
                    .lock()
                    .expect("audit pending lock is not poisoned");
                if p.stopped {
                    return Submitted::Refused("the audit device is closed");
                }
                let p = &mut *p;
                p.chain.seal(entry, &mut p.buf);
                p.next += 1;
                Submitted::Sealed(p.next - 1)
            }
        }
    }

    /// Waits until a submitted entry is written, until `deadline` at most; failures are
    /// counted in `state`.
    pub async fn wait(&self, submitted: Submitted, deadline: tokio::time::Instant) -> bool {
        let result = match (submitted, &self.kind) {
            (Submitted::Refused(e), _) => Err(e.to_owned()),
            (Submitted::Queued(rx), _) => match tokio::time::timeout_at(deadline, rx).await {
                // The writer counted its own failures.
                Ok(Ok(result)) => return result.is_ok(),
                Ok(Err(_)) => Err("the audit writer stopped".to_owned()),
                Err(_) => Err("write timed out".to_owned()),
            },
            (Submitted::Sealed(ticket), Kind::Inline(inline)) => {
                match inline.wait(ticket, deadline, &self.state).await {
                    Ok(true) => Ok(()),
                    // The request that wrote the batch recorded the failure.
                    Ok(false) => {
                        self.state.drop_entry();
                        return false;
                    }
                    Err(e) => Err(e),
                }
            }
            (Submitted::Sealed(_), Kind::Thread(_)) => {
                Err("the audit entry went to another device".to_owned())
            }
        };
        match result {
            Ok(()) => true,
            Err(e) => self.failed(&e),
        }
    }

    fn failed(&self, error: &str) -> bool {
        self.state.fail(error);
        self.state.drop_entry();
        false
    }

    /// Reopens the file or reconnects the socket (SIGHUP); the chain continues.
    pub async fn reopen(&self, timeout: Duration) -> Result<(), String> {
        let result = match &self.kind {
            Kind::Thread(tx) => {
                let (ack, rx) = tokio::sync::oneshot::channel();
                if tx.try_send(Msg::Reopen(ack)).is_err() {
                    return Err("the audit writer is not running".into());
                }
                match tokio::time::timeout(timeout, rx).await {
                    Ok(Ok(r)) => r,
                    Ok(Err(_)) => Err("the audit writer stopped".into()),
                    Err(_) => Err("reopening timed out".into()),
                }
            }
            Kind::Inline(inline) => {
                // What was sealed before the signal goes to the old file.
                let (inline, state) = (inline.clone(), self.state.clone());
                let reopen = tokio::task::spawn_blocking(move || {
                    inline.with_sink(&state, |sink| sink.reopen().map_err(|e| e.to_string()))
                });
                match tokio::time::timeout(timeout, reopen).await {
                    Ok(Ok(r)) => r,
                    Ok(Err(_)) => Err("reopening failed".into()),
                    Err(_) => Err("reopening timed out".into()),
                }
            }
        };
        if let Err(e) = &result {
            self.state.fail(e);
        }
        result
    }

    /// Syncs and closes the device (the writer thread ends, the sync thread follows).
    pub fn stop(&self) {
        match &self.kind {
            Kind::Thread(tx) => {
                let _ = tx.try_send(Msg::Stop);
            }
            Kind::Inline(inline) => {
                let inline = inline.clone();
                let state = self.state.clone();
                let close = move || {
                    inline.with_sink(&state, |sink| {
                        inline
                            .pending
                            .lock()
                            .expect("audit pending lock is not poisoned")
                            .stopped = true;
                        sink.close();
                    });
                };
                // Outside a runtime (tests, shutdown) close here; inside, off the workers.
                if tokio::runtime::Handle::try_current().is_ok() {
                    tokio::task::spawn_blocking(close);
                } else {
                    close();
                }
            }
        }
    }
}

/// Syncs an inline device's file once a second when it has unsynced writes, on a duplicate of
/// its descriptor so that writers never wait for the disk; ends when the device is dropped.
fn sync_loop(shared: &std::sync::Weak<Inline>, state: &State) {
    loop {
        std::thread::sleep(SYNC_INTERVAL);
        let Some(device) = shared.upgrade() else {
            return;
        };
        let stopped = device
            .pending
            .lock()
            .expect("audit pending lock is not poisoned")
            .stopped;
        if stopped {
            return;
        }
        let handle = device.with_sink(state, Sink::sync_handle);
        drop(device);
        if let Some(file) = handle {
            let _ = file.sync_data();
        }
    }
}

fn run(rx: Receiver<Msg>, mut sink: Sink, mut chain: Chain, state: &State) {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut acks = Vec::new();
    loop {
        let first = match rx.recv_timeout(SYNC_INTERVAL) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => {
                sink.idle();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                sink.close();
                return;
            }
        };
        // Everything queued so far becomes one batch: one write, one sync, then the acks.
        let mut before = chain.head().clone();
        let mut next = Some(first);
        let mut stop = false;
        while let Some(msg) = next.take() {
            match msg {
                Msg::Entry(entry, ack) => {
                    chain.seal(&entry, &mut buf);
                    acks.push(ack);
                }
                Msg::Reopen(ack) => {
                    flush(&mut sink, &mut buf, &mut acks, &mut chain, &before, state);
                    let result = sink.reopen().map_err(|e| e.to_string());
                    if let Err(e) = &result {
                        state.fail(e);
                    }
                    let _ = ack.send(result);
                    before = chain.head().clone();
                }
                Msg::Stop => stop = true,
            }
            if stop || acks.len() >= MAX_BATCH {
                break;
            }
            next = rx.try_recv().ok();
        }
        flush(&mut sink, &mut buf, &mut acks, &mut chain, &before, state);
        if stop {
            sink.close();
            return;
        }
    }
}

/// Writes the batch, then acknowledges it; on failure the chain goes back to `before`, so the
/// next entry links to the last one that was written.
fn flush(
    sink: &mut Sink,
    buf: &mut Vec<u8>,
    acks: &mut Vec<Ack>,
    chain: &mut Chain,
    before: &Head,
    state: &State,
) {
    if acks.is_empty() {
        return;
    }
    let result = sink.write(buf).map_err(|e| e.to_string());
    buf.clear();
    match &result {
        Ok(()) => state.succeed(acks.len() as u64, chain.head()),
        Err(e) => {
            state.fail(e);
            for _ in 0..acks.len() {
                state.drop_entry();
            }
            chain.reset(before.clone());
        }
    }
    for ack in acks.drain(..) {
        let _ = ack.send(result.clone());
    }
}

/// The open end of a target.
struct Sink {
    target: Target,
    file: Option<(File, u64)>,
    last_sync: Instant,
    dirty: bool,
    stream: Option<Stream>,
    /// `interval` syncs happen on the sync thread (inline devices), not after a write.
    defer_sync: bool,
    /// When the open file was last checked.
    last_file_check: Instant,
}

enum Stream {
    Tcp(TcpStream),
    Udp(UdpSocket),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
    #[cfg(unix)]
    Datagram(std::os::unix::net::UnixDatagram),
}

impl Sink {
    fn new(target: Target) -> Sink {
        Sink {
            target,
            file: None,
            last_sync: Instant::now(),
            dirty: false,
            stream: None,
            defer_sync: false,
            last_file_check: Instant::now(),
        }
    }

    /// The head of the chain in the file's last entry, for a file device that restarts.
    fn resume(&self) -> Option<Head> {
        let Target::File { path, .. } = &self.target else {
            return None;
        };
        let mut f = File::open(path).ok()?;
        let len = f.metadata().ok()?.len();
        let tail = len.min(1 << 20);
        f.seek(SeekFrom::Start(len - tail)).ok()?;
        let mut bytes = Vec::with_capacity(tail as usize);
        f.read_to_end(&mut bytes).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
        let (seq, _, hmac) = chain::parse_line(last)?;
        Some(Head { seq, hmac })
    }

    fn ensure_open(&mut self) -> io::Result<()> {
        match &self.target {
            Target::File { path, mode, .. } => {
                if self.file.is_some() && self.last_file_check.elapsed() < FILE_CHECK_INTERVAL {
                    return Ok(());
                }
                self.last_file_check = Instant::now();
                if let Some((file, _)) = &self.file {
                    // On the open descriptor: the file was deleted (its directory removed)
                    // or made read-only.
                    match file.metadata() {
                        Ok(meta) if meta.permissions().readonly() => {
                            self.file = None;
                            return Err(read_only(path));
                        }
                        Ok(meta) if links(&meta) == 0 => self.file = None,
                        Ok(_) => {}
                        Err(_) => self.file = None,
                    }
                }
                // The path itself moved (logrotate) or was replaced.
                match std::fs::metadata(path) {
                    Ok(meta) => {
                        if meta.permissions().readonly() {
                            self.file = None;
                            return Err(read_only(path));
                        }
                        if self
                            .file
                            .as_ref()
                            .is_some_and(|(_, ino)| *ino != inode(&meta))
                        {
                            self.file = None;
                        }
                    }
                    Err(_) => self.file = None,
                }
                if self.file.is_none() {
                    let file = open_file(path, *mode)?;
                    let ino = inode(&file.metadata()?);
                    self.file = Some((file, ino));
                }
                Ok(())
            }
            Target::Stdout => Ok(()),
            Target::Socket { address, kind } => {
                if self.stream.is_none() {
                    self.stream = Some(connect(address, *kind)?);
                }
                Ok(())
            }
            Target::Syslog { .. } => {
                if self.stream.is_none() {
                    self.stream = Some(connect_syslog()?);
                }
                Ok(())
            }
        }
    }

    fn write(&mut self, batch: &[u8]) -> io::Result<()> {
        self.ensure_open()?;
        let result = self.write_open(batch);
        if result.is_err() {
            // Reconnect (or reopen) once: a peer that restarted gets the batch on a new socket.
            self.file = None;
            self.stream = None;
            self.ensure_open()?;
            return self.write_open(batch);
        }
        result
    }

    fn write_open(&mut self, batch: &[u8]) -> io::Result<()> {
        match &self.target {
            Target::File { sync, .. } => {
                let sync = *sync;
                let (file, _) = self.file.as_mut().expect("ensure_open opened the file");
                file.write_all(batch)?;
                self.dirty = true;
                if sync == SyncPolicy::Always
                    || (sync == SyncPolicy::Interval
                        && !self.defer_sync
                        && self.last_sync.elapsed() >= SYNC_INTERVAL)
                {
                    file.sync_data()?;
                    self.dirty = false;
                    self.last_sync = Instant::now();
                }
                Ok(())
            }
            Target::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(batch)?;
                out.flush()
            }
            Target::Syslog { facility, tag } => {
                // One datagram per entry: `<PRI>TAG[PID]: entry`, severity info.
                let prefix = format!(
                    "<{}>{tag}[{}]: ",
                    u32::from(*facility) * 8 + 6,
                    std::process::id()
                );
                let stream = self.stream.as_mut().expect("ensure_open connected");
                for line in batch.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let mut msg = prefix.clone().into_bytes();
                    msg.extend_from_slice(line);
                    stream.send_one(&msg)?;
                }
                Ok(())
            }
            Target::Socket { kind, .. } => {
                let stream = self.stream.as_mut().expect("ensure_open connected");
                if *kind == SocketKind::Udp {
                    for line in batch.split_inclusive(|b| *b == b'\n') {
                        stream.send_one(line)?;
                    }
                    Ok(())
                } else {
                    stream.write_all(batch)
                }
            }
        }
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.close();
        self.file = None;
        self.stream = None;
        self.ensure_open()
    }

    /// A duplicate of the file's descriptor to sync, when `interval` left writes unsynced.
    fn sync_handle(&mut self) -> Option<File> {
        let Target::File {
            sync: SyncPolicy::Interval,
            ..
        } = &self.target
        else {
            return None;
        };
        if !self.dirty {
            return None;
        }
        let (file, _) = self.file.as_ref()?;
        let handle = file.try_clone().ok()?;
        self.dirty = false;
        Some(handle)
    }

    /// An idle moment: sync what `interval` left unsynced.
    fn idle(&mut self) {
        if self.dirty {
            if let Some((file, _)) = &self.file {
                if file.sync_data().is_ok() {
                    self.dirty = false;
                    self.last_sync = Instant::now();
                }
            }
        }
    }

    fn close(&mut self) {
        if let Target::File { sync, .. } = &self.target {
            if *sync != SyncPolicy::Never {
                self.idle();
            }
        }
    }
}

impl Stream {
    fn send_one(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Udp(s) => s.send(bytes).map(drop),
            #[cfg(unix)]
            Stream::Datagram(s) => s.send(bytes).map(drop),
            other => other.write_all(bytes),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(bytes),
            #[cfg(unix)]
            Stream::Unix(s) => s.write_all(bytes),
            Stream::Udp(_) => self.send_one(bytes),
            #[cfg(unix)]
            Stream::Datagram(_) => self.send_one(bytes),
        }
    }
}

/// The socket write timeout: the writer gives up on a peer that stopped reading.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(5);

fn connect(address: &str, kind: SocketKind) -> io::Result<Stream> {
    match kind {
        SocketKind::Tcp => {
            let addr = std::net::ToSocketAddrs::to_socket_addrs(address)?
                .next()
                .ok_or_else(|| io::Error::other(format!("cannot resolve {address}")))?;
            let s = TcpStream::connect_timeout(&addr, SOCKET_TIMEOUT)?;
            s.set_write_timeout(Some(SOCKET_TIMEOUT))?;
            s.set_nodelay(true)?;
            Ok(Stream::Tcp(s))
        }
        SocketKind::Udp => {
            let s = UdpSocket::bind(("0.0.0.0", 0))?;
            s.connect(address)?;
            Ok(Stream::Udp(s))
        }
        #[cfg(unix)]
        SocketKind::Unix => {
            let s = std::os::unix::net::UnixStream::connect(address)?;
            s.set_write_timeout(Some(SOCKET_TIMEOUT))?;
            Ok(Stream::Unix(s))
        }
        #[cfg(not(unix))]
        SocketKind::Unix => Err(io::Error::other("unix sockets need a unix system")),
    }
}

#[cfg(unix)]
fn connect_syslog() -> io::Result<Stream> {
    let s = std::os::unix::net::UnixDatagram::unbound()?;
    let mut last = io::Error::other("no syslog socket found");
    for path in ["/dev/log", "/var/run/syslog", "/var/run/log"] {
        match s.connect(path) {
            Ok(()) => {
                s.set_write_timeout(Some(SOCKET_TIMEOUT))?;
                return Ok(Stream::Datagram(s));
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[cfg(not(unix))]
fn connect_syslog() -> io::Result<Stream> {
    Err(io::Error::other("syslog needs a unix system"))
}

fn open_file(path: &PathBuf, mode: Option<u32>) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode.unwrap_or(0o600));
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    Ok(file)
}

fn read_only(path: &std::path::Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("audit file {} is read-only", path.display()),
    )
}

/// The number of names the open file has (0 once it was deleted).
#[cfg(unix)]
fn links(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.nlink()
}

#[cfg(not(unix))]
fn links(_meta: &std::fs::Metadata) -> u64 {
    1
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino()
}

#[cfg(not(unix))]
fn inode(_meta: &std::fs::Metadata) -> u64 {
    0
}

/// Parses a device's target from its type and options; the error names the bad option.
pub fn target(device_type: &str, options: &BTreeMap<String, String>) -> Result<Target, String> {
    match device_type {
        "file" => {
            let path = options
                .get("file_path")
                .or_else(|| options.get("path"))
                .ok_or("file audit device needs a file_path option")?;
            if path == "stdout" {
                return Ok(Target::Stdout);
            }
            if path == "discard" {
                return Err(
                    "file_path \"discard\" is not supported: it would record nothing".into(),
                );
            }
            let mode = match options.get("mode").map(String::as_str) {
                None => Some(0o600),
                Some(m) => {
                    let bits = u32::from_str_radix(m, 8)
                        .map_err(|_| format!("mode {m:?} is not an octal file mode"))?;
                    (bits != 0).then_some(bits)
                }
            };
            let sync = match options.get("fsync") {
                None => SyncPolicy::Interval,
                Some(s) => SyncPolicy::parse(s).ok_or_else(|| {
                    format!("fsync must be \"always\", \"interval\" or \"never\", not {s:?}")
                })?,
            };
            Ok(Target::File {
                path: PathBuf::from(path),
                mode,
                sync,
            })
        }
        "socket" => {
            let address = options
                .get("address")
                .filter(|a| !a.is_empty())
                .ok_or("socket audit device needs an address option")?
                .clone();
            let kind = match options.get("socket_type").map(String::as_str) {
                None | Some("tcp") => SocketKind::Tcp,
                Some("udp") => SocketKind::Udp,
                Some("unix") => SocketKind::Unix,
                Some(other) => {
                    return Err(format!(
                        "socket_type must be tcp, udp or unix, not {other:?}"
                    ))
                }
            };
            Ok(Target::Socket { address, kind })
        }
        "syslog" => {
            let facility = options.get("facility").map_or("AUTH", String::as_str);
            let facility = FACILITIES
                .iter()
                .position(|f| f.eq_ignore_ascii_case(facility))
                .ok_or_else(|| format!("unknown syslog facility {facility:?}"))?;
            let tag = options
                .get("tag")
                .cloned()
                .unwrap_or_else(|| "coffer".into());
            Ok(Target::Syslog {
                facility: u8::try_from(facility).expect("fewer than 256 facilities"),
                tag,
            })
        }
        other => Err(format!(
            "unknown audit device type {other:?} (supported: file, socket, syslog)"
        )),
    }
}

/// Syslog facilities by number (RFC 5424).
const FACILITIES: [&str; 24] = [
    "KERN",
    "USER",
    "MAIL",
    "DAEMON",
    "AUTH",
    "SYSLOG",
    "LPR",
    "NEWS",
    "UUCP",
    "CRON",
    "AUTHPRIV",
    "FTP",
    "NTP",
    "SECURITY",
    "CONSOLE",
    "SOLARISCRON",
    "LOCAL0",
    "LOCAL1",
    "LOCAL2",
    "LOCAL3",
    "LOCAL4",
    "LOCAL5",
    "LOCAL6",
    "LOCAL7",
];
