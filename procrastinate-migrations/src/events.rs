//! `tracing` events (feature `tracing`), so that an application sees in its own logs what the
//! start-up check said and what an upgrade ran: target `procrastinate_migrations`, one event per
//! verdict (info when the build may run, warn when not), per migration started, applied (with
//! its duration) or found applied by another process (info), and per failure (error). Without
//! the feature these are empty and compiled away.

use crate::compat::Verdict;

/// A set's start-up verdict.
pub fn verdict(v: &Verdict) {
    #[cfg(feature = "tracing")]
    {
        let set = v.set.as_deref().unwrap_or("");
        if v.is_compatible() {
            tracing::info!(target: "procrastinate_migrations", set, verdict = v.kind(), "{v}");
        } else {
            tracing::warn!(target: "procrastinate_migrations", set, verdict = v.kind(), "{v}");
        }
    }
    #[cfg(not(feature = "tracing"))]
    let _ = v;
}

/// An upgrade's event.
#[cfg(feature = "postgres")]
pub fn upgrade(set: Option<&str>, e: &crate::db::Event<'_>) {
    #[cfg(feature = "tracing")]
    {
        use crate::db::Event;
        let set = set.unwrap_or("");
        match e {
            Event::Applying { migrations } => {
                for m in migrations.iter() {
                    tracing::info!(target: "procrastinate_migrations", set, revision = %m.revision, file = %m.file_name, "applying {}", m.file_name);
                }
            }
            Event::Applied { migration, duration } => {
                tracing::info!(target: "procrastinate_migrations", set, revision = %migration.revision, file = %migration.file_name, duration_ms = duration.map(|d| d.as_millis() as u64), "applied {}", migration.file_name);
            }
            Event::AppliedElsewhere { migration } => {
                tracing::info!(target: "procrastinate_migrations", set, revision = %migration.revision, file = %migration.file_name, "skipped {}: another process applied it", migration.file_name);
            }
            Event::Waiting { holder } => {
                tracing::info!(target: "procrastinate_migrations", set, holder = holder.unwrap_or(""), "waiting for another process's migration lock");
            }
            Event::Retrying { migration, attempt, of, reason, .. } => {
                tracing::warn!(target: "procrastinate_migrations", set, file = %migration.file_name, attempt, of, "retrying {} after lock_timeout: {reason}", migration.file_name);
            }
            Event::Accepted { migration, .. } => {
                tracing::warn!(target: "procrastinate_migrations", set, file = %migration.file_name, "accepted the changed file {}", migration.file_name);
            }
            Event::Revised { revised, rerun } => {
                tracing::info!(target: "procrastinate_migrations", set, file = %revised.file_name, rerun, "recorded upstream's revised text of {}", revised.file_name);
            }
        }
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (set, e);
}

/// An upgrade that failed.
#[cfg(feature = "postgres")]
pub fn failed(set: Option<&str>, e: &crate::db::Error) {
    #[cfg(feature = "tracing")]
    tracing::error!(target: "procrastinate_migrations", set = set.unwrap_or(""), "{e}");
    #[cfg(not(feature = "tracing"))]
    let _ = (set, e);
}
