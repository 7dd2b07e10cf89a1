//! `Sqlite`: the embedded, durable default store (`storage "sqlite" { path = "DIR" }`).
//!
//! One table, `kv (key TEXT PRIMARY KEY, value BLOB)`, in `DIR/coffer.db`, in WAL mode with
//! `synchronous=FULL`: a write is acknowledged only after its commit is fsynced, so it survives
//! a crash or `kill -9`.
//!
//! **Writes** go to one dedicated writer thread that owns the only write connection. Each
//! `apply` sends its batch over a channel and waits for an acknowledgement; the writer drains
//! every batch waiting at that moment into ONE transaction (group commit), so concurrent writers
//! share one fsync instead of queueing for one each. Each batch runs inside its own savepoint,
//! so a batch that fails on its own fails alone; when the transaction or its commit fails, every
//! batch in it gets `Error::Unavailable` and the writer carries on with the next group.
//!
//! **Reads** run on a small pool of dedicated reader threads (one per core, at least two), each
//! owning one `query_only` connection and taking jobs from one shared queue, so a long `list`
//! holds up only its own thread. WAL readers never wait for the writer. Dedicated threads
//! rather than `spawn_blocking`: measured on the 2-core dev machine (`benches/store.rs`, group
//! `hop`), the round trip to a parked thread over a channel costs about 3.6 us, through tokio's
//! blocking pool about 40 us, while a point read itself takes about 3 us.
//!
//! Errors carry SQLite's own code and message (which never hold bound values), never a key
//! or a value.

use std::collections::VecDeque;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tokio::sync::oneshot;

use crate::keys::{self, Child};
use crate::{Error, Op, Store};

/// The database file inside the configured directory.
pub const DB_FILE: &str = "coffer.db";

/// A SQLite store with group commit. Share it behind an `Arc`. Dropping it closes the queues
/// and joins the threads: queued writes are committed and queued reads answered first, so drop
/// it at shutdown, not in the middle of request handling.
pub struct Sqlite {
    writer: Option<mpsc::Sender<WriteReq>>,
    writer_thread: Option<JoinHandle<()>>,
    readers: Arc<ReadQueue>,
    reader_threads: Vec<JoinHandle<()>>,
    /// Dropping the sender stops the checkpointer.
    checkpoint_stop: Option<mpsc::Sender<()>>,
    checkpoint_thread: Option<JoinHandle<()>>,
    stats: Arc<Stats>,
    path: PathBuf,
}

impl Sqlite {
    /// Opens (creating if missing) the store in directory `path`, in `path/coffer.db`.
    pub fn open(path: &Path) -> Result<Sqlite, Error> {
        create_private_dir(path)?;
        let file = path.join(DB_FILE);
        if !file.exists() {
            create_private_file(&file)?;
            // Make the new file's directory entry durable, as SQLite itself does for its WAL.
            fs::File::open(path)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_error("sync storage directory", &e))?;
        }
        let writer_conn = open_writer(&file)?;

        // Checkpoints run beside the writer, so that copying the WAL back into the database
        // never stalls a commit (SQLite's automatic checkpoint runs inside the committing
        // write, which showed as a p99 write-latency spike). The writer has autocheckpoint off.
        let checkpoint_conn = open_reader(&file)?;
        checkpoint_conn
            .pragma_update(None, "query_only", false)
            .map_err(|e| sql_error("open checkpointer", &e))?;
        let (checkpoint_stop, stop_rx) = mpsc::channel::<()>();
        let checkpoint_thread = std::thread::Builder::new()
            .name("coffer-sqlite-checkpoint".into())
            .spawn(move || run_checkpointer(&checkpoint_conn, &stop_rx))
            .map_err(|e| io_error("start the sqlite checkpointer", &e))?;

        let size = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(2, 8);
        let conns = (0..size)
            .map(|_| open_reader(&file))
            .collect::<Result<Vec<_>, _>>()?;

        let readers = Arc::new(ReadQueue::default());
        let mut reader_threads = Vec::with_capacity(size);
        let stats = Arc::new(Stats::default());
        let (tx, rx) = mpsc::channel();
        let started = (|| {
            for (n, conn) in conns.into_iter().enumerate() {
                let jobs = readers.clone();
                let thread = std::thread::Builder::new()
                    .name(format!("coffer-sqlite-reader-{n}"))
                    .spawn(move || run_reader(conn, &jobs))?;
                reader_threads.push(thread);
            }
            let thread_stats = stats.clone();
            std::thread::Builder::new()
                .name("coffer-sqlite-writer".into())
                .spawn(move || run_writer(writer_conn, rx, &thread_stats))
        })();
        let writer_thread = match started {
            Ok(t) => t,
            Err(e) => {
                // Stop the readers already started; they would wait on the queue forever.
                readers.close();
                return Err(io_error("start the sqlite threads", &e));
            }
        };

        tracing::info!(path = %file.display(), readers = size, "sqlite storage opened");
        Ok(Sqlite {
            writer: Some(tx),
            writer_thread: Some(writer_thread),
            checkpoint_stop: Some(checkpoint_stop),
            checkpoint_thread: Some(checkpoint_thread),
            readers,
            reader_threads,
            stats,
            path: file,
        })
    }

    /// How many transactions the writer has committed. With concurrent writers this stays
    /// below [`Sqlite::writes`]: that is the group commit at work.
    pub fn commits(&self) -> u64 {
        self.stats.commits.load(Ordering::Relaxed)
    }

    /// How many batches (`apply` calls) have been committed and acknowledged.
    pub fn writes(&self) -> u64 {
        self.stats.writes.load(Ordering::Relaxed)
    }

    /// The database file.
    pub fn file(&self) -> &Path {
        &self.path
    }

    async fn read<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    {
        let stopped = || Error::Unavailable("sqlite readers stopped".into());
        let (ack, done) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = ack.send(f(conn));
        });
        self.readers.push(job).map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())?
    }
}

impl fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sqlite")
            .field("path", &self.path)
            .field("commits", &self.commits())
            .finish_non_exhaustive()
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        // Closing the channel ends the writer loop once the queued groups are committed.
        self.writer.take();
        self.readers.close();
        if let Some(t) = self.writer_thread.take() {
            let _ = t.join();
        }
        self.checkpoint_stop.take();
        if let Some(t) = self.checkpoint_thread.take() {
            let _ = t.join();
        }
        for t in self.reader_threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[async_trait]
impl Store for Sqlite {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let key = key.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT value FROM kv WHERE key = ?1")
                .map_err(|e| sql_error("prepare get", &e))?;
            stmt.query_row([&key], |row| Ok(blob(row.get_ref(0)?)))
                .optional()
                .map_err(|e| sql_error("get", &e))?
                .transpose()
        })
        .await
    }

    async fn apply(&self, ops: Vec<Op>) -> Result<(), Error> {
        if ops.is_empty() {
            return Ok(());
        }
        let writer = self
            .writer
            .as_ref()
            .ok_or_else(|| Error::Unavailable("sqlite writer stopped".into()))?;
        let (ack, done) = oneshot::channel();
        writer
            .send(WriteReq { ops, ack })
            .map_err(|_| Error::Unavailable("sqlite writer stopped".into()))?;
        // If this future is dropped now, the batch is still committed: it is already queued.
        done.await
            .map_err(|_| Error::Unavailable("sqlite writer stopped".into()))?
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let prefix = prefix.to_owned();
        self.read(move |conn| list_children(conn, &prefix)).await
    }
}

/// One `apply` waiting for the writer.
struct WriteReq {
    ops: Vec<Op>,
    ack: oneshot::Sender<Result<(), Error>>,
}

#[derive(Default)]
struct Stats {
    commits: AtomicU64,
    writes: AtomicU64,
}

/// A read to run on a reader thread's connection; it sends its own result.
type ReadJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// The reader threads' shared job queue. A condition variable rather than a channel behind a
/// mutex: a new job wakes exactly one idle thread, where a shared receiver would also wake the
/// next thread to take over the wait (measured: one context switch per read less).
#[derive(Default)]
struct ReadQueue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<ReadJob>,
    closed: bool,
}

impl ReadQueue {
    /// Queues a job; gives it back when the store is shutting down.
    fn push(&self, job: ReadJob) -> Result<(), ReadJob> {
        let mut state = self.lock();
        if state.closed {
            return Err(job);
        }
        state.jobs.push_back(job);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Lets the readers finish the queued jobs and stop.
    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// The next job, waiting for one; `None` once closed and drained.
    fn pop(&self) -> Option<ReadJob> {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state = self.ready.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // Only push and pop happen under this lock: a poisoned one still holds a valid queue.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A reader thread: run queued jobs on this thread's connection until the store is dropped.
fn run_reader(mut conn: Connection, jobs: &ReadQueue) {
    while let Some(job) = jobs.pop() {
        // A panicking job drops its acknowledgement (its caller gets Unavailable); the
        // thread and its connection stay in service. An open read transaction is rolled
        // back as the job unwinds.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn)));
    }
}

/// The writer loop: take one batch, drain whatever else is waiting (up to a bound, so one
/// transaction stays small enough to commit quickly), commit them together, acknowledge all.
fn run_writer(mut conn: Connection, rx: mpsc::Receiver<WriteReq>, stats: &Stats) {
    let mut group: Vec<WriteReq> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut bytes = batch_bytes(&first.ops);
        group.push(first);
        while group.len() < MAX_GROUP_BATCHES && bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(req) => {
                    bytes += batch_bytes(&req.ops);
                    group.push(req);
                }
                Err(_) => break,
            }
        }
        match commit_group(&mut conn, &group) {
            Ok(outcomes) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                for (req, outcome) in group.drain(..).zip(outcomes) {
                    let result = outcome.map_err(|e| sql_error("write batch", &e));
                    if result.is_ok() {
                        stats.writes.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = req.ack.send(result);
                }
            }
            Err(e) => {
                let error = sql_error("commit", &e);
                tracing::error!(%error, batches = group.len(), "sqlite transaction failed");
                let Error::Unavailable(message) = error else {
                    unreachable!("sql_error only builds Unavailable")
                };
                for req in group.drain(..) {
                    let _ = req.ack.send(Err(Error::Unavailable(message.clone())));
                }
            }
        }
    }
}

/// Runs `group` in one transaction, each batch in its own savepoint. `Ok` holds each batch's
/// own outcome once the transaction has committed; `Err` means nothing was committed.
fn commit_group(
    conn: &mut Connection,
    group: &[WriteReq],
) -> Result<Vec<Result<(), rusqlite::Error>>, rusqlite::Error> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let mut outcomes = Vec::with_capacity(group.len());
        for req in group {
            if group.len() == 1 {
                // Alone in the transaction: its failure is the transaction's.
                apply_ops(conn, &req.ops)?;
                outcomes.push(Ok(()));
                continue;
            }
            conn.execute_batch("SAVEPOINT batch")?;
            match apply_ops(conn, &req.ops) {
                Ok(()) => {
                    conn.execute_batch("RELEASE batch")?;
                    outcomes.push(Ok(()));
                }
                // Some errors (full disk, I/O) make SQLite roll back the whole transaction:
                // then no savepoint is left to return to, and the group fails whole.
                Err(e) if conn.is_autocommit() => return Err(e),
                Err(e) => {
                    conn.execute_batch("ROLLBACK TO batch; RELEASE batch")?;
                    outcomes.push(Err(e));
                }
            }
        }
        conn.execute_batch("COMMIT")?;
        Ok(outcomes)
    })();
    if result.is_err() && !conn.is_autocommit() {
        // Leave the connection clean for the next group; a failed rollback leaves it to
        // SQLite, which rolls back an open transaction on the next BEGIN's failure anyway.
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

fn apply_ops(conn: &Connection, ops: &[Op]) -> Result<(), rusqlite::Error> {
    for op in ops {
        match op {
            Op::Put(key, value) => {
                conn.prepare_cached(
                    "INSERT INTO kv (key, value) VALUES (?1, ?2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )?
                .execute(rusqlite::params![key, value])?;
            }
            Op::Delete(key) => {
                conn.prepare_cached("DELETE FROM kv WHERE key = ?1")?
                    .execute([key])?;
            }
        }
    }
    Ok(())
}

/// Lists the immediate children of `prefix` in one read transaction (one snapshot), walking
/// the key index in order and jumping over each subdirectory's subtree with a new range query
/// instead of reading every descendant.
fn list_children(conn: &mut Connection, prefix: &str) -> Result<Vec<String>, Error> {
    let upper = keys::upper_bound(prefix);
    let tx = conn
        .transaction()
        .map_err(|e| sql_error("begin read", &e))?;
    let mut out = Vec::new();
    let mut from = prefix.to_owned();
    loop {
        let mut stmt = match upper {
            Some(_) => {
                tx.prepare_cached("SELECT key FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key")
            }
            None => tx.prepare_cached("SELECT key FROM kv WHERE key >= ?1 ORDER BY key"),
        }
        .map_err(|e| sql_error("prepare list", &e))?;
        let mut rows = match &upper {
            Some(u) => stmt.query(rusqlite::params![from, u]),
            None => stmt.query([&from]),
        }
        .map_err(|e| sql_error("list", &e))?;
        let mut next = None;
        while let Some(row) = rows.next().map_err(|e| sql_error("list", &e))? {
            let key = match row.get_ref(0).map_err(|e| sql_error("list", &e))? {
                ValueRef::Text(t) => std::str::from_utf8(t)
                    .map_err(|_| Error::Corrupt("sqlite key is not UTF-8".into()))?,
                _ => return Err(Error::Corrupt("sqlite key is not text".into())),
            };
            match keys::child(prefix, key) {
                Some(Child::Leaf(name)) => out.push(name.to_owned()),
                Some(Child::Dir(dir)) => {
                    out.push(dir.to_owned());
                    next = Some(keys::after_subtree(prefix, dir));
                    break;
                }
                None => {}
            }
        }
        match next {
            Some(n) => from = n,
            None => break,
        }
    }
    tx.finish().map_err(|e| sql_error("end read", &e))?;
    Ok(out)
}

fn blob(v: ValueRef<'_>) -> Result<Vec<u8>, Error> {
    match v {
        ValueRef::Blob(b) => Ok(b.to_vec()),
        _ => Err(Error::Corrupt("sqlite value is not a blob".into())),
    }
}

fn open_writer(file: &Path) -> Result<Connection, Error> {
    let conn = Connection::open(file).map_err(|e| sql_error("open", &e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sql_error("set busy timeout", &e))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
        .map_err(|e| sql_error("enable WAL", &e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Unavailable(format!(
            "sqlite refused WAL mode (journal_mode is {mode})"
        )));
    }
    // FULL: fsync the WAL at every commit, so an acknowledged write survives power loss.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| sql_error("set synchronous", &e))?;
    // The background checkpointer copies the WAL back; commits never do.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(|e| sql_error("disable autocheckpoint", &e))?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| sql_error("read schema version", &e))?;
    if version > SCHEMA_VERSION {
        return Err(Error::Unavailable(format!(
            "sqlite schema version {version} is newer than this binary's {SCHEMA_VERSION}"
        )));
    }
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL);
         PRAGMA user_version = {SCHEMA_VERSION};"
    ))
    .map_err(|e| sql_error("create schema", &e))?;
    Ok(conn)
}

/// How often the background checkpointer copies the WAL into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Passive checkpoints until the store is dropped: they never block the writer or readers, and
/// SQLite rewinds the WAL once a checkpoint has caught up.
fn run_checkpointer(conn: &Connection, stop: &mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %sql_error("checkpoint", &e), "sqlite checkpoint failed");
        }
    }
    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
}

fn open_reader(file: &Path) -> Result<Connection, Error> {
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sql_error("open reader", &e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sql_error("set busy timeout", &e))?;
    // Read-write flags (a WAL reader may need to create the shared-memory file), but no
    // statement on this connection may ever write.
    conn.pragma_update(None, "query_only", true)
        .map_err(|e| sql_error("set query_only", &e))?;
    Ok(conn)
}

fn create_private_dir(path: &Path) -> Result<(), Error> {
    if path.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(path)
        .map_err(|e| io_error("create storage directory", &e))
}

/// Creates the empty database file readable by its owner only (an empty file is an empty
/// SQLite database); SQLite gives the WAL and shared-memory files the same mode.
fn create_private_file(file: &Path) -> Result<(), Error> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(file) {
        Ok(_) => Ok(()),
        // Another process created it first: SQLite opens it as usual.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_error("create database file", &e)),
    }
}

/// An error in SQLite's own words: its result code and message, which never contain bound
/// parameters (keys, values). Other rusqlite errors are named by kind only.
fn sql_error(what: &str, e: &rusqlite::Error) -> Error {
    let detail = match e {
        rusqlite::Error::SqliteFailure(code, Some(msg)) => {
            format!("{:?} ({}): {msg}", code.code, code.extended_code)
        }
        rusqlite::Error::SqliteFailure(code, None) => {
            format!("{:?} ({})", code.code, code.extended_code)
        }
        rusqlite::Error::QueryReturnedNoRows => "no rows".to_owned(),
        rusqlite::Error::InvalidColumnType(..) | rusqlite::Error::FromSqlConversionFailure(..) => {
            "unexpected column type".to_owned()
        }
        _ => "internal error".to_owned(),
    };
    Error::Unavailable(format!("sqlite {what}: {detail}"))
}

fn io_error(what: &str, e: &std::io::Error) -> Error {
    Error::Unavailable(format!("sqlite {what}: {}", e.kind()))
}

fn batch_bytes(ops: &[Op]) -> usize {
    ops.iter()
        .map(|op| match op {
            Op::Put(k, v) => k.len() + v.len(),
            Op::Delete(k) => k.len(),
        })
        .sum()
}

/// The schema this code writes; `open` refuses a database from a newer binary.
const SCHEMA_VERSION: i64 = 1;
/// Bounds on one group commit: enough to absorb any realistic burst, small enough that the
/// first writer of a group never waits long for the others' data to be written.
const MAX_GROUP_BATCHES: usize = 1024;
const MAX_GROUP_BYTES: usize = 32 << 20;
/// How long a connection waits on a lock held by another process (a backup, `sqlite3`).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_passes_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Sqlite::open(dir.path()).unwrap());
        crate::conformance::run_all(store).await;
    }

    #[tokio::test]
    async fn data_persists_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/data");
        {
            let store = Sqlite::open(&path).unwrap();
            store.put("a/b", b"one".to_vec()).await.unwrap();
            store.put("a/c/d", vec![0, 255]).await.unwrap();
            store.put("gone", b"x".to_vec()).await.unwrap();
            store.delete("gone").await.unwrap();
        }
        assert!(path.join(DB_FILE).is_file());
        let store = Sqlite::open(&path).unwrap();
        assert_eq!(store.get("a/b").await.unwrap(), Some(b"one".to_vec()));
        assert_eq!(store.get("a/c/d").await.unwrap(), Some(vec![0, 255]));
        assert_eq!(store.get("gone").await.unwrap(), None);
        assert_eq!(store.list("a/").await.unwrap(), vec!["b", "c/"]);
    }

    #[tokio::test]
    async fn uncheckpointed_wal_is_read_on_reopen() {
        // Leak the first store without closing it: its writes sit in the WAL only, as after
        // a crash, and a new store must still read them.
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(dir.path()).unwrap();
        store.put("k", b"v".to_vec()).await.unwrap();
        assert!(dir.path().join("coffer.db-wal").metadata().unwrap().len() > 0);
        std::mem::forget(store);
        let reopened = Sqlite::open(dir.path()).unwrap();
        assert_eq!(reopened.get("k").await.unwrap(), Some(b"v".to_vec()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_puts_share_commits() {
        const TASKS: usize = 64;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Sqlite::open(dir.path()).unwrap());
        let start = Arc::new(tokio::sync::Barrier::new(TASKS));
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..TASKS {
            let (store, start) = (store.clone(), start.clone());
            tasks.spawn(async move {
                start.wait().await;
                store.put(&format!("g/{t}"), vec![t as u8]).await.unwrap();
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        assert_eq!(store.writes(), TASKS as u64);
        assert!(
            store.commits() < TASKS as u64,
            "{} commits for {TASKS} writes: no grouping",
            store.commits()
        );
        assert_eq!(store.list("g/").await.unwrap().len(), TASKS);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_batch_fails_alone_and_the_store_keeps_working() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Sqlite::open(dir.path()).unwrap());
        poison(dir.path(), "ABORT");
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..32 {
            let store = store.clone();
            tasks.spawn(async move {
                let key = if t % 8 == 0 {
                    format!("poison/{t}")
                } else {
                    format!("ok/{t}")
                };
                (key.clone(), store.put(&key, b"SECRET-VALUE".to_vec()).await)
            });
        }
        while let Some(r) = tasks.join_next().await {
            let (key, result) = r.unwrap();
            if key.starts_with("poison/") {
                let Err(Error::Unavailable(msg)) = result else {
                    panic!("{key}: poisoned batch did not fail with Unavailable: {result:?}");
                };
                assert!(!msg.contains("SECRET"), "error leaks the value: {msg}");
                assert!(!msg.contains("poison/"), "error leaks the key: {msg}");
                assert_eq!(store.get(&key).await.unwrap(), None);
            } else {
                result.unwrap();
                assert_eq!(
                    store.get(&key).await.unwrap(),
                    Some(b"SECRET-VALUE".to_vec())
                );
            }
        }
        store.put("after", b"ok".to_vec()).await.unwrap();
        assert_eq!(store.get("after").await.unwrap(), Some(b"ok".to_vec()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_transaction_fails_every_batch_in_it() {
        // RAISE(ROLLBACK) ends the whole transaction, as a full disk or I/O error would: every
        // batch grouped with the poisoned one must fail, and none may be half-written.
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Sqlite::open(dir.path()).unwrap());
        poison(dir.path(), "ROLLBACK");
        let start = Arc::new(tokio::sync::Barrier::new(32));
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..32 {
            let (store, start) = (store.clone(), start.clone());
            tasks.spawn(async move {
                let key = if t == 5 {
                    "poison/x".to_owned()
                } else {
                    format!("ok/{t}")
                };
                start.wait().await;
                let ops = vec![
                    Op::Put(key.clone(), vec![1]),
                    Op::Put(format!("{key}/2"), vec![2]),
                ];
                (key, store.apply(ops).await)
            });
        }
        let mut failed = 0;
        while let Some(r) = tasks.join_next().await {
            let (key, result) = r.unwrap();
            let stored = store.get(&key).await.unwrap().is_some();
            let stored2 = store.get(&format!("{key}/2")).await.unwrap().is_some();
            assert_eq!(stored, stored2, "{key}: batch half-applied");
            match result {
                Ok(()) => assert!(stored, "{key}: acknowledged but not stored"),
                Err(Error::Unavailable(_)) => {
                    failed += 1;
                    assert!(!stored, "{key}: failed but stored");
                }
                Err(e) => panic!("{key}: unexpected error {e}"),
            }
        }
        assert!(failed >= 1);
        store.put("after", b"ok".to_vec()).await.unwrap();
        assert_eq!(store.get("after").await.unwrap(), Some(b"ok".to_vec()));
    }

    #[tokio::test]
    async fn a_dropped_apply_is_still_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(dir.path()).unwrap();
        // Polled once (the batch is queued), then dropped before the acknowledgement.
        let _ = tokio::time::timeout(Duration::ZERO, store.put("dropped", vec![7])).await;
        // The writer is first in, first out: once a later write is acked, the first is in.
        store.put("later", vec![8]).await.unwrap();
        assert_eq!(store.get("dropped").await.unwrap(), Some(vec![7]));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let store = Sqlite::open(&path).unwrap();
        store.put("k", vec![1]).await.unwrap();
        let mode = |p: &Path| p.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o700);
        assert_eq!(mode(&path.join(DB_FILE)), 0o600);
        assert_eq!(mode(&path.join("coffer.db-wal")), 0o600);
    }

    #[tokio::test]
    async fn list_with_a_huge_subtree_and_many_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(dir.path()).unwrap();
        let mut ops: Vec<Op> = (0..5000)
            .map(|i| Op::Put(format!("p/big/{i:05}/x"), vec![]))
            .collect();
        ops.extend((0..100).map(|i| Op::Put(format!("p/leaf{i:03}"), vec![])));
        ops.push(Op::Put("p/zz/a".into(), vec![]));
        store.apply(ops).await.unwrap();
        let listed = store.list("p/").await.unwrap();
        assert_eq!(listed.len(), 102);
        assert_eq!(listed[0], "big/");
        assert_eq!(listed[1], "leaf000");
        assert_eq!(listed[101], "zz/");
        assert_eq!(store.list("p/big/").await.unwrap().len(), 5000);
    }

    #[test]
    fn acknowledged_writes_survive_kill_9() {
        // Runs this test binary again as a child that writes keys and prints each one once
        // its put returned, then SIGKILLs it mid-stream: every printed key must be there.
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sqlite::tests::crash_child",
                "--ignored",
                "--nocapture",
            ])
            .env(CRASH_DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut acked = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            if let Some(key) = line.strip_prefix("ACK ") {
                acked.push(key.to_owned());
                if acked.len() == 300 {
                    child.kill().unwrap();
                    break;
                }
            }
        }
        child.wait().unwrap();
        assert_eq!(acked.len(), 300, "the child stopped early");
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let store = Sqlite::open(dir.path()).unwrap();
            for key in &acked {
                assert_eq!(
                    store.get(key).await.unwrap(),
                    Some(key.as_bytes().to_vec()),
                    "acknowledged {key} lost"
                );
            }
        });
    }

    #[test]
    #[ignore = "the child half of acknowledged_writes_survive_kill_9"]
    fn crash_child() {
        let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
            return;
        };
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let store = Arc::new(Sqlite::open(Path::new(&dir)).unwrap());
            let mut tasks = tokio::task::JoinSet::new();
            for t in 0..8 {
                let store = store.clone();
                tasks.spawn(async move {
                    for i in 0.. {
                        let key = format!("crash/{t}/{i}");
                        store.put(&key, key.as_bytes().to_vec()).await.unwrap();
                        println!("ACK {key}");
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        });
    }

    /// Installs a trigger that makes any insert under `poison/` fail with `RAISE(action)`.
    fn poison(dir: &Path, action: &str) {
        let conn = Connection::open(dir.join(DB_FILE)).unwrap();
        conn.execute_batch(&format!(
            "CREATE TRIGGER poison BEFORE INSERT ON kv WHEN NEW.key LIKE 'poison/%' \
             BEGIN SELECT RAISE({action}, 'poisoned batch'); END;"
        ))
        .unwrap();
    }

    const CRASH_DIR_ENV: &str = "COFFER_STORAGE_CRASH_DIR";
}
