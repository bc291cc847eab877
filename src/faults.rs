//! Named fault points for tests: a rule makes a point fail, panic, hang or
//! kill the process for jobs whose title contains a marker. Tests build rules
//! in code; the fault-injection suite passes them to real processes through
//! `REPORTD_FAULTS`. Without the `fault-injection` feature `Faults` is empty
//! and every check is a constant `None`: release builds carry no fault points.
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultPoint {
    /// Inside the render actor, before rendering.
    Render,
    /// Before the report is uploaded.
    Upload,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// Return this error (a transient failure).
    Fail(String),
    /// Panic in the render actor.
    Panic,
    /// Sleep this long (a hung worker), in milliseconds.
    HangMs(u64),
    /// Exit the process at once, as a crash would.
    Exit,
}

#[cfg(feature = "fault-injection")]
pub use armed::{FaultRule, Faults};
#[cfg(not(feature = "fault-injection"))]
pub use disarmed::Faults;

#[cfg(feature = "fault-injection")]
mod armed {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::time::Duration;

    use serde::Deserialize;

    use super::{FaultAction, FaultPoint};

    #[derive(Debug, Deserialize)]
    pub struct FaultRule {
        pub point: FaultPoint,
        /// Applies to jobs whose title contains this text.
        pub title_contains: String,
        pub action: FaultAction,
        /// How many times the rule fires; absent means always.
        #[serde(default)]
        pub times: Option<i64>,
        #[serde(skip)]
        fired: AtomicI64,
    }

    impl FaultRule {
        pub fn new(point: FaultPoint, title_contains: &str, action: FaultAction, times: Option<i64>) -> Self {
            Self { point, title_contains: title_contains.into(), action, times, fired: AtomicI64::new(0) }
        }
    }

    #[derive(Debug, Clone, Default)]
    pub struct Faults {
        rules: Arc<Vec<FaultRule>>,
    }

    impl Faults {
        pub fn new(rules: Vec<FaultRule>) -> Self {
            Self { rules: Arc::new(rules) }
        }

        /// Rules from `REPORTD_FAULTS` (a JSON array of rules).
        pub fn from_env() -> Self {
            if let Ok(json) = std::env::var("REPORTD_FAULTS") {
                match serde_json::from_str::<Vec<FaultRule>>(&json) {
                    Ok(rules) => return Self::new(rules),
                    Err(e) => tracing::error!(error = %e, "ignoring REPORTD_FAULTS"),
                }
            }
            Self::default()
        }

        /// The action a point should take for this job, if a rule matches.
        pub fn check(&self, point: FaultPoint, title: &str) -> Option<FaultAction> {
            self.rules.iter().find_map(|r| {
                if r.point != point || !title.contains(&r.title_contains) {
                    return None;
                }
                let n = r.fired.fetch_add(1, Ordering::SeqCst);
                match r.times {
                    Some(limit) if n >= limit => None,
                    _ => Some(r.action.clone()),
                }
            })
        }

        /// Carries out an action at a point; `Err` is the injected failure.
        pub fn trigger(&self, point: FaultPoint, title: &str) -> Result<(), String> {
            match self.check(point, title) {
                None => Ok(()),
                Some(FaultAction::Fail(msg)) => Err(msg),
                Some(FaultAction::Panic) => panic!("injected panic at {point:?}"),
                Some(FaultAction::HangMs(ms)) => {
                    std::thread::sleep(Duration::from_millis(ms));
                    Ok(())
                }
                Some(FaultAction::Exit) => std::process::exit(137),
            }
        }
    }
}

#[cfg(not(feature = "fault-injection"))]
mod disarmed {
    use super::{FaultAction, FaultPoint};

    /// No rules can exist in this build.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Faults;

    impl Faults {
        pub fn from_env() -> Self {
            Faults
        }

        #[inline(always)]
        pub fn check(&self, _: FaultPoint, _: &str) -> Option<FaultAction> {
            None
        }

        #[inline(always)]
        pub fn trigger(&self, _: FaultPoint, _: &str) -> Result<(), String> {
            Ok(())
        }
    }
}
