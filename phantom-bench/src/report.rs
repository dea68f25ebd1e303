//! Results: every measured series (workload, metric, system → samples), the ratio of
//! PhantomDB to the best peer per metric, the goals, and the outputs (terminal table,
//! `report.md`, `report.json`, `ratios.svg`).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Result, anyhow};
use serde::{Deserialize, Serialize};

use crate::measure::{Machine, median};

/// The system name of the raw device limit (a reference, not a peer).
pub(crate) const RAW: &str = "raw fdatasync";
/// The raw reference that appends to a growing file (what an unpreallocated log does).
pub(crate) const RAW_GROWING: &str = "raw fdatasync, growing file";
/// The system name of Redis.
pub(crate) const REDIS: &str = "Redis";
/// The system under test.
pub(crate) const PHANTOM: &str = "PhantomDB";

/// One measured series.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Series {
    /// `W1` … `W6`.
    pub(crate) workload: String,
    /// What is measured, with its unit (e.g. `commits/s`, `p99 (ms)`).
    pub(crate) metric: String,
    /// The system (or configuration) measured.
    pub(crate) system: String,
    /// `true` when more is better (throughput), `false` for times and sizes.
    pub(crate) higher_is_better: bool,
    /// One value per repetition.
    pub(crate) samples: Vec<f64>,
    /// Why it was not measured, when it was not.
    pub(crate) skipped: Option<String>,
    /// Median of the samples.
    pub(crate) median: Option<f64>,
    /// Smallest sample.
    pub(crate) min: Option<f64>,
    /// Largest sample.
    pub(crate) max: Option<f64>,
}

/// PhantomDB against the best peer on one metric.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Ratio {
    /// Workload id.
    pub(crate) workload: String,
    /// Metric.
    pub(crate) metric: String,
    /// The best peer's name.
    pub(crate) best_peer: String,
    /// PhantomDB's median divided by the best peer's.
    pub(crate) ratio: f64,
    /// The ratio oriented so that > 1 means PhantomDB is better.
    pub(crate) advantage: f64,
}

/// One goal of the issue and where we stand.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Goal {
    /// Workload id.
    pub(crate) workload: String,
    /// The goal as the issue states it.
    pub(crate) goal: String,
    /// The measured ratio or value (None: not measurable in this run).
    pub(crate) value: Option<f64>,
    /// `met`, `missed` or `n/a (...)`.
    pub(crate) status: String,
}

/// Everything one run produced.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Report {
    /// When the run started (UTC, RFC 3339).
    pub(crate) date: String,
    /// The command line.
    pub(crate) command: String,
    /// Machine facts.
    pub(crate) machine: Option<Machine>,
    /// Repetitions per system and workload.
    pub(crate) reps: usize,
    /// Quick mode?
    pub(crate) quick: bool,
    /// Sizes used (name → count).
    pub(crate) sizes: Vec<(String, u64)>,
    /// All series, in measurement order.
    pub(crate) series: Vec<Series>,
    /// Ratios per metric (computed by [`Report::finish`]).
    pub(crate) ratios: Vec<Ratio>,
    /// The goals (computed by [`Report::finish`]).
    pub(crate) goals: Vec<Goal>,
    /// Wall time of the whole run, seconds.
    pub(crate) wall_seconds: f64,
    /// Free-form notes printed under the table.
    pub(crate) notes: Vec<String>,
}

impl Report {
    fn find(&mut self, workload: &str, metric: &str, system: &str) -> Option<&mut Series> {
        self.series
            .iter_mut()
            .find(|s| s.workload == workload && s.metric == metric && s.system == system)
    }

    /// Adds one sample to a series (creating it).
    pub(crate) fn add(
        &mut self,
        workload: &str,
        metric: &str,
        system: &str,
        higher_is_better: bool,
        value: f64,
    ) {
        if let Some(s) = self.find(workload, metric, system) {
            s.samples.push(value);
            return;
        }
        self.series.push(Series {
            workload: workload.to_owned(),
            metric: metric.to_owned(),
            system: system.to_owned(),
            higher_is_better,
            samples: vec![value],
            skipped: None,
            median: None,
            min: None,
            max: None,
        });
    }

    /// Records a series that was not measured, and why.
    pub(crate) fn skip(&mut self, workload: &str, metric: &str, system: &str, why: &str) {
        if self.find(workload, metric, system).is_some() {
            return;
        }
        self.series.push(Series {
            workload: workload.to_owned(),
            metric: metric.to_owned(),
            system: system.to_owned(),
            higher_is_better: true,
            samples: Vec::new(),
            skipped: Some(why.to_owned()),
            median: None,
            min: None,
            max: None,
        });
    }

    fn median_of(&self, workload: &str, metric: &str, system: &str) -> Option<f64> {
        self.series
            .iter()
            .find(|s| s.workload == workload && s.metric == metric && s.system == system)
            .and_then(|s| s.median)
    }

    /// Computes medians, ratios and goals.
    pub(crate) fn finish(&mut self) {
        for s in &mut self.series {
            if !s.samples.is_empty() {
                s.median = Some(median(&s.samples));
                s.min = s.samples.iter().copied().reduce(f64::min);
                s.max = s.samples.iter().copied().reduce(f64::max);
            }
        }
        self.ratios.clear();
        let mut metrics: Vec<(String, String)> = Vec::new();
        for s in &self.series {
            let key = (s.workload.clone(), s.metric.clone());
            if !metrics.contains(&key) {
                metrics.push(key);
            }
        }
        for (w, m) in metrics {
            let in_metric = || {
                self.series
                    .iter()
                    .filter(|s| s.workload == w && s.metric == m)
            };
            let Some(ph) = in_metric().find(|s| s.system == PHANTOM) else {
                continue;
            };
            let (Some(pv), higher) = (ph.median, ph.higher_is_better) else {
                continue;
            };
            let best = in_metric()
                .filter(|s| is_peer(&s.system))
                .filter_map(|s| s.median.map(|v| (s.system.clone(), v)))
                .reduce(|a, b| {
                    let b_better = if higher { b.1 > a.1 } else { b.1 < a.1 };
                    if b_better { b } else { a }
                });
            if let Some((peer, bv)) = best
                && bv > 0.0
                && pv > 0.0
            {
                let ratio = pv / bv;
                self.ratios.push(Ratio {
                    workload: w.clone(),
                    metric: m.clone(),
                    best_peer: peer,
                    ratio,
                    advantage: if higher { ratio } else { 1.0 / ratio },
                });
            }
        }
        self.goals = self.compute_goals();
    }

    fn ratio_to(&self, w: &str, m: &str, peer: &str) -> Option<f64> {
        let p = self.median_of(w, m, PHANTOM)?;
        let q = self.median_of(w, m, peer)?;
        (q > 0.0).then_some(p / q)
    }

    /// Why the Redis series of `w`/`m` was not measured (its skip reason, else not run).
    fn redis_na(&self, w: &str, m: &str) -> String {
        self.series
            .iter()
            .find(|s| s.workload == w && s.metric == m && s.system == REDIS)
            .and_then(|s| s.skipped.clone())
            .unwrap_or_else(|| "workload not run".to_owned())
    }

    fn compute_goals(&self) -> Vec<Goal> {
        let w2_na = self.redis_na("W2", "commits/s");
        let w4_log_na = self.redis_na("W4", "open from log only (s)");
        let rdb = self.ratio_to("W4", "open from snapshot (s)", REDIS);
        let bgsave = self.ratio_to("W5", "snapshot, binary (s)", REDIS);
        let mut goals = Vec::new();
        let mut push = |w: &str, goal: &str, value: Option<f64>, ok: &dyn Fn(f64) -> bool, na| {
            let status = match value {
                Some(v) if ok(v) => "met".to_owned(),
                Some(_) => "missed".to_owned(),
                None => format!("n/a ({na})"),
            };
            goals.push(Goal {
                workload: w.to_owned(),
                goal: goal.to_owned(),
                value,
                status,
            });
        };
        let not_run = "workload not run";
        push(
            "W1",
            "commits/s ≥ 1.3× SQLite (WAL, synchronous=FULL)",
            self.ratio_to("W1", "commits/s", "SQLite"),
            &|v| v >= 1.3,
            not_run,
        );
        push(
            "W1",
            "commits/s ≥ 1.0× fjall (SyncAll)",
            self.ratio_to("W1", "commits/s", "fjall"),
            &|v| v >= 1.0,
            not_run,
        );
        push(
            "W1",
            "commits/s ≥ 0.8× raw 100 B append + fdatasync",
            self.ratio_to("W1", "commits/s", RAW),
            &|v| v >= 0.8,
            not_run,
        );
        push(
            "W2",
            "commits/s (16 writers) ≥ 1.5× Redis appendfsync always",
            self.ratio_to("W2", "commits/s", REDIS),
            &|v| v >= 1.5,
            &w2_na,
        );
        push(
            "W2",
            "commits/s (16 writers) ≥ 5× PhantomDB's W1 (group commit; issue 4)",
            self.median_of("W2", "commits/s", PHANTOM)
                .zip(self.median_of("W1", "commits/s", PHANTOM))
                .map(|(w2, w1)| w2 / w1),
            &|v| v >= 5.0,
            "W1 and W2 not both run",
        );
        push(
            "W3",
            "rows/s ≥ 1.5× SQLite (issue 4)",
            self.ratio_to("W3", "rows/s", "SQLite"),
            &|v| v >= 1.5,
            not_run,
        );
        let best_w3 = ["SQLite", "redb", "fjall"]
            .iter()
            .filter_map(|p| self.median_of("W3", "rows/s", p))
            .reduce(f64::max);
        push(
            "W3",
            "rows/s ≥ 1.5× best of SQLite/redb/fjall",
            self.median_of("W3", "rows/s", PHANTOM)
                .zip(best_w3)
                .map(|(p, b)| p / b),
            &|v| v >= 1.5,
            not_run,
        );
        if rdb.is_some() {
            push(
                "W4",
                "open from snapshot ≤ 0.3× Redis RDB load",
                rdb,
                &|v| v <= 0.3,
                not_run,
            );
        } else {
            push(
                "W4",
                "open from snapshot ≤ 0.3 s (Redis RDB load not available: absolute bound)",
                self.median_of("W4", "open from snapshot (s)", PHANTOM),
                &|v| v <= 0.3,
                not_run,
            );
        }
        push(
            "W4",
            "open from log only ≤ 0.5× Redis AOF load",
            self.ratio_to("W4", "open from log only (s)", REDIS),
            &|v| v <= 0.5,
            &w4_log_na,
        );
        if bgsave.is_some() {
            push(
                "W5",
                "binary snapshot ≤ 0.5× Redis BGSAVE",
                bgsave,
                &|v| v <= 0.5,
                not_run,
            );
        } else {
            push(
                "W5",
                "binary snapshot ≤ 0.5× SQLite VACUUM INTO (Redis BGSAVE not available)",
                self.ratio_to("W5", "snapshot, binary (s)", "SQLite"),
                &|v| v <= 0.5,
                not_run,
            );
        }
        let p99_ratio = self
            .median_of("W5", "writer p99 during snapshot (ms)", PHANTOM)
            .zip(self.median_of("W5", "writer p99 idle (ms)", PHANTOM))
            .map(|(d, i)| d / i);
        push(
            "W5",
            "writer p99 during a snapshot ≤ 2× idle p99",
            p99_ratio,
            &|v| v <= 2.0,
            not_run,
        );
        push(
            "W6",
            "point lookups ≥ 1.0× redb",
            self.ratio_to("W6", "point lookups/s", "redb"),
            &|v| v >= 1.0,
            not_run,
        );
        push(
            "W6",
            "full scan ≥ 1.0× SQLite",
            self.ratio_to("W6", "full scan rows/s", "SQLite"),
            &|v| v >= 1.0,
            not_run,
        );
        goals
    }

    /// The terminal / markdown table of every series, then ratios and goals.
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| workload | metric | system | median | min – max | PhantomDB / best peer |"
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---|");
        for s in &self.series {
            let ratio = if s.system == PHANTOM {
                self.ratios
                    .iter()
                    .find(|r| r.workload == s.workload && r.metric == s.metric)
                    .map(|r| {
                        format!(
                            "{:.2}× {} ({})",
                            r.ratio,
                            r.best_peer,
                            if r.advantage >= 1.0 {
                                "better"
                            } else {
                                "worse"
                            }
                        )
                    })
                    .unwrap_or_default()
            } else {
                String::new()
            };
            match (&s.skipped, s.median, s.min, s.max) {
                (Some(why), ..) => {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | skipped ({why}) | | |",
                        s.workload, s.metric, s.system
                    );
                }
                (None, Some(m), Some(lo), Some(hi)) => {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} | {} – {} | {} |",
                        s.workload,
                        s.metric,
                        s.system,
                        num(m),
                        num(lo),
                        num(hi),
                        ratio
                    );
                }
                _ => {}
            }
        }
        out
    }

    /// The goals table.
    pub(crate) fn goals_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| workload | goal | measured | status |");
        let _ = writeln!(out, "|---|---|---:|---|");
        for g in &self.goals {
            let v = g.value.map(num).unwrap_or_else(|| "–".to_owned());
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                g.workload, g.goal, v, g.status
            );
        }
        out
    }

    /// The whole markdown report.
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# phantom-bench report\n");
        let _ = writeln!(out, "- date: {}", self.date);
        let _ = writeln!(out, "- command: `{}`", self.command);
        if let Some(m) = &self.machine {
            let _ = writeln!(
                out,
                "- machine: {} CPUs ({}), {:.1} GiB RAM, kernel {}, data in {}",
                m.cpus, m.cpu_model, m.mem_gib, m.kernel, m.temp_dir
            );
        }
        let _ = writeln!(
            out,
            "- repetitions: {} per system (alternating), medians with min – max; quick: {}",
            self.reps, self.quick
        );
        let sizes: Vec<String> = self.sizes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "- sizes: {}", sizes.join(", "));
        let _ = writeln!(out, "- wall time: {:.0} s\n", self.wall_seconds);
        let _ = writeln!(out, "{}", self.table());
        let _ = writeln!(out, "## Goals (issues 4 and 8)\n");
        let _ = writeln!(out, "{}", self.goals_table());
        if !self.notes.is_empty() {
            let _ = writeln!(out, "## Notes\n");
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        out
    }

    /// Writes `report.md`, `report.json` and `ratios.svg` into `dir`, and the JSON also to
    /// `json` when given.
    pub(crate) fn write(&self, dir: &Path, json: Option<&Path>) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("report.md"), self.markdown())?;
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(dir.join("report.json"), &text)?;
        if let Some(p) = json {
            std::fs::write(p, &text)?;
        }
        self.svg(&dir.join("ratios.svg"))
    }

    /// A bar chart of every ratio, oriented so that > 1 means PhantomDB is better.
    fn svg(&self, path: &Path) -> Result<()> {
        use plotters::prelude::*;
        let bars: Vec<(String, f64)> = self
            .ratios
            .iter()
            // W4's peers open lazily (milliseconds) while PhantomDB loads every row: that
            // ratio is in the table, but would flatten every other bar on the chart.
            .filter(|r| r.workload != "W4")
            .map(|r| {
                (
                    format!("{} {} vs {}", r.workload, r.metric, r.best_peer),
                    r.advantage,
                )
            })
            .collect();
        let n = bars.len().max(1);
        let height = 120 + 28 * u32::try_from(n).unwrap_or(40);
        let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
        root.fill(&WHITE).map_err(|e| err(&e))?;
        // Log scale, bars from 1 (parity) to the advantage: right is better, left is worse.
        let lo = bars.iter().map(|b| b.1).fold(0.5_f64, f64::min) / 1.5;
        let hi = bars.iter().map(|b| b.1).fold(2.0_f64, f64::max) * 1.5;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "PhantomDB vs best peer: advantage (> 1 better; times inverted), log scale",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(380)
            .build_cartesian_2d((lo..hi).log_scale(), (0..n).into_segmented())
            .map_err(|e| err(&e))?;
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(WHITE)
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_desc("advantage (×), log scale")
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let color = if *v >= 1.0 {
                    GREEN.mix(0.7)
                } else {
                    RED.mix(0.7)
                };
                Rectangle::new(
                    [
                        (1.0, SegmentValue::Exact(i)),
                        (*v, SegmentValue::Exact(i + 1)),
                    ],
                    color.filled(),
                )
            }))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(LineSeries::new(
                vec![(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Last)],
                BLACK.stroke_width(2),
            ))
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
        Ok(())
    }
}

/// Peers are the other systems; PhantomDB's variants and the raw device references are not.
fn is_peer(system: &str) -> bool {
    !system.starts_with(PHANTOM) && !system.starts_with("raw")
}

/// A number with sensible precision for the table.
pub(crate) fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}
