//! The webhook port: POSTing signed events to clients' callback URLs, only to
//! hosts and addresses the callback policy allows. `http` is the adapter.
pub(crate) mod http;

use async_trait::async_trait;

use crate::job::webhook::CallbackRefused;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The policy refuses the URL or what its host resolves to.
    #[error(transparent)]
    Refused(#[from] CallbackRefused),
    /// No answer: the connection failed or timed out.
    #[error("{0}")]
    Failed(String),
}

#[async_trait]
pub trait WebhookSender: Send + Sync + 'static {
    /// Whether `url` may be called: its host is allowed and resolves only to
    /// allowed addresses (checked when a job asks for a webhook).
    async fn check(&self, url: &str) -> Result<(), CallbackRefused>;
    /// POSTs a JSON `body` with `headers`; the answer's status code.
    async fn post(&self, url: &str, headers: &[(&'static str, String)], body: Vec<u8>) -> Result<u16, SendError>;
}
