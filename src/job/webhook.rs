//! Completion webhooks, the Standard Webhooks way: a JSON event POSTed to the
//! job's `callback_url`, signed with the tenant's secret
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`
//! of `"{id}.{timestamp}.{body}"`). And the policy that keeps callbacks off
//! internal networks (SSRF): which hosts and addresses a callback may reach.
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;

/// What happened to the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventType {
    #[serde(rename = "job.done")]
    Done,
    #[serde(rename = "job.error")]
    Error,
}

/// One attempt at delivering a job's webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WebhookDelivery {
    /// The event delivered (its `webhook-id`); a job retried after an error
    /// may announce more than one.
    #[serde(skip)]
    pub event: Uuid,
    pub attempt: i32,
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl WebhookDelivery {
    /// A 2xx answer.
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// A tenant's signing secret: `whsec_` and the base64 of at least 24 bytes.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

impl WebhookSecret {
    pub fn parse(s: &str) -> Result<Self, String> {
        let key = s.strip_prefix("whsec_").ok_or("a webhook secret starts with whsec_")?;
        let bytes = BASE64.decode(key).map_err(|_| "the part after whsec_ is not base64".to_string())?;
        if bytes.len() < 24 {
            return Err(format!("a webhook secret needs at least 24 bytes, this one has {}", bytes.len()));
        }
        Ok(WebhookSecret(bytes))
    }

    /// The `webhook-signature` header's value for this message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else { return String::new() };
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

/// The headers of one delivery; `webhook-id` is the same for every retry of an event.
pub fn signed_headers(secret: &WebhookSecret, webhook_id: Uuid, at: DateTime<Utc>, body: &[u8]) -> [(&'static str, String); 3] {
    let (id, timestamp) = (format!("msg_{}", webhook_id.simple()), at.timestamp());
    let signature = secret.sign(&id, timestamp, body);
    [("webhook-id", id), ("webhook-timestamp", timestamp.to_string()), ("webhook-signature", signature)]
}

/// Each tenant's signing secret.
#[derive(Debug, Clone, Default)]
pub struct TenantSecrets(std::collections::HashMap<String, WebhookSecret>);

impl TenantSecrets {
    pub fn new(secrets: impl IntoIterator<Item = (String, WebhookSecret)>) -> Self {
        TenantSecrets(secrets.into_iter().collect())
    }

    pub fn get(&self, tenant: &str) -> Option<&WebhookSecret> {
        self.0.get(tenant)
    }
}

/// The body of a webhook event: what happened, when, and the job's status view.
pub fn event_body(event: EventType, at: DateTime<Utc>, view: &super::view::StatusView) -> Vec<u8> {
    #[derive(Serialize)]
    struct Event<'a> {
        #[serde(rename = "type")]
        kind: EventType,
        timestamp: DateTime<Utc>,
        data: &'a super::view::StatusView,
    }
    serde_json::to_vec(&Event { kind: event, timestamp: at, data: view }).unwrap_or_default()
}

/// Where callbacks may go. Hosts must be in `allow_hosts` (names, or
/// addresses in its CIDRs) when it is not empty, and no address a host
/// resolves to may be loopback, private, link-local or otherwise internal,
/// unless it is in `allow_private`.
#[derive(Debug, Clone, Default)]
pub struct CallbackPolicy {
    pub allow_hosts: Vec<HostRule>,
    pub allow_private: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HostRule {
    /// A host name, matched exactly (case aside), or a domain and its subdomains with a leading dot.
    Name(String),
    Net(IpNet),
}

impl HostRule {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(HostRule::Net(net));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(HostRule::Net(IpNet::from(ip)));
        }
        let name = s.trim_start_matches('.');
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
            return Err(format!("`{s}` is neither a host name nor a CIDR"));
        }
        Ok(HostRule::Name(s.to_ascii_lowercase()))
    }
}

/// Why a callback URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackRefused {
    #[error("callback_url must be an http or https URL with a host")]
    NotHttp,
    #[error("the host {0} is not in webhooks.allow_hosts")]
    HostNotAllowed(String),
    #[error("the host {host} resolves to {ip}, an internal address")]
    InternalAddress { host: String, ip: IpAddr },
    #[error("the host {0} does not resolve")]
    Unresolved(String),
}

impl CallbackPolicy {
    /// Checks the URL itself; returns its host and port for resolution.
    pub fn check_url(&self, url: &url::Url) -> Result<(String, u16), CallbackRefused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(CallbackRefused::NotHttp);
        }
        let host = url.host_str().ok_or(CallbackRefused::NotHttp)?.trim_matches(['[', ']']).to_ascii_lowercase();
        let port = url.port_or_known_default().ok_or(CallbackRefused::NotHttp)?;
        if !self.allow_hosts.is_empty() && !self.host_listed(&host) {
            return Err(CallbackRefused::HostNotAllowed(host));
        }
        Ok((host, port))
    }

    fn host_listed(&self, host: &str) -> bool {
        let ip = host.parse::<IpAddr>().ok();
        self.allow_hosts.iter().any(|rule| match (rule, ip) {
            (HostRule::Net(net), Some(ip)) => net.contains(&ip),
            (HostRule::Name(name), None) => match name.strip_prefix('.') {
                Some(domain) => host == domain || host.ends_with(name.as_str()),
                None => host == name,
            },
            _ => false,
        })
    }

    /// Checks what `host` resolved to: every address must be public, or allowed.
    pub fn check_addresses(&self, host: &str, ips: &[IpAddr]) -> Result<(), CallbackRefused> {
        if ips.is_empty() {
            return Err(CallbackRefused::Unresolved(host.to_string()));
        }
        match ips.iter().find(|ip| is_internal(**ip) && !self.allow_private.iter().any(|net| net.contains(*ip))) {
            Some(ip) => Err(CallbackRefused::InternalAddress { host: host.to_string(), ip: *ip }),
            None => Ok(()),
        }
    }
}

/// Loopback, private, link-local, unspecified, shared, documentation,
/// multicast, reserved; IPv4-mapped IPv6 addresses by their IPv4 part.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b)) // benchmarking
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b // NAT64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example from the Standard Webhooks specification's reference implementation.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err(), "too short");
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err(), "no prefix");
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let policy = CallbackPolicy { allow_hosts: vec![], allow_private: vec!["127.0.0.1/32".parse().unwrap()] };
        for internal in ["10.1.2.3", "192.168.0.1", "169.254.169.254", "::1", "fd00::1", "fe80::1", "::ffff:10.0.0.1", "0.0.0.0", "100.64.0.1"] {
            let ip: IpAddr = internal.parse().unwrap();
            assert!(policy.check_addresses("h", &[ip]).is_err(), "{internal}");
        }
        assert!(policy.check_addresses("h", &["127.0.0.1".parse().unwrap()]).is_ok(), "allowed explicitly");
        assert!(policy.check_addresses("h", &["127.0.0.2".parse().unwrap()]).is_err());
        assert!(policy.check_addresses("h", &["93.184.216.34".parse().unwrap(), "2606:2800::1".parse().unwrap()]).is_ok());
        assert!(policy.check_addresses("h", &["93.184.216.34".parse().unwrap(), "10.0.0.1".parse().unwrap()]).is_err(), "any internal answer refuses");
        assert!(policy.check_addresses("h", &[]).is_err());
    }

    #[test]
    fn hosts_must_be_listed_when_a_list_is_given() {
        let policy = CallbackPolicy {
            allow_hosts: ["hooks.example.com", ".partner.io", "203.0.113.0/24"].iter().map(|h| HostRule::parse(h).unwrap()).collect(),
            allow_private: vec![],
        };
        let check = |u: &str| policy.check_url(&url::Url::parse(u).unwrap());
        assert_eq!(check("https://hooks.example.com/x"), Ok(("hooks.example.com".into(), 443)));
        assert!(check("https://api.partner.io:8443/x").is_ok());
        assert!(check("http://203.0.113.9/x").is_ok());
        assert!(matches!(check("https://evil.example.com/"), Err(CallbackRefused::HostNotAllowed(_))));
        assert!(matches!(check("ftp://hooks.example.com/"), Err(CallbackRefused::NotHttp)));
        assert!(CallbackPolicy::default().check_url(&url::Url::parse("https://anything.example/").unwrap()).is_ok());
    }
}
