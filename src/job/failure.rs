//! Why an attempt failed, and what that means for the job: a permanent
//! failure ends it at once, a transient one earns another attempt.
use std::fmt;

/// The kind of failure; its label is a metric label, so the set is fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum FailureKind {
    /// The payload is missing or corrupt: it will be just as broken next time.
    Payload,
    /// Object storage could not be read or written.
    Storage,
    /// The renderer failed (I/O on scratch space, a library error).
    Render,
    /// The renderer panicked; the render actor was replaced.
    Panic,
    /// A fault injected by the test suite.
    Injected,
    /// The job's workers died during every attempt it had.
    Lost,
    /// A named report's query failed as it stands (SQL error, timeout, too many rows).
    Query,
    /// A named report's data source could not be reached.
    Source,
}

impl FailureKind {
    pub(crate) const ALL: [FailureKind; 8] = [
        FailureKind::Payload,
        FailureKind::Storage,
        FailureKind::Render,
        FailureKind::Panic,
        FailureKind::Injected,
        FailureKind::Lost,
        FailureKind::Query,
        FailureKind::Source,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            FailureKind::Payload => "payload",
            FailureKind::Storage => "storage",
            FailureKind::Render => "render",
            FailureKind::Panic => "panic",
            FailureKind::Injected => "injected",
            FailureKind::Lost => "lost",
            FailureKind::Query => "query",
            FailureKind::Source => "source",
        }
    }

    /// Retrying cannot help.
    pub(crate) fn is_permanent(self) -> bool {
        matches!(self, FailureKind::Payload | FailureKind::Lost | FailureKind::Query)
    }
}

/// A failed attempt: what kind, and the message the job's `error` will show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    pub(crate) fn is_permanent(&self) -> bool {
        self.kind.is_permanent()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
