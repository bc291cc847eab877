//! The HTTP side of the client: one `reqwest::Client`, the key on every API
//! request (never on a download link, which may point at S3 or GCS), and the
//! one place an answer becomes a `Failure`: a 4xx is `Refused` (exit 3), no
//! answer or a 5xx is `Unavailable` (exit 4).
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, Url};
use serde_json::Value;

use super::{ApiArgs, Failure};

/// How long a plain API call may take (not an upload or a download).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct Api {
    base: Url,
    key: Option<String>,
    http: reqwest::Client,
}

impl Api {
    pub(super) fn new(args: &ApiArgs) -> Result<Self, Failure> {
        crate::startup::install_tls_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("reportd-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::usage(format!("cannot build an HTTP client: {e}")))?;
        let key = args.key.clone().filter(|k| !k.is_empty());
        if key.as_deref().is_some_and(|k| !k.bytes().all(|b| b.is_ascii_graphic())) {
            return Err(Failure::usage("the key must be printable ASCII without spaces"));
        }
        Ok(Api { base: args.url.clone(), key, http })
    }

    /// `path` (such as `/status/{id}`) under the base URL, keeping any path prefix it has.
    pub(super) fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_string();
        let (path, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
        url.set_path(&format!("{prefix}{path}"));
        url.set_query(query);
        url
    }

    /// A request to the API, with the key and the timeout of a plain call.
    pub(super) fn call(&self, method: Method, path: &str) -> RequestBuilder {
        self.upload(method, path).timeout(CALL_TIMEOUT)
    }

    /// A request to the API with the key and no overall timeout (a body of any size).
    pub(super) fn upload(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// A download link from a status: absolute, or relative to the server. No
    /// key goes with it: the signed link is the capability, and a store such
    /// as S3 must not see the API key.
    pub(super) fn link(&self, link: &str) -> Result<RequestBuilder, Failure> {
        let url = self
            .base
            .join(link)
            .map_err(|e| Failure::unavailable(format!("the server gave a download link that is not a URL ({link}): {e}")))?;
        Ok(self.http.get(url))
    }

    /// Sends, and turns anything but a 2xx into a `Failure`.
    pub(super) async fn send(&self, request: RequestBuilder) -> Result<Response, Failure> {
        let response = request.send().await.map_err(transport)?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(refusal(response).await)
    }

    /// Sends and reads a JSON answer.
    pub(super) async fn json(&self, request: RequestBuilder) -> Result<Value, Failure> {
        let response = self.send(request).await?;
        response.json().await.map_err(|e| Failure::unavailable(format!("the server's answer is not JSON: {e}")))
    }
}

/// No answer: connection refused, DNS, TLS, a timeout, a connection cut.
pub(super) fn transport(e: reqwest::Error) -> Failure {
    if e.is_builder() {
        return Failure::usage(format!("cannot make the request: {e}"));
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    Failure::unavailable(message)
}

/// A non-2xx answer as a `Failure`, its JSON error read as `code: message`.
pub(super) async fn refusal(response: Response) -> Failure {
    let status = response.status();
    let request_id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str::<Value>(&text).ok().filter(|b| b["error"].is_object());
    let mut message = match &body {
        Some(b) => format!(
            "{}: {}",
            b["error"]["code"].as_str().unwrap_or("error"),
            b["error"]["message"].as_str().unwrap_or("(no message)")
        ),
        None => {
            let snippet: String = text.trim().chars().take(200).collect();
            format!("HTTP {status}{}{snippet}", if snippet.is_empty() { "" } else { ": " })
        }
    };
    if status.is_server_error() {
        let id = body.as_ref().and_then(|b| b["error"]["request_id"].as_str().map(str::to_string)).or(request_id);
        if let Some(id) = id {
            message.push_str(&format!(" (HTTP {}, request id {id})", status.as_u16()));
        }
        return Failure::Unavailable { status: Some(status.as_u16()), body, message };
    }
    Failure::Refused { status: status.as_u16(), body, message }
}
