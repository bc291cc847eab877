//! `reportd-bench load`: a load generator anyone can point at a deployment.
//! It submits jobs at a target rate (open loop) or from a fixed number of
//! concurrent clients (closed loop) for a duration, with a mix of formats and
//! sizes; follows every accepted job to its end; and reports submit latency
//! and time-to-done percentiles, throughput and errors. It stops by itself:
//! after the duration it waits for the jobs it started (up to `--drain`).
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};

/// One kind of job in the mix: format, rows, weight.
#[derive(Debug, Clone)]
pub(crate) struct Kind {
    format: String,
    rows: usize,
    weight: u32,
    body: Arc<String>,
}

/// `xlsx:100:3,pdf:1000:1`: format, rows and a relative weight per kind.
pub(crate) fn parse_mix(s: &str) -> anyhow::Result<Vec<Kind>> {
    let mut kinds = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let fields: Vec<&str> = part.split(':').collect();
        let (format, rows, weight) = match fields.as_slice() {
            [f, r] => (*f, r.parse()?, 1),
            [f, r, w] => (*f, r.parse()?, w.parse()?),
            _ => bail!("a mix entry is FORMAT:ROWS[:WEIGHT], got `{part}`"),
        };
        if !matches!(format, "xlsx" | "pdf") {
            bail!("format must be xlsx or pdf, got `{format}`");
        }
        kinds.push(Kind { format: format.into(), rows, weight, body: Arc::new(body(format, rows)) });
    }
    if kinds.is_empty() || kinds.iter().all(|k| k.weight == 0) {
        bail!("the mix is empty");
    }
    Ok(kinds)
}

/// The same table as `shared/bench/throughput.py`: four typed columns.
fn body(format: &str, rows: usize) -> String {
    let columns = json!([
        {"name": "Região", "type": "text"},
        {"name": "Valor", "type": "number", "format": "#,##0.00"},
        {"name": "Qtd", "type": "integer"},
        {"name": "Data", "type": "date"},
    ]);
    let rows: Vec<Value> =
        (0..rows).map(|i| json!([format!("R{i} ção"), i as f64 * 1.5, i, format!("2026-03-{:02}", 1 + i % 28)])).collect();
    json!({"format": format, "title": "load", "columns": columns, "rows": rows}).to_string()
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Pace {
    /// Jobs per second, whatever the latency (up to `max_in_flight` submits at once).
    Rate(f64),
    /// This many clients, each submitting as soon as its previous submit returned.
    Concurrency(usize),
}

pub(crate) struct Load {
    pub(crate) urls: Vec<String>,
    pub(crate) key: Option<String>,
    pub(crate) pace: Pace,
    pub(crate) duration: Duration,
    pub(crate) drain: Duration,
    pub(crate) kinds: Vec<Kind>,
    pub(crate) pollers: usize,
}

#[derive(Default)]
struct Tally {
    submit_ms: Vec<f64>,
    /// Accepted jobs not yet seen finished: id → (base URL, when submitted).
    pending: HashMap<String, (usize, Instant)>,
    done_ms: Vec<f64>,
    /// Server-side: finished_at − created_at.
    service_ms: Vec<f64>,
    done: u64,
    failed: u64,
    errors: BTreeMap<String, u64>,
    accepted: u64,
    last_finish: Option<Instant>,
}

#[derive(Serialize)]
pub(crate) struct Report {
    pace: String,
    duration_s: f64,
    mix: String,
    accepted: u64,
    done: u64,
    failed: u64,
    unfinished: usize,
    submit_errors: BTreeMap<String, u64>,
    submitted_per_s: f64,
    done_per_s: f64,
    submit_ms: Percentiles,
    time_to_done_ms: Percentiles,
    server_time_to_done_ms: Percentiles,
}

#[derive(Serialize)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

fn percentiles(v: &mut [f64]) -> Percentiles {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| if v.is_empty() { 0.0 } else { v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1] };
    Percentiles { p50: at(0.50), p90: at(0.90), p99: at(0.99), max: at(1.0) }
}

pub(crate) async fn run(load: Load) -> anyhow::Result<Report> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()
        .context("the HTTP client")?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let load = Arc::new(load);
    let started = Instant::now();
    let submit_until = started + load.duration;

    let pollers: Vec<_> = (0..load.pollers.max(1))
        .map(|i| tokio::spawn(poll(client.clone(), load.clone(), tally.clone(), i)))
        .collect();
    match load.pace {
        Pace::Concurrency(n) => {
            let clients: Vec<_> = (0..n.max(1))
                .map(|i| {
                    let (client, load, tally) = (client.clone(), load.clone(), tally.clone());
                    tokio::spawn(async move {
                        let mut k = i;
                        while Instant::now() < submit_until {
                            submit(&client, &load, &tally, k).await;
                            k += n.max(1);
                        }
                    })
                })
                .collect();
            for c in clients {
                let _ = c.await;
            }
        }
        Pace::Rate(rate) => {
            let every = Duration::from_secs_f64(1.0 / rate.max(0.001));
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let slots = Arc::new(tokio::sync::Semaphore::new(1024));
            let mut k = 0usize;
            let mut tasks = Vec::new();
            while Instant::now() < submit_until {
                ticker.tick().await;
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tally.lock().map(|mut t| *t.errors.entry("client_overloaded".into()).or_default() += 1).ok();
                    continue;
                };
                let (client, load, tally) = (client.clone(), load.clone(), tally.clone());
                tasks.push(tokio::spawn(async move {
                    submit(&client, &load, &tally, k).await;
                    drop(permit);
                }));
                k += 1;
            }
            for t in tasks {
                let _ = t.await;
            }
        }
    }
    let submitting = started.elapsed();
    // Follow the accepted jobs to their end, up to the drain limit.
    let drain_until = Instant::now() + load.drain;
    while Instant::now() < drain_until && !tally.lock().map(|t| t.pending.is_empty()).unwrap_or(true) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    for p in pollers {
        p.abort();
    }
    let mut t = tally.lock().map_err(|_| anyhow::anyhow!("tally poisoned"))?;
    let finished = t.done + t.failed;
    // Jobs finished over the time from the start to the last one seen finished.
    let busy = t.last_finish.map(|at| at - started).unwrap_or(elapsed).as_secs_f64();
    Ok(Report {
        pace: match load.pace {
            Pace::Rate(r) => format!("{r} jobs/s"),
            Pace::Concurrency(c) => format!("{c} clients"),
        },
        duration_s: load.duration.as_secs_f64(),
        mix: load.kinds.iter().map(|k| format!("{}:{}:{}", k.format, k.rows, k.weight)).collect::<Vec<_>>().join(","),
        accepted: t.accepted,
        done: t.done,
        failed: t.failed,
        unfinished: t.pending.len(),
        submit_errors: t.errors.clone(),
        submitted_per_s: t.accepted as f64 / submitting.as_secs_f64(),
        done_per_s: if finished == 0 { 0.0 } else { finished as f64 / busy },
        submit_ms: percentiles(&mut t.submit_ms),
        time_to_done_ms: percentiles(&mut t.done_ms),
        server_time_to_done_ms: percentiles(&mut t.service_ms),
    })
}

fn pick(kinds: &[Kind], k: usize) -> &Kind {
    let total: u32 = kinds.iter().map(|k| k.weight).sum();
    let mut at = (k as u64 * 2_654_435_761 % total as u64) as u32; // spread evenly, deterministically
    for kind in kinds {
        if at < kind.weight {
            return kind;
        }
        at -= kind.weight;
    }
    &kinds[0]
}

fn authorized(req: reqwest::RequestBuilder, key: &Option<String>) -> reqwest::RequestBuilder {
    match key {
        Some(k) => req.bearer_auth(k),
        None => req,
    }
}

async fn submit(client: &reqwest::Client, load: &Load, tally: &Mutex<Tally>, k: usize) {
    let kind = pick(&load.kinds, k);
    let url = k % load.urls.len();
    let request = client
        .post(format!("{}/generate", load.urls[url]))
        .header("content-type", "application/json")
        .body(kind.body.as_str().to_owned());
    let t0 = Instant::now();
    let outcome = authorized(request, &load.key).send().await;
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    let id = match outcome {
        Ok(r) if r.status() == 202 => r.json::<Value>().await.ok().and_then(|v| v["id"].as_str().map(str::to_owned)),
        Ok(r) => {
            let code = r.status().as_u16().to_string();
            tally.lock().map(|mut t| *t.errors.entry(code).or_default() += 1).ok();
            return;
        }
        Err(e) => {
            let what = if e.is_timeout() { "timeout" } else { "connection" };
            tally.lock().map(|mut t| *t.errors.entry(what.into()).or_default() += 1).ok();
            return;
        }
    };
    if let (Some(id), Ok(mut t)) = (id, tally.lock()) {
        t.submit_ms.push(ms);
        t.accepted += 1;
        t.pending.insert(id, (url, t0));
    }
}

/// Polls this poller's share of the pending jobs (by id hash) until aborted.
async fn poll(client: reqwest::Client, load: Arc<Load>, tally: Arc<Mutex<Tally>>, me: usize) {
    loop {
        let mine: Vec<(String, usize, Instant)> = match tally.lock() {
            Ok(t) => t
                .pending
                .iter()
                .filter(|(id, _)| id.bytes().map(usize::from).sum::<usize>() % load.pollers.max(1) == me)
                .map(|(id, (u, t0))| (id.clone(), *u, *t0))
                .collect(),
            Err(_) => return,
        };
        if mine.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        for (id, url, t0) in mine {
            let request = client.get(format!("{}/status/{id}", load.urls[url]));
            let Ok(r) = authorized(request, &load.key).send().await else { continue };
            let Ok(v) = r.json::<Value>().await else { continue };
            let status = v["status"].as_str().unwrap_or_default();
            if status != "done" && status != "error" {
                continue;
            }
            let seen = t0.elapsed().as_secs_f64() * 1000.0;
            let server = match (v["created_at"].as_str(), v["finished_at"].as_str()) {
                (Some(c), Some(f)) => match (c.parse::<chrono::DateTime<chrono::Utc>>(), f.parse::<chrono::DateTime<chrono::Utc>>()) {
                    (Ok(c), Ok(f)) => Some((f - c).num_microseconds().unwrap_or(0) as f64 / 1000.0),
                    _ => None,
                },
                _ => None,
            };
            if let Ok(mut t) = tally.lock() {
                t.pending.remove(&id);
                t.done_ms.push(seen);
                t.last_finish = Some(Instant::now());
                if let Some(s) = server {
                    t.service_ms.push(s);
                }
                if status == "done" { t.done += 1 } else { t.failed += 1 }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Report {
    pub(crate) fn print(&self) {
        println!("load: {} for {:.0} s, mix {}", self.pace, self.duration_s, self.mix);
        println!(
            "jobs: {} accepted ({:.1}/s), {} done, {} failed, {} unfinished; done {:.1}/s",
            self.accepted, self.submitted_per_s, self.done, self.failed, self.unfinished, self.done_per_s
        );
        if !self.submit_errors.is_empty() {
            println!("submit errors: {:?}", self.submit_errors);
        }
        for (name, p) in [
            ("submit latency", &self.submit_ms),
            ("time to done (client)", &self.time_to_done_ms),
            ("time to done (server)", &self.server_time_to_done_ms),
        ] {
            println!("{name:>22}: p50 {:8.1} ms  p90 {:8.1} ms  p99 {:8.1} ms  max {:8.1} ms", p.p50, p.p90, p.p99, p.max);
        }
    }
}
