//! Alerting of sawmill: rules over the log stream and the notifications they send on-call.
//!
//! - [`rules`]: the YAML rules file (notifiers, rules), validated with errors that name the
//!   rule and the field;
//! - [`template`]: annotation templates (`{{count}} errors on {{group.host}}`);
//! - [`engine`]: sliding-window counts per rule and group, instance states and the
//!   notifications their changes cause;
//! - [`silence`]: silences that suppress notifications, not evaluation;
//! - [`outbox`]: notifications on disk until delivered;
//! - [`notify`]: delivery to SNS, webhooks and the log, with retries and storm grouping;
//! - [`worker`]: the WAL consumer that feeds the engine and persists its state.
//!
//! A rule may belong to a tenant (`tenant: acme`): it then counts that tenant's events only,
//! only that tenant sees it, and its notifications carry the tenant. A rule without one is an
//! operator rule over every tenant's events. Silences likewise belong to a tenant or to the
//! operator.

pub mod engine;
pub mod notify;
pub mod outbox;
pub mod rules;
pub mod silence;
pub mod template;
pub mod worker;

pub use engine::{Engine, Notification, Snapshot, State};
pub use notify::NotifyError;
pub use outbox::OutboxError;
pub use rules::{check_tenant, Notifier, NotifierKind, Rule, RuleError, Rules, RulesError};
pub use silence::{parse_matcher, MatcherError, Silence, Silences, SilencesError};
pub use template::TemplateError;
pub use worker::{AlertError, AlertHandle, AlertWorker, Matches};

/// The time now, in nanoseconds since the epoch.
pub(crate) fn now_nanos() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}
