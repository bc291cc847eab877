//! `reportd-bench`: measurements of reportd that anyone can run, kept out of
//! the service binary. `render` compares the renderers with the raw library
//! and the Python peers (speed and peak memory, medians of interleaved runs).
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
}

fn main() -> ExitCode {
    let Command::Render { rows, runs, no_peers, install_peers, no_e2e, peers_dir, scratch, markdown, case } = Cli::parse().command;
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
