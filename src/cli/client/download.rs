//! Saving a finished report: the status's `download_url` (absolute, or
//! relative to the server) fetched without the key, streamed to a temporary
//! file beside the target and renamed into place once whole, or to stdout.
//! The name: `-o`, else the server's `Content-Disposition`, else `<id>.<format>`.
use std::io::Write;
use std::path::{Path, PathBuf};

use actix_web::http::header::{ContentDisposition, HeaderValue};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use uuid::Uuid;

use super::Failure;
use super::api::{Api, transport};

/// Where a download went: a path, or `-` for stdout.
pub(super) struct Saved {
    pub(super) path: String,
    pub(super) bytes: u64,
}

pub(super) fn is_stdout(output: Option<&Path>) -> bool {
    output.is_some_and(|p| p.as_os_str() == "-")
}

/// Downloads the report of `status` (a done job's) to `output`.
pub(super) async fn save(api: &Api, id: Uuid, status: &Value, output: Option<&Path>) -> Result<Saved, Failure> {
    let link = status["download_url"].as_str().ok_or_else(|| Failure::Refused {
        status: 409,
        body: None,
        message: format!("not_ready: job {id} has no download link (it is {})", status["status"].as_str().unwrap_or("?")),
    })?;
    let response = api.send(api.link(link)?).await?;
    let length = response.content_length();
    let server_name = response
        .headers()
        .get("content-disposition")
        .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
        .and_then(|v| ContentDisposition::from_raw(&v).ok())
        .and_then(|cd| file_name(&cd));
    let fallback = || server_name.clone().unwrap_or_else(|| format!("{id}.{}", status["format"].as_str().unwrap_or("bin")));
    if is_stdout(output) {
        let mut stdout = std::io::stdout().lock();
        let bytes = copy(response, length, &mut stdout, "stdout").await?;
        stdout.flush().map_err(|e| Failure::usage(format!("cannot write to stdout: {e}")))?;
        return Ok(Saved { path: "-".into(), bytes });
    }
    let path = match output {
        Some(dir) if dir.is_dir() => dir.join(fallback()),
        Some(path) => path.to_path_buf(),
        None => PathBuf::from(fallback()),
    };
    let shown = path.display().to_string();
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new()
        .prefix(".reportd-download-")
        .tempfile_in(dir)
        .map_err(|e| Failure::usage(format!("cannot write in {}: {e}", dir.display())))?;
    let bytes = copy(response, length, file.as_file_mut(), &shown).await?;
    file.as_file_mut().sync_all().map_err(|e| Failure::usage(format!("cannot write {shown}: {e}")))?;
    file.persist(&path).map_err(|e| Failure::usage(format!("cannot write {shown}: {}", e.error)))?;
    Ok(Saved { path: shown, bytes })
}

/// Streams the body into `out`, with a byte bar on a terminal.
async fn copy(response: reqwest::Response, length: Option<u64>, out: &mut dyn Write, shown: &str) -> Result<u64, Failure> {
    let bar = match length {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template("downloading [{wide_bar}] {bytes}/{total_bytes}")
                .expect("a valid template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner(),
    };
    let mut written = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(transport)?;
        out.write_all(&chunk).map_err(|e| Failure::usage(format!("cannot write {shown}: {e}")))?;
        written += chunk.len() as u64;
        bar.set_position(written);
    }
    bar.finish_and_clear();
    if let Some(len) = length.filter(|len| *len != written) {
        return Err(Failure::unavailable(format!("the download ended after {written} of {len} bytes")));
    }
    Ok(written)
}

/// The file name a `Content-Disposition` gives (its UTF-8 `filename*` first),
/// reduced to a plain name: no directory, nothing hidden, no control characters.
fn file_name(cd: &ContentDisposition) -> Option<String> {
    let raw = cd
        .get_filename_ext()
        .and_then(|ext| String::from_utf8(ext.value.clone()).ok())
        .or_else(|| cd.get_filename().map(str::to_string))?;
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base.chars().map(|c| if c.is_control() { '_' } else { c }).collect();
    let clean = clean.trim().trim_start_matches('.').to_string();
    (!clean.is_empty()).then_some(clean)
}
