//! Latency summaries, the stdout table and the JSON document. Latencies are kept raw and
//! sorted once per scenario: runs are at most a few hundred thousand requests, so exact
//! percentiles cost less than a histogram dependency.

use std::time::Duration;

use serde::Serialize;

/// One line of the table: one scenario at one client count.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub clients: usize,
    pub requests: u64,
    /// Units per second of wall time: messages for ingest, requests for reads; for the
    /// `recall` rows (unit `recall`) the mean fraction of evidence turns found.
    pub throughput: f64,
    pub unit: &'static str,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    /// This row's throughput divided by the direct-insert floor's, when one was measured.
    pub vs_floor: Option<f64>,
}

/// What the clients of one scenario collected.
#[derive(Debug, Default)]
pub struct Samples {
    pub latencies: Vec<Duration>,
    pub errors: u64,
    /// The first few error descriptions, so a failing run says why without flooding stdout.
    pub first_errors: Vec<String>,
}

impl Samples {
    pub fn merge(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        for e in other.first_errors {
            if self.first_errors.len() < 3 {
                self.first_errors.push(e);
            }
        }
    }

    pub fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_errors.len() < 3 {
            self.first_errors.push(what);
        }
    }

    /// Summarizes into a row; `units` is what throughput counts (messages or requests).
    pub fn row(
        mut self,
        scenario: &str,
        clients: usize,
        units: u64,
        unit: &'static str,
        wall: Duration,
    ) -> Row {
        for e in &self.first_errors {
            eprintln!("  {scenario} ({clients} clients) error: {e}");
        }
        self.latencies.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let pct = |p: f64| {
            if self.latencies.is_empty() {
                return 0.0;
            }
            let rank = ((p * self.latencies.len() as f64).ceil() as usize).max(1);
            ms(self.latencies[rank.min(self.latencies.len()) - 1])
        };
        Row {
            scenario: scenario.to_string(),
            clients,
            requests: self.latencies.len() as u64,
            throughput: units as f64 / wall.as_secs_f64().max(1e-9),
            unit,
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            max_ms: self.latencies.last().map(|d| ms(*d)).unwrap_or(0.0),
            errors: self.errors,
            vs_floor: None,
        }
    }
}

/// Process-level measurements of the engram the bench started itself.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Resources {
    /// Spawn to the first `/health` 200 on a fresh, empty store (includes migrations).
    pub startup_ms: Option<f64>,
    /// Same, restarting on the store the run just filled.
    pub restart_ms: Option<f64>,
    /// The first 100-message write after start (one-off initialization, e.g. the tokenizer).
    pub first_write_ms: Option<f64>,
    pub rss_idle_mb: Option<f64>,
    pub rss_after_mb: Option<f64>,
    /// Peak RSS over the whole run (VmHWM).
    pub rss_peak_mb: Option<f64>,
}

/// The outcome of the soak beyond per-operation latencies.
#[derive(Debug, Default, Serialize)]
pub struct Soak {
    pub load_s: f64,
    pub clients: usize,
    /// RSS is compared from the first sample after this point of the load.
    pub warm_up_s: f64,
    pub acknowledged_messages: u64,
    pub sessions_deleted: u64,
    pub live_sessions_checked: u64,
    pub messages_checked: u64,
    pub lost_writes: u64,
    pub stray_messages: u64,
    /// Failed requests of the load and the read-back together.
    pub errors: u64,
    pub purges_completed: i64,
    /// Purges still pending or running when the drain stopped waiting.
    pub purges_unfinished: i64,
    pub purges_failed: i64,
    /// From the end of the load until no purge was pending or running.
    pub drain_s: f64,
    pub rss_warm_mb: Option<f64>,
    pub rss_end_mb: Option<f64>,
    pub rss_max_mb: Option<f64>,
    pub rss_growth_pct: Option<f64>,
}

impl Soak {
    /// Why the soak failed; empty when it passed.
    pub fn problems(&self) -> Vec<String> {
        let mut out = vec![];
        if self.errors > 0 {
            out.push(format!("{} errors", self.errors));
        }
        if self.lost_writes > 0 {
            out.push(format!("{} lost acknowledged writes", self.lost_writes));
        }
        if self.stray_messages > 0 {
            out.push(format!("{} stray messages", self.stray_messages));
        }
        let purged = self.purges_completed == self.sessions_deleted as i64;
        if !purged || self.purges_failed > 0 {
            out.push(format!(
                "{} of {} purges completed ({} failed, {} unfinished)",
                self.purges_completed,
                self.sessions_deleted,
                self.purges_failed,
                self.purges_unfinished
            ));
        }
        out
    }

    pub fn print(&self) {
        println!();
        println!("soak: {:.0} s load, {} clients", self.load_s, self.clients);
        let count = |label: &str, v: u64| println!("{label:<32} {v:>10}");
        count("acknowledged messages", self.acknowledged_messages);
        count("sessions deleted", self.sessions_deleted);
        count("live sessions read back", self.live_sessions_checked);
        count("messages read back", self.messages_checked);
        count("lost acknowledged writes", self.lost_writes);
        count("stray messages", self.stray_messages);
        count("errors", self.errors);
        println!(
            "{:<32} {:>10} of {} ({} failed), drained {:.1} s after the load",
            "purges completed",
            self.purges_completed,
            self.sessions_deleted,
            self.purges_failed,
            self.drain_s
        );
        let mb = |label: &str, v: Option<f64>| {
            if let Some(v) = v {
                println!("{label:<32} {v:>10.1} MB");
            }
        };
        let warm = format!("RSS after warm-up ({:.0} s)", self.warm_up_s);
        mb(&warm, self.rss_warm_mb);
        mb("RSS at end of load", self.rss_end_mb);
        mb("RSS max after warm-up", self.rss_max_mb);
        if let Some(g) = self.rss_growth_pct {
            println!("{:<32} {g:>+9.1}%", "RSS growth after warm-up");
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub target: String,
    pub engine: Option<String>,
    pub cores: usize,
    pub command: String,
    pub rows: Vec<Row>,
    pub resources: Option<Resources>,
    pub soak: Option<Soak>,
}

pub fn print(report: &Report) {
    println!();
    println!("target: {}   cores: {}", report.target, report.cores);
    let header = [
        "scenario",
        "clients",
        "requests",
        "throughput",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "vs floor",
    ];
    let cells: Vec<[String; 9]> = report
        .rows
        .iter()
        .map(|r| {
            [
                r.scenario.clone(),
                r.clients.to_string(),
                r.requests.to_string(),
                // Recall rows carry a fraction, not a rate.
                if r.unit == "recall" {
                    format!("{:.3} {}", r.throughput, r.unit)
                } else {
                    format!("{:.0} {}", r.throughput, r.unit)
                },
                format!("{:.2}", r.p50_ms),
                format!("{:.2}", r.p99_ms),
                format!("{:.2}", r.max_ms),
                r.errors.to_string(),
                r.vs_floor.map(|v| format!("{v:.2}x")).unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cols: Vec<&str>| {
        let padded: Vec<String> = cols
            .iter()
            .zip(widths)
            .enumerate()
            // Names read left-aligned, numbers right-aligned.
            .map(|(i, (c, w))| {
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(header.to_vec());
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    println!("|-{}-|", rule.join("-|-"));
    for row in &cells {
        line(row.iter().map(String::as_str).collect());
    }
    if let Some(res) = &report.resources {
        let show = |label: &str, v: Option<f64>, unit: &str| {
            if let Some(v) = v {
                println!("{label:<28} {v:>10.1} {unit}");
            }
        };
        println!();
        show("startup to /health (empty)", res.startup_ms, "ms");
        show("restart to /health (filled)", res.restart_ms, "ms");
        show("first write (100 msgs)", res.first_write_ms, "ms");
        show("RSS idle", res.rss_idle_mb, "MB");
        show("RSS after load", res.rss_after_mb, "MB");
        show("RSS peak (VmHWM)", res.rss_peak_mb, "MB");
    }
    if let Some(soak) = &report.soak {
        soak.print();
    }
}

#[cfg(test)]
mod tests {
    use super::Soak;

    #[test]
    fn a_soak_passes_only_clean_and_drained() {
        let clean = Soak {
            sessions_deleted: 3,
            purges_completed: 3,
            ..Soak::default()
        };
        assert!(clean.problems().is_empty());
        let undrained = Soak {
            purges_completed: 2,
            purges_unfinished: 1,
            ..clean
        };
        assert_eq!(undrained.problems().len(), 1);
        let lossy = Soak {
            errors: 1,
            lost_writes: 2,
            stray_messages: 1,
            sessions_deleted: 3,
            purges_completed: 3,
            ..Soak::default()
        };
        assert_eq!(lossy.problems().len(), 3);
    }
}
