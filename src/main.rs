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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    };
    let app = Application::build_with(settings, roles, Faults::from_env()).await?;
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    // Everything durable is committed by now. Exit here rather than tear the
    // runtime down: tasks still holding pooled connections would be dropped
    // outside it, and sqlx panics on that.
    std::process::exit(0)
}
