//! `--wait`: polls `GET /status/{id}` until the job is done or in error. On a
//! terminal, stderr shows a progress bar from the status's
//! `progress: {rows_written, total}` when the server reports it, else a
//! spinner with the status's name; indicatif draws nothing when stderr is not
//! a terminal. A poll that gets no answer, or a 5xx, is tried again for a
//! while before giving up (exit 4); any 4xx ends the wait at once (exit 3).
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use super::Failure;
use super::api::Api;
use super::output::progress;

const FIRST_POLL: Duration = Duration::from_millis(200);
const MAX_POLL: Duration = Duration::from_millis(500);
/// How long polls may keep failing (no answer, 5xx, 429) before the wait gives up.
const OUTAGE: Duration = Duration::from_secs(30);

/// The final status (`done` or `error`).
pub(super) async fn until_finished(api: &Api, id: Uuid) -> Result<Value, Failure> {
    let view = View::new();
    let started = Instant::now();
    let mut interval = FIRST_POLL;
    let mut failing_since: Option<Instant> = None;
    let result = loop {
        match api.json(api.call(Method::GET, &format!("/status/{id}"))).await {
            Ok(status) => {
                failing_since = None;
                view.show(&status);
                if matches!(status["status"].as_str(), Some("done" | "error")) {
                    break Ok(status);
                }
            }
            Err(failure) if transient(&failure) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= OUTAGE {
                    break Err(failure);
                }
                view.bar.set_message(format!("no answer from the server ({}); retrying", short(&failure)));
            }
            Err(failure) => break Err(failure),
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 3 / 2).min(MAX_POLL);
    };
    view.bar.finish_and_clear();
    if let Ok(status) = &result {
        let took = started.elapsed().as_secs_f64();
        match status["status"].as_str() {
            Some("done") => eprintln!("{id} done in {took:.1} s: {}", summary(status)),
            _ => eprintln!("{id} failed after {took:.1} s"),
        }
    }
    result
}

/// Worth polling again: no answer, a 5xx, or a 429.
fn transient(failure: &Failure) -> bool {
    matches!(failure, Failure::Unavailable { .. } | Failure::Refused { status: 429, .. })
}

fn short(failure: &Failure) -> String {
    match failure {
        Failure::Unavailable { status: Some(s), .. } | Failure::Refused { status: s, .. } => format!("HTTP {s}"),
        _ => "no connection".into(),
    }
}

/// `N rows, SIZE`, as far as the status says.
pub(super) fn summary(status: &Value) -> String {
    let rows = status["rows"].as_u64().map(|r| format!("{r} rows")).unwrap_or_else(|| "? rows".into());
    match status["bytes"].as_u64() {
        Some(b) => format!("{rows}, {}", indicatif::HumanBytes(b)),
        None => rows,
    }
}

/// The spinner, which becomes a bar once the status reports progress.
struct View {
    bar: ProgressBar,
    counting: std::cell::Cell<bool>,
}

impl View {
    fn new() -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("a valid template"));
        bar.enable_steady_tick(Duration::from_millis(100));
        bar.set_message("submitted");
        View { bar, counting: std::cell::Cell::new(false) }
    }

    fn show(&self, status: &Value) {
        let name = status["status"].as_str().unwrap_or("?");
        match progress(status) {
            Some((written, total)) => {
                if !self.counting.replace(true) {
                    self.bar.set_style(
                        ProgressStyle::with_template(
                            "{msg:10} [{wide_bar:.cyan/blue}] {pos}/{len} rows ({percent}%) eta {eta}",
                        )
                        .expect("a valid template")
                        .progress_chars("=> "),
                    );
                }
                self.bar.set_length(total);
                self.bar.set_position(written);
                self.bar.set_message(name.to_string());
            }
            None => {
                let rows = status["rows"].as_u64().map(|r| format!(" ({r} rows)")).unwrap_or_default();
                self.bar.set_message(format!("{name}{rows}"));
            }
        }
    }
}
