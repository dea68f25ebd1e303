//! Write-ahead log benchmarks: durable single-record commits with 1 and 16 writer threads
//! (group commit), batches of 1000 rows, and the record codec/CRC alone.
//!
//! Commits per second for N writers = N × iterations / time; the 16-writer group reports the
//! time of one round in which each of the 16 threads commits once.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use phantom_storage::{Mutation, StdFs, Value};
use phantom_wal::{LogEntry, LogSink, Wal, WalOptions};

fn row_batch(rows: u64) -> LogEntry {
    LogEntry::Batch(vec![Mutation::Insert {
        table: "bench".into(),
        rows: (0..rows)
            .map(|i| {
                (
                    i,
                    vec![
                        Value::Int(i as i64),
                        Value::from(format!("user {i}")),
                        Value::Float(i as f64 * 0.5),
                    ]
                    .into(),
                )
            })
            .collect(),
    }])
}

/// A directory on the real disk (not tmpfs) so fsync costs what it costs.
fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var_os("PHANTOM_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| ".".into()));
    tempfile::tempdir_in(base).unwrap_or_else(|_| tempfile::tempdir().expect("tempdir"))
}

fn open(dir: &std::path::Path) -> Wal {
    Wal::open(Arc::new(StdFs), dir, "bench", WalOptions::default())
        .expect("open")
        .0
}

/// Runs `writers` threads, each committing `per_writer` single-row records; returns the time.
fn concurrent_commits(wal: &Arc<Wal>, writers: usize, per_writer: u64) -> Duration {
    let barrier = Arc::new(Barrier::new(writers + 1));
    let entry = row_batch(1);
    let handles: Vec<_> = (0..writers)
        .map(|_| {
            let (wal, barrier, entry) = (Arc::clone(wal), Arc::clone(&barrier), entry.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..per_writer {
                    let lsn = wal.append(&entry).expect("append");
                    wal.commit(lsn).expect("commit");
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().expect("writer");
    }
    start.elapsed()
}

// A benchmark reports on the terminal; the fsync sharing is part of the result.
#[allow(clippy::print_stderr)]
fn durable_commits(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_commit");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    for writers in [1usize, 16] {
        let dir = bench_dir();
        let wal = Arc::new(open(dir.path()));
        group.throughput(Throughput::Elements(writers as u64));
        group.bench_function(format!("{writers}_writers"), |b| {
            b.iter_custom(|iters| concurrent_commits(&wal, writers, iters));
        });
        let stats = wal.stats();
        eprintln!(
            "{writers} writers: {} commits, {} fsyncs ({:.1} commits per fsync)",
            stats.appended,
            stats.syncs,
            stats.appended as f64 / stats.syncs.max(1) as f64
        );
    }
    group.finish();
}

fn batches(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_1000_rows");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1000));
    let dir = bench_dir();
    let wal = open(dir.path());
    let entry = row_batch(1000);
    group.bench_function("append_commit", |b| {
        b.iter(|| {
            let lsn = wal.append(&entry).expect("append");
            wal.commit(lsn).expect("commit");
        });
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    let entry = row_batch(100);
    let payload = postcard::to_allocvec(&entry).expect("encode");
    group.throughput(Throughput::Bytes(payload.len() as u64));
    group.bench_function("postcard_encode_100_rows", |b| {
        b.iter(|| postcard::to_allocvec(std::hint::black_box(&entry)).expect("encode"));
    });
    group.bench_function("crc32c_100_rows", |b| {
        b.iter(|| crc32c::crc32c(std::hint::black_box(&payload)));
    });
    group.bench_function("postcard_decode_100_rows", |b| {
        b.iter(|| {
            postcard::from_bytes::<LogEntry>(std::hint::black_box(&payload)).expect("decode")
        });
    });
    // Append without commit: encode + checksum + buffer (no I/O on the path).
    let dir = bench_dir();
    let wal = Wal::open(
        Arc::new(StdFs),
        dir.path(),
        "codec",
        WalOptions {
            sync_mode: phantom_wal::SyncMode::Never,
            ..WalOptions::default()
        },
    )
    .expect("open")
    .0;
    let small = row_batch(1);
    group.throughput(Throughput::Elements(1));
    group.bench_function("append_buffered_1_row", |b| {
        b.iter(|| wal.append(std::hint::black_box(&small)).expect("append"));
    });
    group.finish();
}

criterion_group!(benches, durable_commits, batches, codec);
criterion_main!(benches);
