//! The `reportd` command line: `serve` (the default), `api`, `worker`,
//! `migrate`, `dlq`, `keys` and `config show`. Settings are loaded once, by
//! `Settings::load_with`.
mod client;
mod dlq;
mod keys;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::actors::supervisor::Roles;
use crate::config::{Overrides, Settings};
use crate::faults::Faults;
use crate::startup::{Application, connect_store};
use crate::telemetry;

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
        action: dlq::DlqAction,
    },
    /// Create, list and revoke API keys.
    Keys {
        #[command(subcommand)]
        action: keys::KeysAction,
    },
    /// The settings in effect.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    // The client of a running API: submit, status, download, jobs, retry, delete.
    #[command(flatten)]
    Client(client::ClientCommand),
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Print the effective settings (file, environment and flags merged) as
    /// TOML, with secrets masked.
    Show,
}

pub fn main() -> ExitCode {
    crate::startup::install_tls_provider();
    let cli = Cli::parse();
    // The client talks to a server over HTTP: the service's settings (and a
    // broken config.toml in the current directory) are none of its business.
    if let Some(Command::Client(command)) = cli.command {
        let code = actix_rt::System::new().block_on(client::run(command));
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let overrides = Overrides { file: cli.config, port: cli.port, data_dir: cli.data_dir };
    let settings = match Settings::load_with(&overrides) {
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
        Command::Dlq { action } => return dlq::run(action, &settings).await,
        Command::Keys { action } => return keys::run(action, &settings).await,
        Command::Config { action: ConfigAction::Show } => {
            print!("{}", settings.shown());
            return Ok(());
        }
        Command::Client(command) => std::process::exit(client::run(command).await),
    };
    let app = Application::build_with(settings, roles, Faults::from_env()).await?;
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    // Everything durable is committed by now. Exit here rather than tear the
    // runtime down: tasks still holding pooled connections would be dropped
    // outside it, and sqlx panics on that.
    std::process::exit(0)
}
