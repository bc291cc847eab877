//! Webhooks over reqwest. Every host is resolved by a resolver that applies
//! the callback policy to each address, and the connection goes to an
//! address that passed: a name that resolves to an internal address (or
//! changes its answer between the check and the call, DNS rebinding) is
//! refused. IP literals are checked before the request; redirects are not
//! followed.
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::{SendError, WebhookSender};
use crate::job::webhook::{CallbackPolicy, CallbackRefused};

pub(crate) struct HttpWebhooks {
    client: reqwest::Client,
    policy: Arc<CallbackPolicy>,
}

/// Resolves through the system, then lets through only allowed addresses.
struct CheckedResolver {
    policy: Arc<CallbackPolicy>,
}

async fn lookup(host: &str, port: u16) -> Vec<IpAddr> {
    match tokio::net::lookup_host((host, port)).await {
        Ok(addrs) => addrs.map(|a| a.ip()).collect(),
        Err(_) => Vec::new(),
    }
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let ips = lookup(&host, 0).await;
            policy.check_addresses(&host, &ips)?;
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

impl HttpWebhooks {
    pub(crate) fn new(policy: CallbackPolicy, timeout: Duration) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckedResolver { policy: policy.clone() }))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("reportd/", env!("CARGO_PKG_VERSION"), " (webhooks)"))
            .build()?;
        Ok(Self { client, policy })
    }

    /// The URL's own checks, and the address itself when the host is one.
    fn check_url(&self, url: &str) -> Result<(url::Url, String, u16), CallbackRefused> {
        let parsed = url::Url::parse(url).map_err(|_| CallbackRefused::NotHttp)?;
        let (host, port) = self.policy.check_url(&parsed)?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.policy.check_addresses(&host, &[ip])?;
        }
        Ok((parsed, host, port))
    }
}

#[async_trait]
impl WebhookSender for HttpWebhooks {
    async fn check(&self, url: &str) -> Result<(), CallbackRefused> {
        let (_, host, port) = self.check_url(url)?;
        if host.parse::<IpAddr>().is_err() {
            self.policy.check_addresses(&host, &lookup(&host, port).await)?;
        }
        Ok(())
    }

    async fn post(&self, url: &str, headers: &[(&'static str, String)], body: Vec<u8>) -> Result<u16, SendError> {
        let (parsed, ..) = self.check_url(url)?;
        let mut request = self.client.post(parsed).header("content-type", "application/json").body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        match request.send().await {
            Ok(response) => Ok(response.status().as_u16()),
            // The resolver's refusal comes back wrapped in the connect error.
            Err(e) => {
                let mut source: Option<&dyn std::error::Error> = Some(&e);
                while let Some(s) = source {
                    if let Some(refused) = s.downcast_ref::<CallbackRefused>() {
                        return Err(SendError::Refused(refused.clone()));
                    }
                    source = s.source();
                }
                Err(SendError::Failed(if e.is_timeout() { "no answer in time".into() } else { e.to_string() }))
            }
        }
    }
}
