//! Redis as a peer: a `redis-server` child process per workload, reached over a unix socket in
//! its temp data dir (TCP is off: `--port 0`; nothing listens on any network address), and a
//! minimal RESP2 client.
//!
//! Why a RESP client of our own rather than the `redis` crate: the bench sends five commands
//! (SET, GET, MULTI/EXEC, SCAN, INFO, plus SAVE/BGSAVE), and the crate (even with
//! `default-features = false`) pulls in `url` → `idna` → the ICU crates, `combine` and
//! `socket2`, none of which this workspace builds today — minutes of compile time on the two
//! shared cores for ~150 lines of protocol.
//!
//! Each row is `SET <8-byte big-endian id> <44-byte value>`: exactly the key and value that redb
//! and fjall store ([`Row::key`], [`Row::encode`]), so the comparison is between engines, not
//! encodings (a hash per row, `HSET users:<id> name … email … score …`, would make Redis parse
//! and store three fields and their names per row: more work for Redis, an easier goal for us).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::rows::Row;
use crate::systems::Store;

/// Set to a non-empty value other than `0` to skip Redis even when `redis-server` is on PATH.
pub(crate) const NO_REDIS_ENV: &str = "PHANTOM_BENCH_NO_REDIS";

/// Why Redis is not measured in this run, or `None` when it is.
pub(crate) fn unavailable() -> Option<String> {
    if std::env::var(NO_REDIS_ENV).is_ok_and(|v| !v.is_empty() && v != "0") {
        return Some(format!("disabled by {NO_REDIS_ENV}"));
    }
    if which("redis-server") {
        None
    } else {
        Some("redis-server not installed".to_owned())
    }
}

/// `redis-server --version`, first line (for the report).
pub(crate) fn version() -> String {
    Command::new("redis-server")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

pub(crate) fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
}

// ----- RESP2 -----

/// One RESP2 reply.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Reply {
    /// `+OK`.
    Simple(String),
    /// `-ERR …`.
    Error(String),
    /// `:42`.
    Int(i64),
    /// `$3\r\nfoo` (`None`: `$-1`).
    Bulk(Option<Vec<u8>>),
    /// `*2 …` (`None`: `*-1`).
    Array(Option<Vec<Reply>>),
}

/// Appends one command (an array of bulk strings) to `buf`.
pub(crate) fn encode(buf: &mut Vec<u8>, args: &[&[u8]]) {
    buf.push(b'*');
    buf.extend_from_slice(args.len().to_string().as_bytes());
    buf.extend_from_slice(b"\r\n");
    for a in args {
        buf.push(b'$');
        buf.extend_from_slice(a.len().to_string().as_bytes());
        buf.extend_from_slice(b"\r\n");
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
}

fn line(r: &mut impl BufRead) -> Result<Vec<u8>> {
    let mut l = Vec::new();
    r.read_until(b'\n', &mut l)?;
    if !l.ends_with(b"\r\n") {
        bail!(
            "RESP: connection closed or line without CRLF ({} bytes)",
            l.len()
        );
    }
    l.truncate(l.len() - 2);
    Ok(l)
}

fn int(bytes: &[u8]) -> Result<i64> {
    std::str::from_utf8(bytes)?
        .parse()
        .with_context(|| format!("RESP: bad integer {:?}", String::from_utf8_lossy(bytes)))
}

/// Reads one reply.
pub(crate) fn parse(r: &mut impl BufRead) -> Result<Reply> {
    let l = line(r)?;
    let Some((&tag, rest)) = l.split_first() else {
        bail!("RESP: empty line");
    };
    Ok(match tag {
        b'+' => Reply::Simple(String::from_utf8_lossy(rest).into_owned()),
        b'-' => Reply::Error(String::from_utf8_lossy(rest).into_owned()),
        b':' => Reply::Int(int(rest)?),
        b'$' => match usize::try_from(int(rest)?) {
            Err(_) => Reply::Bulk(None),
            Ok(n) => {
                let mut v = vec![0u8; n + 2];
                r.read_exact(&mut v)?;
                if !v.ends_with(b"\r\n") {
                    bail!("RESP: bulk string of {n} bytes not followed by CRLF");
                }
                v.truncate(n);
                Reply::Bulk(Some(v))
            }
        },
        b'*' => match usize::try_from(int(rest)?) {
            Err(_) => Reply::Array(None),
            Ok(n) => Reply::Array(Some((0..n).map(|_| parse(r)).collect::<Result<_>>()?)),
        },
        other => bail!("RESP: unexpected reply type {:?}", char::from(other)),
    })
}

/// One connection to the server.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to the unix socket `sock`.
    pub(crate) fn connect(sock: &Path) -> Result<Conn> {
        let stream = UnixStream::connect(sock)?;
        // A hung server fails the run instead of hanging it.
        stream.set_read_timeout(Some(Duration::from_secs(300)))?;
        let reader = BufReader::with_capacity(1 << 16, stream.try_clone()?);
        Ok(Conn {
            stream,
            reader,
            buf: Vec::with_capacity(1 << 16),
        })
    }

    /// Queues a command (sent by [`Conn::flush`]).
    pub(crate) fn push(&mut self, args: &[&[u8]]) {
        encode(&mut self.buf, args);
    }

    /// Sends every queued command.
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.stream.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Reads one reply.
    pub(crate) fn read(&mut self) -> Result<Reply> {
        parse(&mut self.reader)
    }

    /// Sends one command and reads its reply.
    pub(crate) fn cmd(&mut self, args: &[&[u8]]) -> Result<Reply> {
        self.push(args);
        self.flush()?;
        self.read()
    }

    /// Like [`Conn::cmd`], failing on an error reply.
    pub(crate) fn ok(&mut self, args: &[&[u8]]) -> Result<Reply> {
        match self.cmd(args)? {
            Reply::Error(e) => bail!(
                "Redis {}: {e}",
                String::from_utf8_lossy(args.first().copied().unwrap_or_default())
            ),
            r => Ok(r),
        }
    }
}

// ----- the server -----

/// How a server is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Persistence {
    /// `appendonly yes`, `appendfsync always` (loads the AOF when there is one).
    Aof,
    /// `appendonly no` (loads `dump.rdb` when there is one).
    RdbOnly,
}

/// A `redis-server` child process; dropping it kills the server (SIGKILL) and reaps it.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    sock: PathBuf,
    dir: PathBuf,
}

impl Server {
    /// Starts `redis-server` with its data in `dir` (no RDB saves; AOF as `persistence` says;
    /// no automatic AOF rewrite, so the AOF stays a log of the commands).
    pub(crate) fn start(dir: &Path, persistence: Persistence) -> Result<Server> {
        let sock = dir.join("redis.sock");
        let aof = match persistence {
            Persistence::Aof => "yes",
            Persistence::RdbOnly => "no",
        };
        let child = Command::new("redis-server")
            .arg("--port")
            .arg("0")
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--protected-mode")
            .arg("yes")
            .arg("--unixsocket")
            .arg(&sock)
            .arg("--unixsocketperm")
            .arg("700")
            .arg("--dir")
            .arg(dir)
            .arg("--dbfilename")
            .arg("dump.rdb")
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg(aof)
            .arg("--appendfsync")
            .arg("always")
            .arg("--auto-aof-rewrite-percentage")
            .arg("0")
            .arg("--aof-use-rdb-preamble")
            .arg("no")
            .arg("--daemonize")
            .arg("no")
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server")?;
        Ok(Server {
            child,
            sock,
            dir: dir.to_path_buf(),
        })
    }

    /// Connects once the server accepts connections and has finished loading its data: the
    /// first `GET key` that answers (anything but `-LOADING`). Returns the connection and that
    /// reply.
    pub(crate) fn wait_ready(&mut self, key: &[u8]) -> Result<(Conn, Reply)> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("redis-server exited ({status}): {}", self.log_tail());
            }
            if start.elapsed() > Duration::from_secs(300) {
                bail!("redis-server not ready after 300 s: {}", self.log_tail());
            }
            let Ok(mut c) = Conn::connect(&self.sock) else {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            };
            loop {
                match c.cmd(&[b"GET", key])? {
                    Reply::Error(e) if e.starts_with("LOADING") => {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Reply::Error(e) => bail!("redis-server: {e}"),
                    r => return Ok((c, r)),
                }
            }
        }
    }

    /// A new connection (the server must be ready).
    pub(crate) fn connect(&self) -> Result<Conn> {
        Conn::connect(&self.sock)
    }

    /// The server's peak resident set size (`VmHWM`), in KiB.
    pub(crate) fn vmhwm_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `field` in an `INFO` reply.
pub(crate) fn info_field(info: &Reply, field: &str) -> Option<String> {
    let Reply::Bulk(Some(text)) = info else {
        return None;
    };
    String::from_utf8_lossy(text).lines().find_map(|l| {
        l.strip_prefix(field)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    })
}

/// `BGSAVE`, then polls `INFO persistence` (every millisecond) until it finished; returns
/// the seconds from sending `BGSAVE` to seeing it done with `rdb_last_bgsave_status:ok`.
pub(crate) fn bgsave(c: &mut Conn) -> Result<f64> {
    let t = Instant::now();
    match c.ok(&[b"BGSAVE"])? {
        Reply::Simple(s) if s.starts_with("Background saving started") => {}
        other => bail!("BGSAVE answered {other:?}"),
    }
    loop {
        let info = c.ok(&[b"INFO", b"persistence"])?;
        if info_field(&info, "rdb_bgsave_in_progress").as_deref() == Some("0") {
            let secs = t.elapsed().as_secs_f64();
            match info_field(&info, "rdb_last_bgsave_status").as_deref() {
                Some("ok") => return Ok(secs),
                other => bail!("BGSAVE failed: rdb_last_bgsave_status {other:?}"),
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ----- the Store -----

/// Redis with `appendonly yes`, `appendfsync always`, one connection per concurrent thread.
#[derive(Debug)]
pub(crate) struct Redis {
    pool: Mutex<Vec<Conn>>,
    server: Server,
}

impl Redis {
    /// Starts a server on `dir` (loading its AOF, if any) and waits until it answers.
    pub(crate) fn open(dir: &Path) -> Result<Redis> {
        let mut server = Server::start(dir, Persistence::Aof)?;
        let (conn, _) = server.wait_ready(&Row::key(0))?;
        Ok(Redis {
            pool: Mutex::new(vec![conn]),
            server,
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let pooled = self.pool.lock().map_err(|_| anyhow!("poisoned"))?.pop();
        let mut c = match pooled {
            Some(c) => c,
            None => self.server.connect()?,
        };
        let out = f(&mut c);
        if out.is_ok() {
            self.pool.lock().map_err(|_| anyhow!("poisoned"))?.push(c);
        }
        out
    }
}

fn expect_ok(r: Reply, what: &str) -> Result<()> {
    match r {
        Reply::Simple(s) if s == "OK" => Ok(()),
        other => bail!("Redis {what} answered {other:?}"),
    }
}

fn redis_id(key: &[u8]) -> Result<i64> {
    let k = <[u8; 8]>::try_from(key).context("Redis key is not 8 bytes")?;
    Ok(i64::from_be_bytes(k))
}

impl Store for Redis {
    fn insert_one(&self, r: &Row) -> Result<()> {
        self.with(|c| expect_ok(c.cmd(&[b"SET", &Row::key(r.id), &r.encode()])?, "SET"))
    }

    fn insert_batch(&self, rows: &[Row]) -> Result<()> {
        self.with(|c| {
            // MULTI, the SETs and EXEC in one write; then MULTI's +OK, a +QUEUED per SET, and
            // EXEC's array (answered after the transaction's fsync).
            c.push(&[b"MULTI"]);
            for r in rows {
                c.push(&[b"SET", &Row::key(r.id), &r.encode()]);
            }
            c.push(&[b"EXEC"]);
            c.flush()?;
            expect_ok(c.read()?, "MULTI")?;
            for _ in rows {
                match c.read()? {
                    Reply::Simple(s) if s == "QUEUED" => {}
                    other => bail!("Redis SET in MULTI answered {other:?}"),
                }
            }
            match c.read()? {
                Reply::Array(Some(rs)) if rs.len() == rows.len() => {
                    rs.into_iter().try_for_each(|r| expect_ok(r, "SET in EXEC"))
                }
                other => bail!("Redis EXEC answered {other:?}"),
            }
        })
    }

    fn get(&self, id: i64) -> Result<Option<Row>> {
        self.with(|c| match c.cmd(&[b"GET", &Row::key(id)])? {
            Reply::Bulk(Some(v)) => Row::decode(id, &v).map(Some),
            Reply::Bulk(None) => Ok(None),
            other => bail!("Redis GET answered {other:?}"),
        })
    }

    fn scan(&self) -> Result<usize> {
        self.with(|c| {
            let mut cursor = b"0".to_vec();
            let mut n = 0;
            loop {
                let (next, keys) = match c.ok(&[b"SCAN", &cursor, b"COUNT", b"1000"])? {
                    Reply::Array(Some(mut parts)) if parts.len() == 2 => {
                        match (parts.pop(), parts.pop()) {
                            (Some(Reply::Array(Some(keys))), Some(Reply::Bulk(Some(next)))) => {
                                (next, keys)
                            }
                            other => bail!("Redis SCAN answered {other:?}"),
                        }
                    }
                    other => bail!("Redis SCAN answered {other:?}"),
                };
                let keys: Vec<Vec<u8>> = keys
                    .into_iter()
                    .map(|k| match k {
                        Reply::Bulk(Some(k)) => Ok(k),
                        other => bail!("Redis SCAN key {other:?}"),
                    })
                    .collect::<Result<_>>()?;
                // The page's values, pipelined.
                for k in &keys {
                    c.push(&[b"GET", k]);
                }
                c.flush()?;
                for k in &keys {
                    match c.read()? {
                        Reply::Bulk(Some(v)) => {
                            Row::decode(redis_id(k)?, &v)?;
                            n += 1;
                        }
                        other => bail!("Redis GET during SCAN answered {other:?}"),
                    }
                }
                if next == b"0" {
                    return Ok(n);
                }
                cursor = next;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_commands_encode_and_replies_parse() {
        let mut buf = Vec::new();
        encode(&mut buf, &[b"SET", b"k", b""]);
        assert_eq!(buf, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
        let wire = b"+OK\r\n-ERR no\r\n:42\r\n$3\r\na\r\n\r\n$-1\r\n*2\r\n$1\r\n0\r\n*1\r\n$2\r\nxy\r\n*-1\r\n";
        let mut r = &wire[..];
        assert_eq!(parse(&mut r).unwrap(), Reply::Simple("OK".into()));
        assert_eq!(parse(&mut r).unwrap(), Reply::Error("ERR no".into()));
        assert_eq!(parse(&mut r).unwrap(), Reply::Int(42));
        assert_eq!(parse(&mut r).unwrap(), Reply::Bulk(Some(b"a\r\n".to_vec())));
        assert_eq!(parse(&mut r).unwrap(), Reply::Bulk(None));
        assert_eq!(
            parse(&mut r).unwrap(),
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"0".to_vec())),
                Reply::Array(Some(vec![Reply::Bulk(Some(b"xy".to_vec()))])),
            ]))
        );
        assert_eq!(parse(&mut r).unwrap(), Reply::Array(None));
        assert!(parse(&mut r).is_err());
        assert!(parse(&mut &b"$5\r\nab\r\n"[..]).is_err());
    }

    #[test]
    fn info_fields_are_found_by_name() {
        let info = Reply::Bulk(Some(
            b"# Persistence\r\nrdb_bgsave_in_progress:0\r\nrdb_last_bgsave_status:ok\r\n".to_vec(),
        ));
        assert_eq!(
            info_field(&info, "rdb_bgsave_in_progress").as_deref(),
            Some("0")
        );
        assert_eq!(
            info_field(&info, "rdb_last_bgsave_status").as_deref(),
            Some("ok")
        );
        assert_eq!(info_field(&info, "rdb_bgsave"), None);
    }

    /// Against a real server when `redis-server` is installed (skipped otherwise).
    #[test]
    fn a_real_server_stores_batches_scans_saves_and_reloads() {
        if unavailable().is_some() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<Row> = (0..2_500).map(Row::new).collect();
        {
            let r = Redis::open(dir.path()).unwrap();
            r.insert_one(&rows[0]).unwrap();
            r.insert_batch(&rows[1..]).unwrap();
            assert_eq!(r.get(7).unwrap(), Some(rows[7].clone()));
            assert_eq!(r.get(99_999).unwrap(), None);
            assert_eq!(r.scan().unwrap(), rows.len());
            let mut c = r.server.connect().unwrap();
            assert!(bgsave(&mut c).unwrap() > 0.0);
        }
        assert!(dir.path().join("dump.rdb").is_file());
        // Reload from the AOF (killed server: appendfsync always kept everything) and the RDB.
        for p in [Persistence::Aof, Persistence::RdbOnly] {
            let mut s = Server::start(dir.path(), p).unwrap();
            let (_, reply) = s.wait_ready(&Row::key(2_499)).unwrap();
            assert_eq!(reply, Reply::Bulk(Some(rows[2_499].encode())), "{p:?}");
            assert!(s.vmhwm_kib().unwrap_or(0) > 0);
        }
    }
}
