//! Throughput of the image formats: write and read 1,000,000 rows (`id int PRIMARY KEY`,
//! `name` ~12-byte string, `email` ~22-byte string, `score float`), in bytes of image per
//! second, for the binary and the CSV format. `binary/scan` decodes and checks every block and
//! row without inserting into a catalog, so `read − scan` is the cost of building the tables.
//!
//! Run: `cargo bench -p phantom-storage --bench formats -- --warm-up-time 1 --measurement-time 5`.
//!
//! With `PHANTOM_BENCH_CPU=1` it measures the benchmark thread's CPU time (from
//! `/proc/thread-self/schedstat`) instead of wall time, for figures that hold on a machine
//! busy with other work (every benchmark here is single-threaded).
//!
//! With `PHANTOM_BENCH_MEMORY=1` it first measures the memory of reading each image in a fresh
//! child process (this same binary, re-run with `PHANTOM_BENCH_MEMORY_CHILD` set): resident
//! set before reading, its peak (`VmHWM`) while reading, and after (with the catalog still
//! held), read from `/proc/self/status`.

// A benchmark reports on stderr; clippy's test allowances do not cover bench targets.
#![allow(clippy::print_stderr, clippy::unwrap_used)]

use std::hint::black_box;
use std::io::{BufReader, Read};
use std::path::Path;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkGroup, Criterion, Throughput};
use phantom_storage::{
    BinaryFormat, Catalog, Column, ColumnType, CsvFormat, ImageKind, ImageMeta, Schema,
    StorageFormat, Value,
};

const ROWS: i64 = 1_000_000;
const CHILD_ENV: &str = "PHANTOM_BENCH_MEMORY_CHILD";

fn catalog(rows: i64) -> Catalog {
    let mut catalog = Catalog::new();
    let schema = Schema::new(
        "users",
        vec![
            Column::new("id", ColumnType::Int).primary_key(),
            Column::new("name", ColumnType::String),
            Column::new("email", ColumnType::String),
            Column::new("score", ColumnType::Float),
        ],
    )
    .unwrap();
    catalog.create_table("users", schema).unwrap();
    let t = catalog.table_mut("users").unwrap();
    for i in 0..rows {
        t.insert(vec![
            Value::Int(i),
            format!("user_{i:07}").into(),
            format!("user{i:06}@example.com").into(),
            Value::Float(i as f64 * 0.37),
        ])
        .unwrap();
    }
    catalog
}

fn meta() -> ImageMeta {
    ImageMeta {
        database: "bench".into(),
        lsn: 1,
        created: None,
        kind: ImageKind::Snapshot,
    }
}

/// `false` while a format is still a stub (its `write` panics with `unimplemented!`).
fn implemented(format: &dyn StorageFormat) -> bool {
    let tiny = catalog(1);
    let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        format.write(&meta(), &tiny, &mut Vec::new())
    }));
    match probe {
        Ok(result) => result.is_ok(),
        Err(_) => {
            eprintln!("{} format not implemented yet: skipped", format.name());
            false
        }
    }
}

fn bench_format<M: Measurement>(
    group: &mut BenchmarkGroup<'_, M>,
    format: &dyn StorageFormat,
    catalog: &Catalog,
) -> Vec<u8> {
    let mut image = Vec::new();
    format.write(&meta(), catalog, &mut image).unwrap();
    group.throughput(Throughput::Bytes(image.len() as u64));
    eprintln!(
        "{}: {} rows, {} bytes ({:.1} bytes/row)",
        format.name(),
        catalog.row_count(),
        image.len(),
        image.len() as f64 / catalog.row_count() as f64
    );

    let mut out = Vec::with_capacity(image.len());
    group.bench_function(format!("{}/write", format.name()), |b| {
        b.iter(|| {
            out.clear();
            format.write(&meta(), black_box(catalog), &mut out).unwrap();
        })
    });
    group.bench_function(format!("{}/read", format.name()), |b| {
        b.iter_with_large_drop(|| format.read(&mut black_box(image.as_slice())).unwrap())
    });
    image
}

fn benches<M: Measurement>(c: &mut Criterion<M>) {
    let catalog = catalog(ROWS);
    let mut group = c.benchmark_group("formats_1m_rows");
    group.sample_size(10);

    let image = bench_format(&mut group, &BinaryFormat, &catalog);
    group.bench_function("binary/scan", |b| {
        b.iter(|| BinaryFormat.scan(&mut black_box(image.as_slice())).unwrap())
    });
    drop(image);

    if implemented(&CsvFormat) {
        bench_format(&mut group, &CsvFormat, &catalog);
    }
    group.finish();
}

// ----- memory -----

/// `(VmRSS, VmHWM)` of this process in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Child: read (or scan) one image and report resident memory before, at peak and after.
fn child(spec: &str) {
    let (mode, path) = spec.split_once(':').unwrap();
    let (before, _) = rss_kib();
    let file = std::fs::File::open(path).unwrap();
    let mut input: Box<dyn Read> = Box::new(BufReader::with_capacity(64 << 10, file));
    let held = match mode {
        "binary" => Some(BinaryFormat.read(&mut input).unwrap()),
        "csv" => Some(CsvFormat.read(&mut input).unwrap()),
        "binary-scan" => {
            black_box(BinaryFormat.scan(&mut input).unwrap());
            None
        }
        other => panic!("unknown mode {other}"),
    };
    let (after, peak) = rss_kib();
    eprintln!(
        "memory {mode:<12} before {:>7.1} MiB  peak {:>7.1} MiB  after {:>7.1} MiB  \
         peak-before {:>7.1} MiB  peak-after (transient) {:>6.1} MiB",
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        after as f64 / 1024.0,
        peak.saturating_sub(before) as f64 / 1024.0,
        peak.saturating_sub(after) as f64 / 1024.0,
    );
    drop(black_box(held));
}

fn memory_report() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog(ROWS);
    let mut modes = vec![("binary", &BinaryFormat as &dyn StorageFormat)];
    if implemented(&CsvFormat) {
        modes.push(("csv", &CsvFormat));
    }
    for (name, format) in modes {
        let path = dir.path().join(name);
        write_file(&path, format, &catalog);
        let mut runs = vec![name.to_owned()];
        if name == "binary" {
            runs.push("binary-scan".to_owned());
        }
        for mode in runs {
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .env(CHILD_ENV, format!("{mode}:{}", path.display()))
                .status()
                .unwrap();
            assert!(status.success(), "memory child {mode} failed");
        }
    }
}

fn write_file(path: &Path, format: &dyn StorageFormat, catalog: &Catalog) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    format.write(&meta(), catalog, &mut file).unwrap();
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
        return;
    }
    if std::env::var_os("PHANTOM_BENCH_MEMORY").is_some() {
        memory_report();
    }
    if std::env::var_os("PHANTOM_BENCH_CPU").is_some() {
        let mut c = Criterion::default()
            .with_measurement(ThreadCpu)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5))
            .configure_from_args();
        benches(&mut c);
        c.final_summary();
    } else {
        let mut c = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5))
            .configure_from_args();
        benches(&mut c);
        c.final_summary();
    }
}

// ----- CPU time -----

/// CPU time of the calling thread, in nanoseconds, from `/proc/thread-self/schedstat`.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Measures the benchmark thread's CPU time rather than wall time.
struct ThreadCpu;

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = Duration;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> Duration {
        Duration::from_nanos(thread_cpu_ns().saturating_sub(start))
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Milliseconds of CPU, MiB per CPU-second.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, _typical_ns: f64, values: &mut [f64]) -> &'static str {
        values.iter_mut().for_each(|v| *v /= 1e6);
        "ms (cpu)"
    }

    fn scale_throughputs(
        &self,
        _typical_ns: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let (per_iter, unit) = match *throughput {
            Throughput::Bytes(b) | Throughput::BytesDecimal(b) => {
                (b as f64 / (1024.0 * 1024.0), "MiB/s (cpu)")
            }
            Throughput::Bits(b) => (b as f64, "bit/s (cpu)"),
            Throughput::Elements(e) | Throughput::ElementsAndBytes { elements: e, .. } => {
                (e as f64, "elem/s (cpu)")
            }
        };
        values.iter_mut().for_each(|v| *v = per_iter * 1e9 / *v);
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}
