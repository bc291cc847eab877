//! `reportd-bench`: measurements of reportd that anyone can run, kept out of
//! the service binary. `render` compares the renderers with the raw library
//! and the Python peers (speed and peak memory, medians of interleaved runs);
//! `load` drives a running deployment and reports latencies and throughput.
mod load;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "reportd-bench", about = "Benchmarks for reportd")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render speed and peak memory next to rust_xlsxwriter, Python XlsxWriter
    /// and ReportLab (run from the repository root, release build).
    Render {
        /// Table sizes, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
        rows: Vec<u64>,
        /// Runs per case; medians are reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Skip the Python peers.
        #[arg(long)]
        no_peers: bool,
        /// Install the Python peers' packages from PyPI when they are missing.
        #[arg(long)]
        install_peers: bool,
        /// Skip the end-to-end jobs through the API.
        #[arg(long)]
        no_e2e: bool,
        /// Where the peer scripts are.
        #[arg(long, default_value = "bench/peers")]
        peers_dir: PathBuf,
        /// Scratch directory for payloads and outputs.
        #[arg(long)]
        scratch: Option<PathBuf>,
        /// Also write the report to this Markdown file.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Run one case in this process and print its measurement (used by the bench itself).
        #[arg(long, hide = true)]
        case: Option<String>,
    },
    /// Load a running deployment: submit jobs at a rate or concurrency for a
    /// while, follow each to its end, report latencies, throughput and errors.
    Load {
        /// The API's base URL; several spread the submissions over them.
        #[arg(long = "url", required = true)]
        urls: Vec<String>,
        /// An API key (or REPORTD_KEY).
        #[arg(long, env = "REPORTD_KEY", hide_env_values = true)]
        key: Option<String>,
        /// Target submissions per second (open loop)…
        #[arg(long, conflicts_with = "concurrency")]
        rate: Option<f64>,
        /// …or this many clients submitting back to back (closed loop).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// How long to submit.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
        /// Then wait at most this long for the accepted jobs to finish.
        #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
        drain: std::time::Duration,
        /// FORMAT:ROWS[:WEIGHT],… (e.g. xlsx:100:3,pdf:100:1,xlsx:10000:1)
        #[arg(long, default_value = "xlsx:100:1,pdf:100:1")]
        mix: String,
        /// Concurrent status pollers.
        #[arg(long, default_value_t = 4)]
        pollers: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn load(cmd: Command) -> ExitCode {
    let Command::Load { urls, key, rate, concurrency, duration, drain, mix, pollers, json } = cmd else {
        return ExitCode::FAILURE;
    };
    let kinds = match load::parse_mix(&mix) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("reportd-bench: --mix: {e:#}");
            return ExitCode::from(2);
        }
    };
    let pace = match rate {
        Some(r) => load::Pace::Rate(r),
        None => load::Pace::Concurrency(concurrency),
    };
    let urls = urls.into_iter().map(|u| u.trim_end_matches('/').to_string()).collect();
    let spec = load::Load { urls, key, pace, duration, drain, kinds, pollers };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("reportd-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(load::run(spec)) {
        Ok(report) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                report.print();
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("reportd-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let command = Cli::parse().command;
    if matches!(command, Command::Load { .. }) {
        return load(command);
    }
    let Command::Render { rows, runs, no_peers, install_peers, no_e2e, peers_dir, scratch, markdown, case } = command else {
        return ExitCode::FAILURE;
    };
    let scratch = scratch.unwrap_or_else(std::env::temp_dir);
    if let Some(case) = case {
        return match render::run_case(&case, rows.first().copied().unwrap_or(10_000), &scratch) {
            Ok(m) => {
                println!("{}", serde_json::to_string(&m).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("reportd-bench: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let opts = render::BenchOptions { rows, runs: runs.max(1), peers: !no_peers, install_peers, e2e: !no_e2e, scratch, peers_dir };
    match render::run_report(&opts) {
        Ok(report) => {
            let text = format!("Measured on {}.\n\n{report}", render::machine());
            println!("{text}");
            if let Some(path) = markdown
                && let Err(e) = std::fs::write(&path, &text)
            {
                eprintln!("reportd-bench: writing {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("reportd-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
