//! Who may do what: every caller acts for one tenant, as a client (its own
//! jobs) or an operator (every tenant's jobs, the dead-letter queue, metrics).
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::model::Job;

/// The tenant of jobs submitted while authentication is off.
pub const DEFAULT_TENANT: &str = "default";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Client,
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Role::Client, Role::Operator].into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: String,
    pub role: Role,
}

impl Caller {
    /// Everyone, when authentication is off: the default tenant, with every right.
    pub fn open() -> Self {
        Caller { tenant: DEFAULT_TENANT.to_string(), role: Role::Operator }
    }

    pub fn is_operator(&self) -> bool {
        self.role == Role::Operator
    }

    /// A client sees its tenant's jobs; an operator sees every job.
    pub fn may_see(&self, job: &Job) -> bool {
        self.is_operator() || job.tenant == self.tenant
    }
}

/// An API key as stored: never the key itself, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub tenant: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A tenant name: 1–64 characters of `[A-Za-z0-9._-]`, so it is safe in
/// metric labels, object keys and logs.
pub fn valid_tenant(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_plain_names() {
        assert!(valid_tenant("acme-corp.eu_1"));
        for bad in ["", "a b", "ação", "x/y", &"a".repeat(65)] {
            assert!(!valid_tenant(bad), "{bad:?}");
        }
    }
}
