//! The `reportd` command line: `serve` (default), `api`, `worker`, `migrate`.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use reportd::actors::supervisor::Roles;
use reportd::config::Settings;
use reportd::faults::Faults;
use reportd::startup::{Application, connect_store};
use reportd::telemetry;

#[derive(Parser)]
#[command(name = "reportd", version, about = "Asynchronous XLSX/PDF report generation")]
struct Cli {
    /// Settings file; defaults to ./config.toml when it exists.
    #[arg(long, short, global = true, env = "REPORTD_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides http.port (CLI beats environment beats file).
    #[arg(long, global = true)]
    port: Option<u16>,
    /// Overrides data_dir.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// API and workers in one process (the default).
    Serve,
    /// Only the HTTP API.
    Api,
    /// Only the workers (with /health, /ready and /metrics).
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Inspect and replay the dead-letter queue.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Measure render speed and peak memory next to rust_xlsxwriter, Python
    /// XlsxWriter and ReportLab (run from the repository root, release build).
    Bench {
        /// Table sizes, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
        rows: Vec<u64>,
        /// Runs per case; medians are reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Skip the Python peers.
        #[arg(long)]
        no_peers: bool,
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

#[derive(Subcommand)]
enum DlqAction {
    /// Print every dead letter (Kafka: the DLQ topic; embedded: the dead_letters table).
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Re-enqueue dead-lettered jobs with a fresh attempt budget.
    Replay {
        /// The job to replay (repeatable).
        #[arg(long = "id", required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<uuid::Uuid>,
        /// Every job in the dead-letter queue that is still in error.
        #[arg(long)]
        all: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Bench { rows, runs, no_peers, no_e2e, peers_dir, scratch, markdown, case }) = &cli.command {
        return bench(rows, *runs, !no_peers, !no_e2e, peers_dir, scratch.clone(), markdown.as_deref(), case.as_deref());
    }
    let settings = match load(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("reportd: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(&settings.log);
    let result = actix_rt::System::new().block_on(run(cli.command.unwrap_or(Command::Serve), settings));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("reportd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn bench(
    rows: &[u64],
    runs: usize,
    peers: bool,
    e2e: bool,
    peers_dir: &std::path::Path,
    scratch: Option<PathBuf>,
    markdown: Option<&std::path::Path>,
    case: Option<&str>,
) -> ExitCode {
    let scratch = scratch.unwrap_or_else(std::env::temp_dir);
    if let Some(case) = case {
        return match reportd::bench::run_case(case, rows.first().copied().unwrap_or(10_000), &scratch) {
            Ok(m) => {
                println!("{}", serde_json::to_string(&m).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("reportd bench: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let opts = reportd::bench::BenchOptions {
        rows: rows.to_vec(),
        runs: runs.max(1),
        peers,
        e2e,
        scratch,
        peers_dir: peers_dir.to_path_buf(),
    };
    match reportd::bench::run_report(&opts) {
        Ok(report) => {
            let text = format!("Measured on {}.\n\n{report}", reportd::bench::machine());
            println!("{text}");
            if let Some(path) = markdown
                && let Err(e) = std::fs::write(path, &text)
            {
                eprintln!("reportd bench: writing {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("reportd bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dlq(action: DlqAction, settings: &Settings) -> anyhow::Result<()> {
    let store = connect_store(settings).await?;
    match action {
        DlqAction::List { json } => {
            let entries = reportd::dlq::list(settings, &store).await?;
            if json {
                for e in &entries {
                    println!("{}", serde_json::to_string(e)?);
                }
            } else {
                println!("{:<32} {:<36} {:>8}  ERROR", "POSITION", "JOB", "ATTEMPTS");
                for e in &entries {
                    let job = e.job.map(|j| j.to_string()).unwrap_or_else(|| "-".into());
                    println!("{:<32} {:<36} {:>8}  {}", e.position, job, e.attempts, e.error);
                }
                eprintln!("{} dead letter(s)", entries.len());
            }
        }
        DlqAction::Replay { ids, all } => {
            let ids = if all {
                reportd::dlq::list(settings, &store).await?.into_iter().filter_map(|e| e.job).collect()
            } else {
                ids
            };
            for r in reportd::dlq::replay(settings, &store, &ids).await? {
                println!("{} {}", r.job, r.outcome);
            }
        }
    }
    Ok(())
}

fn load(cli: &Cli) -> Result<Settings, reportd::config::ConfigError> {
    let (path, required) = match &cli.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("config.toml"), false),
    };
    let mut figment = figment::Figment::from(figment::providers::Serialized::defaults(Settings::default()))
        .merge(<figment::providers::Toml as figment::providers::Format>::file(&path))
        .merge(figment::providers::Env::prefixed("REPORTD__").split("__"));
    if required && !path.exists() {
        return Settings::load(&path, true);
    }
    if let Some(port) = cli.port {
        figment = figment.merge(("http.port", port));
    }
    if let Some(dir) = &cli.data_dir {
        figment = figment.merge(("data_dir", dir));
    }
    Settings::from_figment(figment)
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    let roles = match command {
        Command::Serve => Roles::SERVE,
        Command::Api => Roles::API,
        Command::Worker => Roles::WORKER,
        Command::Migrate => {
            connect_store(&settings).await?;
            println!("migrations applied");
            return Ok(());
        }
        Command::Dlq { action } => return dlq(action, &settings).await,
        Command::Bench { .. } => return Ok(()),
    };
    let app = Application::build_with(settings, roles, Faults::from_env()).await?;
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    // Everything durable is committed by now. Exit here rather than tear the
    // runtime down: tasks still holding pooled connections would be dropped
    // outside it, and sqlx panics on that.
    std::process::exit(0)
}
