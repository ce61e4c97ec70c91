//! `upgrade` and `stamp`.

use std::time::{Duration, Instant};

use super::status::{read_applied, Status};
use super::{begin, db_err, lock, Divergence, Error, MigrationFailure, Options};
use crate::lexer;
use crate::migration::{Migration, Revision};
use crate::tracking::{quote_ident, quote_literal};

/// Progress, for the caller to print as it likes.
#[derive(Debug)]
pub enum Event<'a> {
    /// Another process holds the migration lock; we wait (holder if visible).
    Waiting { holder: Option<&'a str> },
    /// A changed file was accepted and its recorded checksum updated.
    Accepted { migration: &'a Migration, recorded: &'a str },
    /// About to run a migration.
    Applying { migration: &'a Migration },
    Applied { migration: &'a Migration, duration: Duration },
    /// Another process applied it while we waited for the lock.
    AppliedElsewhere { migration: &'a Migration },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeReport {
    pub from: Option<Revision>,
    pub to: Option<Revision>,
    /// Revisions this process ran.
    pub applied: Vec<Revision>,
}

/// Brings the database to `target` (a revision of `migrations`), one transaction per migration.
pub fn upgrade(
    client: &mut postgres::Client,
    migrations: &[Migration],
    target: Revision,
    opts: &Options,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<UpgradeReport, Error> {
    assert!(target.index() < migrations.len(), "target {target} is not in the set");
    let key = opts.table.lock_key();
    // Step 1, under the lock: create the tracking table, compare, accept changed files.
    let start = {
        let mut tx = begin(client, opts)?;
        let status = locked_status(&mut tx, migrations, opts, &mut |holder| on_event(Event::Waiting { holder }))?;
        let (accepted, refused): (Vec<_>, Vec<_>) = status.divergences.iter().cloned().partition(|d| {
            matches!(d, Divergence::Changed { revision, .. } if opts.accept_changed.accepts(*revision))
        });
        if !refused.is_empty() {
            return Err(Error::Diverged(refused));
        }
        if let Some(current) = status.current {
            if target < current {
                return Err(Error::Refused(format!(
                    "the database is at {current}, after the target {target}: downgrades are not supported; \
                     restore a backup taken before the migration instead"
                )));
            }
        }
        for d in &accepted {
            if let Divergence::Changed { revision, recorded, actual, .. } = d {
                tx.batch_execute(&format!(
                    "UPDATE {} SET checksum = {} WHERE revision = {}",
                    opts.table.sql(),
                    quote_literal(&actual.to_string()),
                    quote_literal(&revision.to_string())
                ))
                .map_err(db_err("cannot record the accepted checksum"))?;
                on_event(Event::Accepted { migration: &migrations[revision.index()], recorded });
            }
        }
        tx.commit().map_err(db_err("cannot commit the tracking table"))?;
        status.current
    };

    let mut report = UpgradeReport { from: start, to: start, applied: Vec::new() };
    let first = start.map_or(0, |r| r.number() as usize);
    for m in &migrations[first..=target.index()] {
        let mut tx = begin(client, opts)?;
        lock::acquire(&mut tx, key, opts.lock_wait, &mut |holder| on_event(Event::Waiting { holder }))?;
        // Re-read under the lock: a replica may have applied it while we waited, and one
        // deploying other files must not pass for us.
        let done = super::status::simple_rows(
            &mut tx,
            &format!(
                "SELECT file_name, checksum FROM {} WHERE revision = {}",
                opts.table.sql(),
                quote_literal(&m.revision.to_string())
            ),
        )
        .map_err(db_err("cannot read the tracking table"))?;
        if let Some(row) = done.first() {
            let (file_name, checksum) = (row[0].clone().unwrap_or_default(), row[1].clone().unwrap_or_default());
            if file_name != m.file_name {
                return Err(Error::Diverged(vec![Divergence::Renamed {
                    revision: m.revision,
                    recorded: file_name,
                    file_name: m.file_name.to_string(),
                }]));
            }
            if checksum != m.checksum.to_string() && !opts.accept_changed.accepts(m.revision) {
                return Err(Error::Diverged(vec![Divergence::Changed {
                    revision: m.revision,
                    file_name: file_name.clone(),
                    recorded: checksum,
                    actual: m.checksum,
                }]));
            }
            tx.commit().map_err(db_err("cannot end the transaction"))?;
            on_event(Event::AppliedElsewhere { migration: m });
            report.to = Some(m.revision);
            continue;
        }
        on_event(Event::Applying { migration: m });
        let started = Instant::now();
        tx.batch_execute(&format!("SET LOCAL lock_timeout = {}", opts.lock_timeout.as_millis()))
            .map_err(db_err("cannot set lock_timeout"))?;
        if let Err(failure) = run_file(&mut tx, m, opts, report.to) {
            drop(tx); // rolls back
            return Err(Error::Failed(Box::new(failure)));
        }
        tx.batch_execute(&opts.table.insert_sql(m, false)).map_err(db_err(format!("cannot record {}", m.label())))?;
        tx.commit().map_err(db_err(format!("cannot commit {}", m.label())))?;
        on_event(Event::Applied { migration: m, duration: started.elapsed() });
        report.applied.push(m.revision);
        report.to = Some(m.revision);
    }
    Ok(report)
}

/// Runs a file statement by statement (same transaction, so the same as running it whole) so
/// that an error can name the line even when the server gives no position.
fn run_file(
    tx: &mut postgres::Transaction<'_>,
    m: &Migration,
    opts: &Options,
    current: Option<Revision>,
) -> Result<(), MigrationFailure> {
    let fail = |line: Option<usize>, message: String, sqlstate: Option<String>| MigrationFailure {
        revision: m.revision,
        file_name: m.file_name.to_string(),
        line,
        message,
        sqlstate,
        current,
    };
    let statements = lexer::statements(&m.sql).map_err(|e| fail(Some(e.line), e.message, None))?;
    for st in statements {
        let text = &m.sql[st.span.clone()];
        if let Err(e) = tx.batch_execute(text) {
            let db = e.as_db_error();
            let line = match db.and_then(|d| d.position()) {
                Some(postgres::error::ErrorPosition::Original(pos)) => {
                    // The server counts characters from 1, not bytes.
                    let byte = text.char_indices().nth(*pos as usize - 1).map_or(text.len(), |(i, _)| i);
                    st.line + lexer::line_of(text, byte) - 1
                }
                _ => st.line,
            };
            let mut message = super::describe(&e);
            let sqlstate = db.map(|d| d.code().code().to_string());
            if sqlstate.as_deref() == Some("55P03") {
                message = format!(
                    "{message}: another session holds a lock this migration needs, and lock-timeout ({}ms) ran out; \
                     retry when the database is quieter, or raise `lock-timeout`",
                    opts.lock_timeout.as_millis()
                );
            }
            return Err(fail(Some(line), message, sqlstate));
        }
    }
    Ok(())
}

/// Takes the migration lock in `tx`, creates what is missing (the schema, the tracking table),
/// and compares what is recorded with the files: the start of every change.
fn locked_status(
    tx: &mut postgres::Transaction<'_>,
    migrations: &[Migration],
    opts: &Options,
    on_wait: &mut dyn FnMut(Option<&str>),
) -> Result<Status, Error> {
    lock::acquire(tx, opts.table.lock_key(), opts.lock_wait, on_wait)?;
    // The schema the migrations run in, which may differ from the tracking table's own.
    if let Some(schema) = &opts.schema {
        let exists = super::status::simple_rows(tx, &format!("SELECT to_regnamespace({}) IS NOT NULL", quote_literal(&quote_ident(schema))))
            .map_err(db_err(format!("cannot look for schema {schema}")))?;
        if exists.first().and_then(|r| r.first()).and_then(|v| v.as_deref()) != Some("t") {
            tx.batch_execute(&format!("CREATE SCHEMA {}", quote_ident(schema)))
                .map_err(db_err(format!("cannot create schema {schema}")))?;
        }
    }
    let applied = match read_applied(tx, &opts.table)? {
        Some(applied) => applied,
        None => {
            // Only when missing: CREATE ... IF NOT EXISTS needs CREATE privilege even when the
            // table exists.
            tx.batch_execute(&opts.table.create_sql())
                .map_err(db_err(format!("cannot create the tracking table {}", opts.table)))?;
            Vec::new()
        }
    };
    Ok(Status::compare(Some(applied), migrations))
}

/// Records `target` (None: base) without running any SQL. `purge` clears the records first.
pub fn stamp(
    client: &mut postgres::Client,
    migrations: &[Migration],
    target: Option<Revision>,
    purge: bool,
    opts: &Options,
) -> Result<Status, Error> {
    let mut tx = begin(client, opts)?;
    let mut status = locked_status(&mut tx, migrations, opts, &mut |_| {})?;
    if purge {
        tx.batch_execute(&format!("DELETE FROM {}", opts.table.sql())).map_err(db_err("cannot purge the tracking table"))?;
        status = Status::compare(Some(Vec::new()), migrations);
    }
    if !status.divergences.is_empty() {
        return Err(Error::Diverged(status.divergences));
    }
    if let (Some(current), true) = (status.current, target < status.current) {
        return Err(Error::Refused(format!(
            "the database is recorded at {current}, after {}: use `stamp --purge` to record a lower revision",
            target.map_or("base".to_string(), |t| t.to_string())
        )));
    }
    let from = status.current.map_or(0, |r| r.number() as usize);
    let to = target.map_or(0, |r| r.number() as usize);
    for m in &migrations[from..to] {
        tx.batch_execute(&opts.table.insert_sql(m, true)).map_err(db_err(format!("cannot record {}", m.label())))?;
    }
    let status = Status::compare(read_applied(&mut tx, &opts.table)?, migrations);
    tx.commit().map_err(db_err("cannot commit the stamp"))?;
    Ok(status)
}
