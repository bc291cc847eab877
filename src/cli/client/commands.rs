//! One function per client command. Each prints its result on stdout (the
//! `--json` document, or a human line or table) and returns the failure that
//! decides the exit code; `mod.rs` prints failures.
use std::path::PathBuf;

use reqwest::Method;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use uuid::Uuid;

use super::api::Api;
use super::input::{self, Fields, Source};
use super::output::{print_json, status_lines, table_header, table_row};
use super::{ApiArgs, Failure, InputFormat, StatusFilter, SubmitArgs, download, wait};

/// Runs blocking file work off the runtime; a panic there stays a panic.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// A refusal decided here, shaped like the server's.
fn refused(status: u16, code: &str, message: String) -> Failure {
    let body = json!({ "error": { "code": code, "message": message } });
    Failure::Refused { status, body: Some(body), message: format!("{code}: {message}") }
}

fn no_two_documents(json: bool, output: Option<&std::path::Path>) -> Result<(), Failure> {
    if json && download::is_stdout(output) {
        return Err(Failure::usage("--json and -o - both want stdout; write the report to a file"));
    }
    Ok(())
}

pub(super) async fn submit(args: Box<SubmitArgs>) -> Result<(), Failure> {
    let SubmitArgs { file, input_format, format, title, columns, idempotency_key, wait, output, api: api_args } = *args;
    let json = api_args.json;
    no_two_documents(json, output.as_deref())?;
    let source = Source::new(&file);
    let kind = source.kind(input_format)?;
    if columns.is_some() && kind != InputFormat::Csv {
        return Err(Failure::usage("--columns applies to CSV input only"));
    }
    let api = Api::new(&api_args)?;
    let fields = Fields { format, title };
    let mut request = api.upload(Method::POST, "/generate");
    if let Some(key) = idempotency_key {
        let value = HeaderValue::from_str(&key).map_err(|_| Failure::usage("--idempotency-key must be printable ASCII"))?;
        request = request.header("Idempotency-Key", value);
    }
    let response = match kind {
        InputFormat::Json => {
            let body = blocking(move || input::json_body(&source, &fields)).await?;
            api.send(request.header(CONTENT_TYPE, "application/json").body(body)).await?
        }
        InputFormat::Ndjson | InputFormat::Csv => {
            let stream = blocking(move || match kind {
                InputFormat::Csv => input::csv(&source, &fields, columns.as_ref()),
                _ => input::ndjson(&source, &fields),
            })
            .await?;
            let (body, producer) = stream.spawn();
            let request = request.header(CONTENT_TYPE, "application/x-ndjson").header(CONTENT_ENCODING, "gzip");
            let sent = api.send(request.body(body)).await;
            let produced = producer.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            match (produced, sent) {
                // The input failed: that, not the aborted upload, is the story.
                (Err(failure @ Failure::Usage(_)), _) => return Err(failure),
                (_, sent) => sent?,
            }
        }
    };
    let replayed = response.headers().contains_key("idempotent-replayed");
    let accepted: Value =
        response.json().await.map_err(|e| Failure::unavailable(format!("the server's answer is not JSON: {e}")))?;
    let id: Uuid = accepted["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Failure::unavailable(format!("the server's answer names no job: {accepted}")))?;
    let again = if replayed { " (the same job as before: Idempotency-Key replayed)" } else { "" };
    if !(wait || output.is_some()) {
        if json {
            print_json(&accepted);
        } else {
            println!("{id}");
        }
        eprintln!("submitted {id}{again}; follow it with: reportd status {id}");
        return Ok(());
    }
    if !json && !download::is_stdout(output.as_deref()) {
        println!("{id}");
    }
    eprintln!("submitted {id}{again}");
    let status = wait::until_finished(&api, id).await?;
    if status["status"] != "done" {
        if json {
            print_json(&status);
        }
        let error = status["error"].as_str().unwrap_or("(no error message)").to_string();
        return Err(Failure::JobFailed { id, error });
    }
    if let Some(output) = &output {
        let saved = download::save(&api, id, &status, Some(output)).await?;
        if saved.path != "-" {
            eprintln!("saved {} ({} bytes)", saved.path, saved.bytes);
        }
    }
    if json {
        print_json(&status);
    }
    Ok(())
}

pub(super) async fn status(id: Uuid, args: &ApiArgs) -> Result<(), Failure> {
    let api = Api::new(args)?;
    let status = api.json(api.call(Method::GET, &format!("/status/{id}"))).await?;
    if args.json {
        print_json(&status);
    } else {
        print!("{}", status_lines(&status));
    }
    Ok(())
}

pub(super) async fn download(id: Uuid, output: Option<PathBuf>, args: &ApiArgs) -> Result<(), Failure> {
    no_two_documents(args.json, output.as_deref())?;
    let api = Api::new(args)?;
    let status = api.json(api.call(Method::GET, &format!("/status/{id}"))).await?;
    match status["status"].as_str() {
        Some("done") => {}
        Some("error") => {
            if args.json {
                print_json(&status);
            }
            let error = status["error"].as_str().unwrap_or("(no error message)").to_string();
            return Err(Failure::JobFailed { id, error });
        }
        other => return Err(refused(409, "not_ready", format!("job {id} is {}, not done yet", other.unwrap_or("?")))),
    }
    let saved = download::save(&api, id, &status, output.as_deref()).await?;
    if args.json {
        print_json(&json!({ "id": id, "path": saved.path, "bytes": saved.bytes }));
    } else if saved.path != "-" {
        println!("{}", saved.path);
        eprintln!("saved {} ({} bytes)", saved.path, saved.bytes);
    }
    Ok(())
}

pub(super) async fn jobs(
    status: Option<StatusFilter>,
    limit: Option<u64>,
    mut cursor: Option<Uuid>,
    all: bool,
    args: &ApiArgs,
) -> Result<(), Failure> {
    let api = Api::new(args)?;
    let mut collected = Vec::new();
    let mut shown = 0usize;
    loop {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(s) = status {
            query.append_pair("status", s.as_str());
        }
        if let Some(l) = limit {
            query.append_pair("limit", &l.to_string());
        }
        if let Some(c) = cursor {
            query.append_pair("cursor", &c.to_string());
        }
        let query = query.finish();
        let path = if query.is_empty() { "/jobs".to_string() } else { format!("/jobs?{query}") };
        let mut page = api.json(api.call(Method::GET, &path)).await?;
        let next: Option<Uuid> = page["next_cursor"].as_str().and_then(|c| c.parse().ok());
        if args.json && !all {
            print_json(&page);
            return Ok(());
        }
        let jobs = match page["jobs"].take() {
            Value::Array(jobs) => jobs,
            _ => Vec::new(),
        };
        if args.json {
            collected.extend(jobs);
        } else {
            for job in &jobs {
                if shown == 0 {
                    println!("{}", table_header());
                }
                println!("{}", table_row(job));
                shown += 1;
            }
        }
        match next {
            Some(next) if all => cursor = Some(next),
            Some(next) => {
                eprintln!("more: reportd jobs --cursor {next} (or --all)");
                break;
            }
            None => break,
        }
    }
    if args.json {
        print_json(&json!({ "jobs": collected, "next_cursor": null }));
    } else if shown == 0 {
        eprintln!("no jobs");
    }
    Ok(())
}

pub(super) async fn retry(id: Uuid, args: &ApiArgs) -> Result<(), Failure> {
    let api = Api::new(args)?;
    let answer = api.json(api.call(Method::POST, &format!("/jobs/{id}/retry"))).await?;
    if args.json {
        print_json(&answer);
    } else {
        println!("{id} {}", answer["status"].as_str().unwrap_or("queued"));
    }
    Ok(())
}

pub(super) async fn delete(id: Uuid, args: &ApiArgs) -> Result<(), Failure> {
    let api = Api::new(args)?;
    let answer = api.json(api.call(Method::DELETE, &format!("/jobs/{id}"))).await?;
    if args.json {
        print_json(&answer);
    } else {
        println!("{id} {}", answer["status"].as_str().unwrap_or("deleted"));
    }
    Ok(())
}
