//! `upgrade` and `stamp`.

use std::time::{Duration, Instant};

use super::status::read_applied;
use super::{begin, db_err, lock, Divergence, Error, MigrationFailure, Options};
use crate::state::{plan_stamp, plan_upgrade, Revised, Status};
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
    /// An applied file upstream revised in place: its revised text is recorded (and was run
    /// again, `rerun`, where the earlier text left the schema different).
    Revised { revised: &'a Revised, rerun: bool },
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

/// Brings one set of the database to `target` (a revision of `migrations`; `None` is base),
/// one transaction per migration. What runs is what [`plan_upgrade`] says, on the status read
/// under the migration lock.
pub fn upgrade(
    client: &mut postgres::Client,
    migrations: &[Migration],
    target: Option<Revision>,
    opts: &Options,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<UpgradeReport, Error> {
    assert!(target.is_none_or(|t| t.index() < migrations.len()), "target is not in the set");
    let key = opts.table.lock_key();
    let set = opts.set_name();
    // Step 1, under the lock: create or bring the tracking table up to date, compare, plan,
    // accept changed files.
    let (start, plan) = {
        let mut tx = begin(client, opts)?;
        let status = locked_status(&mut tx, migrations, opts, &mut |holder| on_event(Event::Waiting { holder }))?;
        let plan = plan_upgrade(migrations, &status, target, &opts.accept_changed).map_err(|r| Error::refused(r, opts))?;
        for d in &plan.accept {
            if let Divergence::Changed { revision, recorded, actual, file_name } = d {
                tx.batch_execute(&format!(
                    "UPDATE {} SET checksum = {} WHERE set_name = {} AND file_name = {}",
                    opts.table.sql(),
                    quote_literal(&actual.to_string()),
                    quote_literal(set),
                    quote_literal(file_name)
                ))
                .map_err(db_err("cannot record the accepted checksum"))?;
                on_event(Event::Accepted { migration: &migrations[revision.index()], recorded });
            }
        }
        for r in &plan.revised {
            let m = &migrations[r.revision.index()];
            let rerun = r.needs_rerun(opts.schema.as_deref());
            if rerun {
                tx.batch_execute(&format!("SET LOCAL lock_timeout = {}", opts.lock_timeout.as_millis()))
                    .map_err(db_err("cannot set lock_timeout"))?;
                run_file(&mut tx, m, opts, status.current).map_err(Error::Failed)?;
            }
            tx.batch_execute(&format!(
                "UPDATE {} SET checksum = {} WHERE set_name = {} AND file_name = {}",
                opts.table.sql(),
                quote_literal(&m.checksum.to_string()),
                quote_literal(set),
                quote_literal(&m.file_name)
            ))
            .map_err(db_err("cannot record the revised checksum"))?;
            on_event(Event::Revised { revised: r, rerun });
        }
        tx.commit().map_err(db_err("cannot commit the tracking table"))?;
        (status.current, plan.run)
    };

    let mut report = UpgradeReport { from: start, to: start, applied: Vec::new() };
    for m in plan {
        let mut tx = begin(client, opts)?;
        lock::acquire(&mut tx, key, opts.lock_wait, &mut |holder| on_event(Event::Waiting { holder }))?;
        // Re-read under the lock: a replica may have applied it while we waited, and one
        // deploying other files must not pass for us.
        let done = super::status::simple_rows(
            &mut tx,
            &format!(
                "SELECT checksum FROM {} WHERE set_name = {} AND file_name = {}",
                opts.table.sql(),
                quote_literal(set),
                quote_literal(&m.file_name)
            ),
        )
        .map_err(db_err("cannot read the tracking table"))?;
        if let Some(row) = done.first() {
            let checksum = row[0].clone().unwrap_or_default();
            if checksum != m.checksum.to_string() && !opts.accept_changed.accepts(m.revision) {
                return Err(Error::Diverged {
                    set: opts.set.clone(),
                    divergences: vec![Divergence::Changed {
                        revision: m.revision,
                        file_name: m.file_name.to_string(),
                        recorded: checksum,
                        actual: m.checksum,
                    }],
                });
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
            return Err(Error::Failed(failure));
        }
        tx.batch_execute(&opts.table.insert_sql(set, m, false)).map_err(db_err(format!("cannot record {}", m.label())))?;
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
) -> Result<(), Box<MigrationFailure>> {
    let fail = |line: Option<usize>, message: String, sqlstate: Option<String>| Box::new(MigrationFailure {
        set: opts.set.clone(),
        revision: m.revision,
        file_name: m.file_name.to_string(),
        line,
        message,
        sqlstate,
        current,
    });
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
/// brings an older tracking table to the current layout, gives the unnamed set's rows to the
/// first set, and compares what is recorded with the files: the start of every change.
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
    let mut setup = opts.table.ensure_sql();
    if opts.claim_unnamed {
        setup.push('\n');
        setup.push_str(&opts.table.claim_sql(opts.set_name()));
    }
    tx.batch_execute(&setup).map_err(db_err(format!("cannot set up the tracking table {}", opts.table)))?;
    let applied = read_applied(tx, opts)?;
    Ok(Status::compare(applied, migrations))
}

/// Records one set at `target` (None: base) without running any SQL. `purge` clears that set's
/// records first.
pub fn stamp(
    client: &mut postgres::Client,
    migrations: &[Migration],
    target: Option<Revision>,
    purge: bool,
    opts: &Options,
) -> Result<Status, Error> {
    let mut tx = begin(client, opts)?;
    let set = opts.set_name();
    let status = locked_status(&mut tx, migrations, opts, &mut |_| {})?;
    let record = plan_stamp(migrations, &status, target, purge).map_err(|r| Error::refused(r, opts))?;
    if purge {
        tx.batch_execute(&format!("DELETE FROM {} WHERE set_name = {}", opts.table.sql(), quote_literal(set)))
            .map_err(db_err("cannot purge the tracking table"))?;
    }
    for m in record {
        tx.batch_execute(&opts.table.insert_sql(set, m, true)).map_err(db_err(format!("cannot record {}", m.label())))?;
    }
    let status = Status::compare(read_applied(&mut tx, opts)?, migrations);
    tx.commit().map_err(db_err("cannot commit the stamp"))?;
    Ok(status)
}
