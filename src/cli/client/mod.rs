//! The client side of the binary: `reportd submit|status|download|jobs|retry|delete`
//! talk to a running API over HTTP, as a script or a person at a terminal would.
//!
//! `api` is the HTTP client and the one place an answer becomes an exit code;
//! `input` turns a file into a request body (JSON as is, NDJSON and CSV
//! streamed and gzipped), with `csv` converting CSV to NDJSON; `wait` polls a
//! job with a progress bar; `download` saves a report; `output` prints.
//! Results go to stdout (one JSON document with `--json`), everything else to stderr.
mod api;
mod commands;
mod csv;
mod download;
mod input;
mod output;
mod wait;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Url;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::job::JobStatus;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the job ended in error (submit --wait / -o, download)
  2  usage: bad flags or arguments, an input that cannot be read, an output that cannot be written
  3  refused by the server: any 4xx (the error is printed to stderr as `code: message`)
  4  server unreachable (connection refused, DNS, timeout) or a 5xx

Environment: REPORTD_URL (--url), REPORTD_KEY (--key).";

/// Where the API is and who is asking; shared by every client command.
#[derive(Args, Debug, Clone)]
pub(crate) struct ApiArgs {
    /// The API's base URL.
    #[arg(long, env = "REPORTD_URL", default_value = "http://127.0.0.1:8080", value_parser = parse_base_url)]
    url: Url,
    /// An API key, sent as `Authorization: Bearer KEY`.
    #[arg(long, env = "REPORTD_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Print exactly one JSON document on stdout (the server's answer) and nothing else there.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub(crate) enum ClientCommand {
    /// Submit a report (a .json body, an .ndjson/.jsonl file or a .csv file; - for stdin).
    #[command(after_help = EXIT_CODES)]
    Submit(Box<SubmitArgs>),
    /// Show a job's status.
    #[command(after_help = EXIT_CODES)]
    Status {
        id: Uuid,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Download a finished report (a fresh link from its status).
    #[command(after_help = EXIT_CODES)]
    Download {
        id: Uuid,
        /// Where to write it (a file, a directory, or - for stdout); default:
        /// the name the server gives, else `<id>.<format>`.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List jobs, newest id last.
    #[command(after_help = EXIT_CODES)]
    Jobs {
        /// Only jobs in this state.
        #[arg(long, value_enum)]
        status: Option<StatusFilter>,
        /// Jobs per page (the server's default is 50, at most 500).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=500))]
        limit: Option<u64>,
        /// Start after this job id (a previous page's `next_cursor`).
        #[arg(long)]
        cursor: Option<Uuid>,
        /// Follow `next_cursor` through every page.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Re-enqueue a job in error with a fresh attempt budget.
    #[command(after_help = EXIT_CODES)]
    Retry {
        id: Uuid,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Cancel a job and erase its payload, report and rows.
    #[command(after_help = EXIT_CODES)]
    Delete {
        id: Uuid,
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Args)]
pub(crate) struct SubmitArgs {
    /// The input file; `-` reads stdin (then give --input-format).
    file: PathBuf,
    /// What the input is; by default its extension says (.json, .ndjson/.jsonl, .csv).
    #[arg(long, value_enum)]
    input_format: Option<InputFormat>,
    /// The report's format (default: the file's, else xlsx).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// The report's title (default: the file's, else the file name).
    #[arg(long)]
    title: Option<String>,
    /// CSV only: column types, as `name:type,name:type,…` (text, number,
    /// integer, date, datetime, boolean); columns not named are inferred.
    #[arg(long, value_parser = csv::parse_columns_flag)]
    columns: Option<csv::ColumnSpecs>,
    /// Sent as `Idempotency-Key`: the same key and body give the same job.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Wait until the job is done or failed, with a progress bar on a terminal.
    #[arg(long)]
    wait: bool,
    /// Download the report here when done (a file, a directory, or - for stdout); implies --wait.
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InputFormat {
    Json,
    Ndjson,
    Csv,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Xlsx,
    Pdf,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Format::Xlsx => "xlsx",
            Format::Pdf => "pdf",
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum StatusFilter {
    Queued,
    Processing,
    Done,
    Error,
}

impl StatusFilter {
    fn as_str(self) -> &'static str {
        match self {
            StatusFilter::Queued => JobStatus::Queued.as_str(),
            StatusFilter::Processing => JobStatus::Processing.as_str(),
            StatusFilter::Done => JobStatus::Done.as_str(),
            StatusFilter::Error => JobStatus::Error.as_str(),
        }
    }
}

fn parse_base_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("{raw}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{raw}: expected an http:// or https:// URL"));
    }
    Ok(url)
}

/// Why a command did not succeed, and so its exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The job ended in `error` (exit 1); its status was already printed.
    JobFailed { id: Uuid, error: String },
    /// Bad arguments, or a local file that cannot be read or written (exit 2).
    Usage(String),
    /// A 4xx from the server (exit 3); `body` is its JSON error when it sent one.
    Refused { status: u16, body: Option<Value>, message: String },
    /// No answer (connection, DNS, timeout) or a 5xx (exit 4).
    Unavailable { status: Option<u16>, body: Option<Value>, message: String },
}

impl Failure {
    pub(crate) fn usage(message: impl std::fmt::Display) -> Self {
        Failure::Usage(message.to_string())
    }

    /// No usable answer from the server.
    pub(crate) fn unavailable(message: impl std::fmt::Display) -> Self {
        Failure::Unavailable { status: None, body: None, message: message.to_string() }
    }

    fn exit_code(&self) -> i32 {
        match self {
            Failure::JobFailed { .. } => 1,
            Failure::Usage(_) => 2,
            Failure::Refused { .. } => 3,
            Failure::Unavailable { .. } => 4,
        }
    }

    /// The one JSON document `--json` prints for this failure (none for a
    /// failed job: its final status was the document).
    fn document(&self) -> Option<Value> {
        let made = |code: &str, message: &str| json!({ "error": { "code": code, "message": message } });
        match self {
            Failure::JobFailed { .. } => None,
            Failure::Usage(m) => Some(made("usage", m)),
            Failure::Refused { body: Some(body), .. } | Failure::Unavailable { body: Some(body), .. } => Some(body.clone()),
            Failure::Refused { message, .. } => Some(made("refused", message)),
            Failure::Unavailable { message, .. } => Some(made("unreachable", message)),
        }
    }

    /// What a person reads on stderr.
    fn describe(&self) -> String {
        match self {
            Failure::JobFailed { id, error } => format!("job {id} failed: {error}"),
            Failure::Usage(m) => format!("reportd: {m}"),
            Failure::Refused { message, .. } => message.clone(),
            Failure::Unavailable { status: None, message, .. } => format!("reportd: server unreachable: {message}"),
            Failure::Unavailable { message, .. } => message.clone(),
        }
    }
}

/// Runs a client command and returns its exit code (see `EXIT_CODES`).
pub(crate) async fn run(command: ClientCommand) -> i32 {
    let json = match &command {
        ClientCommand::Submit(a) => a.api.json,
        ClientCommand::Status { api, .. }
        | ClientCommand::Download { api, .. }
        | ClientCommand::Jobs { api, .. }
        | ClientCommand::Retry { api, .. }
        | ClientCommand::Delete { api, .. } => api.json,
    };
    let result = match command {
        ClientCommand::Submit(args) => commands::submit(args).await,
        ClientCommand::Status { id, api } => commands::status(id, &api).await,
        ClientCommand::Download { id, output, api } => commands::download(id, output, &api).await,
        ClientCommand::Jobs { status, limit, cursor, all, api } => commands::jobs(status, limit, cursor, all, &api).await,
        ClientCommand::Retry { id, api } => commands::retry(id, &api).await,
        ClientCommand::Delete { id, api } => commands::delete(id, &api).await,
    };
    let code = match result {
        Ok(()) => 0,
        Err(failure) => {
            eprintln!("{}", failure.describe());
            if json && let Some(doc) = failure.document() {
                output::print_json(&doc);
            }
            failure.exit_code()
        }
    };
    let _ = std::io::stdout().flush();
    code
}
