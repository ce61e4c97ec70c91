//! `upgrade` and `stamp`.

use std::time::{Duration, Instant};

use super::status::read_applied;
use super::{db_err, lock, Divergence, Error, MigrationFailure, Options, Session};
use crate::state::{plan_stamp, plan_upgrade, Applied, Revised, Status};
use crate::lexer;
use crate::migration::{Migration, Revision};
use super::lock::{guard_failure, guard_sql, Guard, BEGIN};
use crate::tracking::{quote_ident, quote_literal};

/// Progress, for the caller to print as it likes.
#[derive(Debug)]
pub enum Event<'a> {
    /// Another process holds the migration lock; we wait (holder if visible).
    Waiting {
        /// Who holds it: pid, application, user, client address and transaction age; `None`
        /// when it had just let go or cannot be seen.
        holder: Option<&'a str>,
    },
    /// A changed file was accepted and its recorded checksum updated.
    Accepted {
        /// The changed file.
        migration: &'a Migration,
        /// The checksum recorded before, now replaced by the file's.
        recorded: &'a str,
    },
    /// An applied file upstream revised in place: its revised text is recorded (and was run
    /// again, `rerun`, where the earlier text left the schema different).
    Revised {
        /// The file and upstream's edit.
        revised: &'a Revised,
        /// Whether the revised file ran again.
        rerun: bool,
    },
    /// About to run these migrations, in one round trip: several small ones together, a slow
    /// or a `-- no-transaction` one alone. Each still has its own transaction and row.
    Applying {
        /// The migrations about to run, in order (at least one).
        migrations: &'a [&'a Migration],
    },
    /// It ran out of `lock_timeout`; tried again once the transactions holding its tables end
    /// (at most `after`; `attempt` of `of`).
    Retrying {
        /// The migration that ran out of `lock_timeout`, rolled back.
        migration: &'a Migration,
        /// Which retry this is, from 1.
        attempt: u32,
        /// How many retries `lock-retries` allows.
        of: u32,
        /// The longest it waits for those transactions (`lock-wait`) before this retry.
        after: Duration,
        /// The server's message.
        reason: &'a str,
    },
    /// A migration ran and was recorded.
    Applied {
        /// The migration.
        migration: &'a Migration,
        /// How long its transaction took on the server, as its tracking row records (wall-clock
        /// time for a `-- no-transaction` migration). `None` when that is not known: its end
        /// was the start of the transaction after it in the same round trip, which failed and
        /// took it back (another process's lock or record, or an error); the row's
        /// `duration_ms` stays NULL.
        duration: Option<Duration>,
    },
    /// Another process applied it while we waited for the lock.
    AppliedElsewhere {
        /// The migration, recorded with the same checksum (or an accepted one).
        migration: &'a Migration,
    },
}

/// What an `upgrade` of one set did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeReport {
    /// Where the set was when the upgrade started (`None`: base).
    pub from: Option<Revision>,
    /// Where it is now: the last migration applied, by this process or another.
    pub to: Option<Revision>,
    /// Revisions this process ran.
    pub applied: Vec<Revision>,
}

/// Brings every set of a generated module (`SETS`) to its head, in order, as `cargo
/// procrastinate upgrade` does: the same tracking table and lock, one transaction per migration.
/// What an application runs at start (a deploy box without cargo), as sqlx's `migrate!().run()`.
pub fn upgrade_sets(client: &mut dyn Session, sets: &[crate::SetDef], on_event: &mut dyn FnMut(Event<'_>)) -> Result<Vec<UpgradeReport>, Error> {
    let mut reports = Vec::with_capacity(sets.len());
    for (i, def) in sets.iter().enumerate() {
        let opts = Options::for_set(def, i == 0).map_err(Error::Refused)?;
        reports.push(upgrade(client, def.migrations, def.migrations.last().map(|m| m.revision), &opts, on_event)?);
    }
    Ok(reports)
}

/// Brings one set of the database to `target` (a revision of `migrations`; `None` is base),
/// one transaction per migration. What runs is what [`plan_upgrade`] says, on the status read
/// under the migration lock.
///
/// Round trips are few because deploys wait on them: after the one that takes the lock and
/// reads the tracking table, consecutive migrations share round trips, each still in its own
/// transaction with its guard and its row (see `run_batch`). Which one failed, and the line,
/// are found after the fact: the server's position in the batch, else the file run again
/// statement by statement in a transaction rolled back.
pub fn upgrade(
    client: &mut dyn Session,
    migrations: &[Migration],
    target: Option<Revision>,
    opts: &Options,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<UpgradeReport, Error> {
    upgrade_seen(client, migrations, target, opts, None, on_event)
}

/// How long a read before the lock stands for the table: a set found at its target returns
/// without the lock, which an older read (a `stamp --purge` since?) must not decide.
const SEEN_FRESH: Duration = Duration::from_secs(1);

/// [`upgrade`], given what a read of the tracking table without the lock found a moment ago
/// ([`Seen::read`], which a caller that needed the status first has done already): the same
/// read is not asked twice. A read of another table, or older than a second, is read again.
pub fn upgrade_seen(
    client: &mut dyn Session,
    migrations: &[Migration],
    target: Option<Revision>,
    opts: &Options,
    seen: Option<Seen>,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<UpgradeReport, Error> {
    let seen = match seen {
        Some(seen) if seen.table == opts.table.sql() && seen.at.elapsed() < SEEN_FRESH => seen,
        _ => Seen::read(client, opts),
    };
    let mut created = Vec::new();
    let mut finished = Vec::new();
    let set = opts.set.clone();
    let mut on_event = |e: Event<'_>| {
        crate::events::upgrade(set.as_deref(), &e);
        on_event(e)
    };
    let on_event: &mut dyn FnMut(Event<'_>) = &mut on_event;
    let mut result = upgrade_inner(client, migrations, target, opts, seen, on_event, &mut created, &mut finished);
    if let Err(e) = &result {
        crate::events::failed(opts.set.as_deref(), e);
    }
    if let Err(Error::Interrupted { set, at, .. }) = &mut result {
        // Where the set is, as the tracking table says after the cancel.
        *set = opts.set.clone();
        if let Ok(applied) = read_applied(client, opts) {
            *at = Status::compare(applied, migrations).current;
        }
    }
    if let Err(Error::Failed(_) | Error::Interrupted { .. }) = &result {
        // A first run that failed at once should not leave an empty tracking table behind, as
        // if something had been recorded: dropped under the lock, and only if nothing of any
        // set is in it.
        // Nor the schemas this run created for it, when they are empty again.
        let key = &opts.table.lock_key();
        let table = opts.table.sql();
        let schemas: String = created
            .iter()
            .map(|s| {
                format!(
                    " IF NOT EXISTS (SELECT FROM pg_class WHERE relnamespace = to_regnamespace({lit})) \
                     AND NOT EXISTS (SELECT FROM pg_type WHERE typnamespace = to_regnamespace({lit}) AND typtype <> 'c') \
                     AND NOT EXISTS (SELECT FROM pg_proc WHERE pronamespace = to_regnamespace({lit})) THEN DROP SCHEMA {ident}; END IF;",
                    lit = quote_literal(&quote_ident(s)),
                    ident = quote_ident(s)
                )
            })
            .collect();
        let _ = client.batch_execute(&format!(
            "{BEGIN};\n{};\nDO $cargo_procrastinate$ BEGIN IF to_regclass({}) IS NOT NULL AND NOT EXISTS (SELECT FROM {table}) THEN \
             DROP TABLE {table}; END IF;{schemas} END $cargo_procrastinate$;\nCOMMIT",
            guard_sql(key, &[], None),
            quote_literal(&table)
        ));
        let _ = client.batch_execute("ROLLBACK");
    }
    // Whatever the outcome, the rows of the migrations that committed get their durations.
    finish_rows(client, opts, &mut finished);
    result
}

/// Writes the durations and end times of the migrations in `finished` (which it empties) into
/// their rows, in one statement; a failure leaves them unknown (`NULL`), nothing else.
fn finish_rows(client: &mut dyn Session, opts: &Options, finished: &mut Vec<(String, u64, f64)>) {
    if finished.is_empty() {
        return;
    }
    // Only rows whose start and end the client read as numbers are here (`run_batch`).
    let done: Vec<(&str, u64, f64)> = finished.iter().map(|(f, ms, ended)| (f.as_str(), *ms, *ended)).collect();
    let _ = client.batch_execute(&opts.table.finish_rows_sql(opts.set_name(), &done));
    finished.clear();
}

/// How many finished migrations wait at most before their rows are completed.
const FINISH_EVERY: usize = 1024;

#[allow(clippy::too_many_arguments)]
fn upgrade_inner(
    client: &mut dyn Session,
    migrations: &[Migration],
    target: Option<Revision>,
    opts: &Options,
    seen: Seen,
    on_event: &mut dyn FnMut(Event<'_>),
    created: &mut Vec<String>,
    finished: &mut Vec<(String, u64, f64)>,
) -> Result<UpgradeReport, Error> {
    assert!(target.is_none_or(|t| t.index() < migrations.len()), "target is not in the set");
    let set = opts.set_name();
    // Step 0, without the lock or a transaction: a replica that finds nothing to do (another
    // replica did it, or is at it and finishes while this one waits) learns it from one read.
    let early = seen.early(migrations, target, opts);
    if let Early::Done(current) = early {
        return Ok(UpgradeReport { from: current, to: current, applied: Vec::new() });
    }
    // A table read in its current layout needs no setting up (nor its schemas created); a
    // missing one is created in plain DDL.
    // `plain`: step 1 may commit in the round trip of its read (below), unless the run gives the
    // unnamed set's rows to its set, a write a refusal must be able to undo (a missing table
    // may turn out to be there after all, created by another process meanwhile).
    let (table, plain) = match early {
        Early::Pending { plain } => (Table::Ready, plain && !opts.claim_unnamed),
        // A qualified table's missing schema reads as a missing table (42P01): those go through
        // the block that looks before it creates (CREATE SCHEMA needs the privilege even with
        // IF NOT EXISTS).
        Early::Missing { schema, plain } if opts.table.schema.is_none() => (Table::Missing { schema }, plain && !opts.claim_unnamed),
        _ => (Table::Unknown, false),
    };
    // Step 1, under the lock: create or bring the tracking table up to date, compare, plan,
    // accept changed files, record upstream's revised ones. When the read before the lock
    // planned nothing that needs the lock after the read, step 1 commits in the same round
    // trip: the table it may create is one the migrations need anyway, and the plan under the
    // lock can differ from that read only if another process recorded files meanwhile. Should
    // it then ask for something under the lock after all, step 1 runs again the usual way.
    let mut commit_early = plain;
    let (status, key, plan) = loop {
        let settled = &mut |c: &mut dyn Session| Ok(poll(c, migrations, target, opts, &opts.table.lock_key()));
        let Some((status, missing, key)) =
            locked_status_with(client, migrations, opts, &mut |holder| on_event(Event::Waiting { holder }), settled, table, commit_early)?
        else {
            let current = match nothing_to_do(client, migrations, target, opts) {
                Early::Done(current) => current,
                _ => None,
            };
            return Ok(UpgradeReport { from: current, to: current, applied: Vec::new() });
        };
        created.extend(missing);
        let plan = plan_upgrade(migrations, &status, target, &opts.accept_changed);
        match &plan {
            Ok(p) if commit_early && !(p.accept.is_empty() && p.revised.is_empty()) => commit_early = false,
            _ => break (status, key, plan),
        }
    };
    // From here on the lock's key is the number step 1 computed under the run's settings: the
    // same lock, without hashing its name again in every migration's guard.
    let key = &key;
    let plan = match plan {
        Ok(plan) => plan,
        Err(r) => {
            let _ = client.batch_execute("ROLLBACK");
            return Err(Error::refused(r, opts));
        }
    };
    // A file `new` wrote and nobody filled in yet never runs.
    if let Some(m) = plan.gaps.iter().copied().chain(plan.run.iter()).find(|m| m.not_written()) {
        let _ = client.batch_execute("ROLLBACK");
        return Err(Error::Refused(format!(
            "{} {} is not written yet: it still holds `{}`, the line `new` writes; write its SQL and remove that line (nothing was changed)",
            opts.label(Some(m.revision)),
            m.file_name,
            crate::NOT_WRITTEN
        )));
    }
    let record = |m: &Migration| {
        format!(
            "UPDATE {} SET checksum = {} WHERE set_name = {} AND file_name = {}",
            opts.table.sql(),
            quote_literal(&m.checksum.to_string()),
            quote_literal(set),
            quote_literal(&m.file_name)
        )
    };
    for d in &plan.accept {
        if let Divergence::Changed { revision, recorded, .. } = d {
            let m = &migrations[revision.index()];
            in_tx(client, &record(m), "cannot record the accepted checksum")?;
            on_event(Event::Accepted { migration: m, recorded });
        }
    }
    for r in &plan.revised {
        let m = &migrations[r.revision.index()];
        let rerun = r.needs_rerun(opts.schema.as_deref());
        if rerun {
            // Under the lock and settings of step 1's transaction.
            run_again(client, m, opts, status.current)?;
        }
        in_tx(client, &record(m), "cannot record the revised checksum")?;
        on_event(Event::Revised { revised: r, rerun });
    }
    if !commit_early {
        client.batch_execute("COMMIT").map_err(|e| db_err(client, "cannot commit the tracking table")(e))?;
    }

    let mut report = UpgradeReport { from: status.current, to: status.current, applied: Vec::new() };
    let interrupted = || opts.interrupt.as_ref().is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst));
    // How many migrations go in the next round trip: `FIRST_BATCH` at first, four times as many
    // after a batch that ran quickly, one again after a slow one. Small files (the common case)
    // share round trips; after a slow migration the next ones run nearly alone, so progress
    // stays meaningful (Ctrl-C cancels within a batch all the same).
    let mut batch_len = FIRST_BATCH;
    let mut waiter: Option<lock::Waiter> = None;
    let mut retries = 0;
    // Files from a merged branch first (out of order, each alone), then the run in order.
    let queue: Vec<&Migration> = plan.gaps.iter().copied().chain(plan.run.iter()).collect();
    let mut rest: &[&Migration] = &queue;
    let advance = |to: &mut Option<Revision>, r: Revision| *to = (*to).max(Some(r));
    while let Some(&m) = rest.first() {
        if interrupted() {
            return Err(Error::Interrupted { set: opts.set.clone(), stopped: None, at: report.to, outside_transaction: false });
        }
        if m.no_transaction() {
            on_event(Event::Applying { migrations: &rest[..1] });
            let started = Instant::now();
            match run_outside_transaction(client, m, opts, key, report.to, &interrupted, on_event)? {
                Some(checksum) => {
                    applied_elsewhere(m, checksum, opts)?;
                    on_event(Event::AppliedElsewhere { migration: m });
                }
                None => {
                    on_event(Event::Applied { migration: m, duration: Some(started.elapsed()) });
                    report.applied.push(m.revision);
                }
            }
            advance(&mut report.to, m.revision);
            rest = &rest[1..];
            continue;
        }
        let mut bytes = 0;
        let n = rest
            .iter()
            .enumerate()
            .take(batch_len)
            .take_while(|(k, m)| {
                bytes += m.sql.len();
                // Consecutive revisions only: a file run out of order goes alone.
                let next = *k == 0 || rest[k - 1].revision.number() + 1 == m.revision.number();
                next && !m.no_transaction() && (bytes <= BATCH_BYTES || bytes == m.sql.len())
            })
            .count();
        let batch = &rest[..n];
        on_event(Event::Applying { migrations: batch });
        let started = Instant::now();
        let ran = run_batch(client, batch, opts, key, report.to)?;
        finished.extend(ran.finished);
        if finished.len() >= FINISH_EVERY {
            finish_rows(client, opts, finished);
        }
        let done = ran.durations.len();
        for (m, duration) in batch.iter().zip(ran.durations) {
            on_event(Event::Applied { migration: m, duration });
            report.applied.push(m.revision);
            advance(&mut report.to, m.revision);
        }
        rest = &rest[done..];
        if done > 0 {
            (waiter, retries) = (None, 0);
        }
        match ran.end {
            End::Done => {
                let took = started.elapsed();
                batch_len = if took < FAST_BATCH { (batch_len * 4).min(BATCH_MAX) } else if took > SLOW_BATCH { 1 } else { batch_len };
            }
            End::Split(k) => batch_len = k,
            End::Busy => {
                if interrupted() {
                    return Err(Error::Interrupted { set: opts.set.clone(), stopped: None, at: report.to, outside_transaction: false });
                }
                // The next try comes when a poll outside any transaction finds the lock free, or
                // a read says the others took the set where this run goes.
                waiter.get_or_insert_with(|| lock::Waiter::new(opts.lock_wait, opts.interrupt.clone())).until_free(
                    client,
                    key,
                    &mut |holder| on_event(Event::Waiting { holder }),
                    &mut |c| Ok(poll(c, migrations, target, opts, key)),
                )?;
                // What the others recorded meanwhile is passed over from one read, rather than
                // found one claim (and one rollback) at a time.
                let recorded: std::collections::HashMap<String, String> = match Seen::read(client, opts).applied(opts) {
                    Some(Some(rows)) => rows.into_iter().map(|a| (a.file_name, a.checksum)).collect(),
                    _ => Default::default(),
                };
                while let Some(&m) = rest.first() {
                    let Some(checksum) = recorded.get(&*m.file_name).filter(|c| !c.starts_with(crate::tracking::CLAIM)) else { break };
                    applied_elsewhere(m, checksum.clone(), opts)?;
                    on_event(Event::AppliedElsewhere { migration: m });
                    advance(&mut report.to, m.revision);
                    rest = &rest[1..];
                }
            }
            End::Recorded(checksum) => {
                let m = rest[0];
                applied_elsewhere(m, checksum, opts)?;
                on_event(Event::AppliedElsewhere { migration: m });
                advance(&mut report.to, m.revision);
                rest = &rest[1..];
            }
            End::Failed(f) => {
                let m = rest[0];
                match f.sqlstate.as_deref() {
                    // A cancel request from the signal handler: say so, not "query canceled".
                    Some("57014") if interrupted() => {
                        return Err(Error::Interrupted { set: opts.set.clone(), stopped: Some((m.revision, m.file_name.to_string())), at: report.to, outside_transaction: false });
                    }
                    // Ran out of lock_timeout: busy traffic often lets go; try again, bounded,
                    // that migration alone.
                    // The next try waits, without asking for any lock, until the transactions
                    // holding its tables now have ended (at most `lock-wait`): retrying at once
                    // would queue another ACCESS EXCLUSIVE request in front of the
                    // application's readers for as long as `lock_timeout`, each time.
                    Some("55P03") if retries < opts.lock_retries && !interrupted() => {
                        retries += 1;
                        on_event(Event::Retrying { migration: m, attempt: retries, of: opts.lock_retries, after: opts.lock_wait, reason: &f.message });
                        let tables = lock::strong_lock_targets(&m.sql);
                        if tables.is_empty() {
                            std::thread::sleep(Duration::from_secs(1 << (retries - 1).min(5)).min(Duration::from_secs(30)));
                        } else {
                            lock::until_holders_end(client, &tables, opts.schema.as_deref(), opts.lock_wait, opts.interrupt.as_ref())?;
                        }
                        batch_len = 1;
                    }
                    _ => return Err(Error::Failed(f)),
                }
            }
        }
    }
    Ok(report)
}

/// Another process recorded `m` with `checksum` while we waited: fine when that is this file
/// (or an accepted change of it), a divergence otherwise.
fn applied_elsewhere(m: &Migration, checksum: String, opts: &Options) -> Result<(), Error> {
    if m.matches(&checksum) || opts.accept_changed.accepts(m.revision) {
        return Ok(());
    }
    Err(Error::Diverged {
        set: opts.set.clone(),
        divergences: vec![Divergence::Changed { revision: m.revision, file_name: m.file_name.to_string(), recorded: checksum, actual: m.checksum }],
    })
}

/// Batches: at most this many migrations, and this much SQL unless one file alone is larger.
const BATCH_MAX: usize = 256;
/// The first round trip's migrations: each round trip costs 0.3 to 0.9 ms of idle server and
/// client, and a first run of a whole set is mostly small files (Procrastinate's 38 take one
/// round trip instead of four, 22 ms of server time); the next batch after a slow one holds
/// one migration again.
const FIRST_BATCH: usize = 64;
const BATCH_BYTES: usize = 1 << 20;
/// A batch quicker than this doubles the next; one slower than `SLOW_BATCH` makes it one.
const FAST_BATCH: Duration = Duration::from_millis(100);
const SLOW_BATCH: Duration = Duration::from_secs(1);
/// Column names that tell the rows of our statements from a file's output: each claim's
/// (the file, its start), the batch's last statement's (its end), and the durations the server
/// completes after an error.
const CLAIM_MARK: &str = "cargo_procrastinate_claimed";
const ENDED_MARK: &str = "cargo_procrastinate_ended";
const APPLIED_MARK: &str = "cargo_procrastinate_applied";
/// Session setting each committed transaction of a batch leaves behind (`<nonce>:<index>`), so
/// that after an error the same round trip as the rollback says which of the batch committed.
const DONE_SETTING: &str = "cargo_procrastinate.done";

/// What a batch did: the server's duration of each migration that committed, in order, then
/// how the batch ended (at the migration after those).
struct Ran {
    durations: Vec<Option<Duration>>,
    /// Each migration that committed, as the client read it back: its file, duration in
    /// milliseconds and end (Unix seconds), for [`finish_rows`] (empty when the server
    /// completed the rows itself, after an error).
    finished: Vec<(String, u64, f64)>,
    end: End,
}

/// How a batch ended.
enum End {
    /// Every migration ran and is recorded.
    Done,
    /// Another session holds the migration lock: rolled back, to be tried again.
    Busy,
    /// Already recorded, with this checksum: rolled back.
    Recorded(String),
    /// The migration failed and was rolled back.
    Failed(Box<MigrationFailure>),
    /// Nothing ran: the server could not parse the migration at this index of the batch. The
    /// ones before it are to run without it.
    Split(usize),
}

/// Runs `batch` in one round trip, each migration in its own transaction: BEGIN, the settings
/// and the batch's marker (`SET`), the claim (one statement that takes the lock and writes the
/// file's row, which the primary key refuses when another process recorded the file while we
/// waited, whatever the statement's snapshot), the file whole, COMMIT. Then one statement
/// clears the marker and reads the time, which ends the last file's duration (each other one
/// ends at the next one's start). The claim stops the batch before the file when the lock is
/// taken or the file is recorded; an error in a file stops it there, the transactions before
/// it committed. Which of them did is found after the fact, with the rollback, and so is the
/// line of an error the server gives no position for: nothing is paid for either on success.
fn run_batch(
    client: &mut dyn Session,
    batch: &[&Migration],
    opts: &Options,
    key: &str,
    current: Option<Revision>,
) -> Result<Ran, Error> {
    static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nonce = format!("{}-{}", std::process::id(), NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let set = opts.set_name();
    // A bounded session finds the batch on a second connection by its first words (see
    // `db::Conn`): `pg_stat_activity.query` shows them while it runs, and after.
    let mut sql = client.tag().map(|t| format!("{t}\n")).unwrap_or_default();
    // Where each file starts in the batch, in characters (the server's error position counts
    // characters from 1 over the whole batch).
    let mut starts = Vec::with_capacity(batch.len());
    let mut ends = Vec::with_capacity(batch.len());
    let mut chars = sql.chars().count();
    for (i, m) in batch.iter().enumerate() {
        let marker = format!("{nonce}:{i}");
        let claim = lock::claim_sql(key, &file_settings(opts, m), (DONE_SETTING, &marker), &|stamped| opts.table.start_row_sql(set, m, stamped, CLAIM_MARK));
        let prefix = format!("{BEGIN};\n{claim};\n");
        chars += prefix.chars().count();
        starts.push(chars);
        // The newline ends a last line that is a comment; the `;` a last statement without one.
        const TAIL: &str = "\n;\nCOMMIT;\n";
        chars += m.sql.chars().count();
        ends.push(chars);
        chars += TAIL.chars().count();
        sql.push_str(&prefix);
        sql.push_str(&m.sql);
        sql.push_str(TAIL);
    }
    let files: Vec<&str> = batch.iter().map(|m| &*m.file_name).collect();
    // The marker is session state: cleared before the batch gives the session back; and the
    // time, which ends the last migration's duration.
    sql.push_str(&format!("SELECT set_config('{DONE_SETTING}', '', false) AS {ENDED_MARK}, date_part('epoch', clock_timestamp())"));
    let started = Instant::now();
    client.working(true);
    let sent = client.simple_query(&sql);
    client.working(false);
    let e = match sent {
        Ok(messages) => {
            let (starts, ended) = claimed(&messages);
            if starts.len() != batch.len() || starts.iter().zip(&files).any(|((f, _), g)| f != g) {
                return Err(Error::Refused(format!("the server returned {} tracking rows for {} migrations", starts.len(), batch.len())));
            }
            // Each migration ends where the next one starts; the last one where the batch did.
            let ends = starts.iter().skip(1).map(|(_, t)| *t).chain(std::iter::once(ended.unwrap_or(f64::NAN)));
            let timed: Vec<Option<(String, u64, f64)>> = starts
                .iter()
                .zip(ends)
                .map(|((f, start), end)| (start.is_finite() && end.is_finite()).then(|| (f.clone(), ((end - start) * 1e3).round().max(0.0) as u64, end)))
                .collect();
            let durations = timed.iter().map(|t| t.as_ref().map(|(_, ms, _)| Duration::from_millis(*ms))).collect();
            return Ok(Ran { durations, finished: timed.into_iter().flatten().collect(), end: End::Done });
        }
        Err(e) => e,
    };
    let took = started.elapsed();
    // The aborted transaction keeps its backend, also behind PgBouncer, so the rollback and
    // the reads that follow it in the same message see this batch's session.
    let quoted: Vec<String> = files.iter().map(|f| quote_literal(f)).collect();
    let after = super::status::statements(
        client,
        &format!(
            "ROLLBACK;\nSELECT current_setting('{DONE_SETTING}', true), set_config('{DONE_SETTING}', '', false);\n\
             SELECT file_name, checksum FROM {} WHERE set_name = {} AND file_name IN ({})",
            opts.table.sql(),
            quote_literal(set),
            quoted.join(", ")
        ),
    );
    let Ok(after) = after else {
        // The connection is gone: which of the batch committed is unknown here; the caller may
        // read it on a new connection.
        let mut failure = MigrationFailure::new(opts, batch[0], &e, None, current);
        failure.outcome = super::Outcome::Unknown { read: None };
        failure.abandoned = client.abandoned().cloned();
        if batch.len() > 1 {
            failure.message.push_str(&format!(
                " (it was sent together with the {} migrations after it, up to {}, any of which may have committed)",
                batch.len() - 1,
                batch[batch.len() - 1].file_name
            ));
        }
        return Ok(Ran { durations: Vec::new(), finished: Vec::new(), end: End::Failed(Box::new(failure)) });
    };
    let marker = after.get(1).and_then(|rows| rows.first()).and_then(|r| r[0].clone()).unwrap_or_default();
    let done = marker.strip_prefix(&format!("{nonce}:")).and_then(|i| i.parse::<usize>().ok()).map_or(0, |i| i + 1);
    let recorded: std::collections::HashMap<String, String> =
        after.get(2).into_iter().flatten().filter_map(|r| Some((r[0].clone()?, r[1].clone()?))).collect();
    // The files that committed get their durations, each up to the next one's start; the last
    // one's end is not known (the start of what followed went with its rollback): it stays
    // unknown (NULL, and `None` in its event).
    let completed = match done {
        0 | 1 => Default::default(),
        _ => client.simple_query(&opts.table.durations_sql(set, &files[..done], APPLIED_MARK)).map(|m| applied_durations(&m)).unwrap_or_default(),
    };
    let durations = files[..done].iter().map(|f| completed.get(*f).copied()).collect();
    let db = e.as_db_error();
    // The server parses the whole batch before running any of it: a syntax error in a later
    // file stops the batch before the files in front of it ran. Those run first, as they would
    // one at a time; then that file fails on its own.
    let parsed_later = match db.and_then(|d| d.position()) {
        Some(postgres::error::ErrorPosition::Original(p)) => {
            let at = *p as usize - 1;
            (0..batch.len()).find(|&k| starts[k] <= at && at <= ends[k] + 1).filter(|&k| k > done)
        }
        _ => None,
    };
    let end = if done >= batch.len() {
        // All committed; what failed came after them (completing the rows, clearing the marker).
        End::Done
    } else if let Some(k) = parsed_later {
        End::Split(k)
    } else if let Some(Guard::Busy) = db.and_then(guard_failure) {
        End::Busy
    } else if let Some(checksum) = recorded.get(&*batch[done].file_name) {
        // Our own row for it went with the rollback: this one is another process's, committed
        // while we waited (the claim's primary key said so), or between a failure of ours and
        // the rollback's read (then the file is applied all the same).
        End::Recorded(checksum.clone())
    } else {
        let at = done.checked_sub(1).map_or(current, |i| Some(batch[i].revision));
        End::Failed(failure(client, batch[done], &e, starts[done], took, opts, at))
    };
    Ok(Ran { durations, finished: Vec::new(), end })
}

/// Each claim's file and start (Unix seconds), in order, and the batch's end.
fn claimed(messages: &[postgres::SimpleQueryMessage]) -> (Vec<(String, f64)>, Option<f64>) {
    let mut starts = Vec::new();
    let mut ended = None;
    for m in messages {
        if let postgres::SimpleQueryMessage::Row(r) = m {
            let second = || r.get(1).and_then(|t| t.parse::<f64>().ok());
            match r.columns().first().map(|c| c.name()) {
                Some(CLAIM_MARK) => starts.push((r.get(0).unwrap_or_default().to_string(), second().unwrap_or(f64::NAN))),
                Some(ENDED_MARK) => ended = second(),
                _ => {}
            }
        }
    }
    (starts, ended)
}

/// The duration of each file a batch completed, by file name.
fn applied_durations(messages: &[postgres::SimpleQueryMessage]) -> std::collections::HashMap<String, Duration> {
    messages
        .iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) if r.columns().first().is_some_and(|c| c.name() == APPLIED_MARK) => {
                Some((r.get(0)?.to_string(), Duration::from_millis(r.get(1).and_then(|d| d.parse().ok()).unwrap_or(0))))
            }
            _ => None,
        })
        .collect()
}

/// A `-- no-transaction` migration (one statement, such as `CREATE INDEX CONCURRENTLY`):
/// claimed under the lock with a `claimed:<pid>` row, so other replicas wait for it instead of
/// running it too; run alone, outside any transaction (and holding none, so CONCURRENTLY waits
/// for nobody of ours); then recorded. On failure the claim is removed and the message says
/// what may be left behind. `Some(checksum)`: someone else had applied it.
fn run_outside_transaction(
    client: &mut dyn Session,
    m: &Migration,
    opts: &Options,
    key: &str,
    current: Option<Revision>,
    interrupted: &dyn Fn() -> bool,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Option<String>, Error> {
    let set = opts.set_name();
    let table = opts.table.sql();
    let guard = guard_sql(key, &opts.local_settings(), Some((&opts.table, set, &m.file_name)));
    let claim = format!("{BEGIN};\n{guard};\n{} RETURNING checksum;\nCOMMIT", opts.table.claim_row_sql(set, m));
    let mut waiter = lock::Waiter::new(opts.lock_wait, opts.interrupt.clone());
    // The claim's own value (`claimed:<pid>`): behind a pool, later statements may reach
    // another backend, so it is matched as written, not as pg_backend_pid() would say.
    let claimed = loop {
        let e = match super::status::statements(client, &claim) {
            Ok(results) => break results.into_iter().flatten().flatten().flatten().find(|v| v.starts_with(crate::tracking::CLAIM)).unwrap_or_default(),
            Err(e) => e,
        };
        let _ = client.batch_execute("ROLLBACK");
        match e.as_db_error().and_then(guard_failure) {
            Some(Guard::Recorded(recorded)) if !recorded.starts_with(crate::tracking::CLAIM) => return Ok(Some(recorded)),
            Some(Guard::Recorded(recorded)) => {
                // Another session claimed it: wait while it lives, take over when it is gone.
                let pid = recorded.trim_start_matches(crate::tracking::CLAIM);
                let alive = super::status::simple_rows(client, &format!("SELECT 1 FROM pg_stat_activity WHERE pid = {}", pid.parse::<i32>().unwrap_or(0)))
                    .map_err(|e| db_err(client, "cannot see who runs the migration")(e))?;
                if alive.is_empty() {
                    // Its process is gone. Did the file finish before it died? Then running it
                    // again fails ("already exists"): say what it made, and how to record it.
                    match what_it_made(client, m) {
                        Some(Made::Valid(index)) => {
                            return Err(Error::Refused(format!(
                                "{} ({}) was claimed by a process that is gone (`{recorded}`), and what it creates exists and is \
                                 valid: index {index}. It ran to completion but was not recorded; record it with \
                                 `cargo procrastinate stamp --claimed {}` (which checks that again), then `upgrade`",
                                opts.label(Some(m.revision)),
                                m.file_name,
                                opts.label(Some(m.revision)),
                            )))
                        }
                        Some(Made::Invalid(index)) => {
                            return Err(Error::Refused(format!(
                                "{} ({}) was claimed by a process that is gone (`{recorded}`), and left index {index} INVALID (its \
                                 build was cut off): `DROP INDEX CONCURRENTLY {index};`, then `upgrade` builds it again",
                                opts.label(Some(m.revision)),
                                m.file_name,
                            )))
                        }
                        None => {}
                    }
                    client
                        .batch_execute(&format!(
                            "DELETE FROM {table} WHERE set_name = {} AND file_name = {} AND checksum = {}",
                            quote_literal(set),
                            quote_literal(&m.file_name),
                            quote_literal(&recorded)
                        ))
                        .map_err(|e| db_err(client, "cannot remove an abandoned claim")(e))?;
                    continue;
                }
            }
            Some(Guard::Busy) => {}
            Some(Guard::Standby | Guard::ReadOnly) | None => return Err(db_err(client, format!("cannot claim {}", m.label()))(e)),
        }
        if interrupted() {
            return Err(Error::Interrupted { set: opts.set.clone(), stopped: None, at: current, outside_transaction: false });
        }
        waiter.pause(client, key, &mut |holder| on_event(Event::Waiting { holder }))?;
    };
    let where_ = format!("set_name = {} AND file_name = {} AND checksum = {}", quote_literal(set), quote_literal(&m.file_name), quote_literal(&claimed));
    let started = Instant::now();
    // Tagged too, so that a second connection can find it; the error position skips the tag.
    let tagged = client.tag().map(|t| format!("{t}\n"));
    let skip = tagged.as_ref().map_or(0, |t| t.chars().count());
    client.working(true);
    let ran = client.batch_execute(&format!("{}{}", tagged.unwrap_or_default(), m.sql));
    client.working(false);
    if let Err(e) = ran {
        let _ = client.batch_execute(&format!("DELETE FROM {table} WHERE {where_}"));
        if e.code().map(|c| c.code()) == Some("57014") && interrupted() {
            return Err(Error::Interrupted { set: opts.set.clone(), stopped: Some((m.revision, m.file_name.to_string())), at: current, outside_transaction: true });
        }
        let statement = lexer::statements(&m.sql)
            .ok()
            .and_then(|s| s.first().map(|st| (st.span.start, false)));
        let mut failure =
            MigrationFailure::new(opts, m, &e, position(&e, skip, &m.sql).or(statement), current);
        failure.outcome = if client.is_closed() { super::Outcome::Unknown { read: None } } else { super::Outcome::NotRecorded };
        failure.abandoned = client.abandoned().cloned();
        failure.message.push_str(
            " (it ran outside a transaction, so it may have left something behind: a CREATE INDEX \
             CONCURRENTLY that fails leaves an INVALID index; find it with `SELECT indexrelid::regclass FROM \
             pg_index WHERE NOT indisvalid`, DROP INDEX CONCURRENTLY it, then `upgrade` again)",
        );
        return Err(Error::Failed(Box::new(failure)));
    }
    let took = started.elapsed().as_millis();
    client
        .batch_execute(&format!(
            "UPDATE {table} SET checksum = {}, duration_ms = {took}, applied_at = now() WHERE {where_}",
            quote_literal(&m.checksum.to_string())
        ))
        .map_err(|e| db_err(client, format!("cannot record {}", m.label()))(e))?;
    Ok(None)
}

/// What a `-- no-transaction` file's index is now, when its one statement creates one.
enum Made {
    Valid(String),
    Invalid(String),
}

/// The index a `-- no-transaction` file creates, if it exists: valid or not (looked up as the
/// file itself resolves names, by the session's `search_path`).
fn what_it_made(client: &mut dyn Session, m: &Migration) -> Option<Made> {
    let statement = lexer::statements(&m.sql).ok()?.into_iter().next()?;
    let index = crate::adopt::created_index(&statement.head)?;
    let sql = format!(
        "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass({})",
        quote_literal(&quote_ident(&index))
    );
    let rows = super::status::simple_rows(client, &sql).ok()?;
    let valid = rows.first()?.first()?.as_deref()? == "t";
    Some(if valid { Made::Valid(index) } else { Made::Invalid(index) })
}

/// What a `downgrade` of one set did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DowngradeReport {
    /// Where the set was (`None`: base).
    pub from: Option<Revision>,
    /// Where it is now.
    pub to: Option<Revision>,
    /// The revisions undone, in the order they were.
    pub reverted: Vec<Revision>,
}

/// Takes one set of the database down to `target` (`None`: base): each migration after it,
/// last first, has its down file run and its tracking row removed, in a transaction of its own
/// under the migration lock. What runs is what [`crate::state::plan_downgrade`] says, on the
/// status read under the lock; `force` accepts files changed since they were applied.
/// `on_undone` is told of each migration undone, with how long it took.
pub fn downgrade(
    client: &mut dyn Session,
    migrations: &[Migration],
    target: Option<Revision>,
    force: bool,
    opts: &Options,
    on_undone: &mut dyn FnMut(&Migration, Duration),
) -> Result<DowngradeReport, Error> {
    let key = &opts.table.lock_key();
    let (set, table) = (opts.set_name(), opts.table.sql());
    let (status, _) = locked_status(client, migrations, opts, &mut |_| {}, &mut |_| Ok(lock::Poll::Ask))?.expect("held: nothing settles it");
    let undo = match crate::state::plan_downgrade(migrations, &status, target, force) {
        Ok(undo) => undo,
        Err(r) => {
            let _ = client.batch_execute("ROLLBACK");
            return Err(Error::refused(r, opts));
        }
    };
    client.batch_execute("COMMIT").map_err(|e| db_err(client, "cannot commit the tracking table")(e))?;
    let mut report = DowngradeReport { from: status.current, to: status.current, reverted: Vec::new() };
    for m in undo {
        let down = m.down.as_deref().expect("the planner checked");
        let row = format!("set_name = {} AND file_name = {}", quote_literal(set), quote_literal(&m.file_name));
        let guard = guard_sql(key, &opts.local_settings(), None);
        let prefix = format!(
            "{BEGIN};\n{guard};\nSELECT current_setting('cargo_procrastinate.undone elsewhere') WHERE NOT EXISTS (SELECT FROM {table} WHERE {row});\n"
        );
        let sql = format!("{prefix}{down}\n;\nDELETE FROM {table} WHERE {row};\nCOMMIT");
        let started = Instant::now();
        if let Err(e) = client.batch_execute(&sql) {
            let took = started.elapsed();
            let _ = client.batch_execute("ROLLBACK");
            // The failure points into the down file.
            let as_file = Migration {
                file_name: format!("{}{}", m.file_name.trim_end_matches(".sql"), crate::DOWN_SUFFIX).into(),
                sql: down.to_string().into(),
                down: None,
                ..m.clone()
            };
            let mut failure = failure(client, &as_file, &e, prefix.chars().count(), took, opts, report.to);
            failure.message.push_str(&format!(" (undoing {}: rolled back, it stays applied)", opts.label(Some(m.revision))));
            return Err(Error::Failed(failure));
        }
        on_undone(m, started.elapsed());
        report.reverted.push(m.revision);
        report.to = m.revision.number().checked_sub(1).filter(|n| *n > 0).map(Revision::new);
    }
    Ok(report)
}

/// Records the new names of files recorded under another name with the same checksum (a
/// branch merge renamed them), under the migration lock: each row keeps its checksum and takes
/// the file's name and revision. What `repair` does; returns `(recorded, now)` pairs.
pub fn repair(client: &mut dyn Session, migrations: &[Migration], opts: &Options) -> Result<Vec<(String, String)>, Error> {
    let table = opts.table.sql();
    let (status, _) = locked_status(client, migrations, opts, &mut |_| {}, &mut |_| Ok(lock::Poll::Ask))?.expect("held: nothing settles it");
    let mut renamed = Vec::new();
    let mut sql = Vec::new();
    for d in &status.divergences {
        if let Divergence::Renamed { recorded, file_name, same_checksum: true } = d {
            let m = migrations.iter().find(|m| *m.file_name == **file_name).expect("a file of the set");
            let row = status.applied.iter().find(|r| r.file_name == *recorded).expect("a recorded row");
            sql.push(format!(
                "UPDATE {table} SET file_name = {}, revision = {} WHERE set_name = {} AND file_name = {} AND checksum = {}",
                quote_literal(file_name),
                quote_literal(&m.revision.to_string()),
                quote_literal(&row.set),
                quote_literal(recorded),
                quote_literal(&row.checksum)
            ));
            renamed.push((recorded.clone(), file_name.clone()));
        }
    }
    if !sql.is_empty() {
        in_tx(client, &sql.join(";\n"), "cannot record the new names")?;
    }
    client.batch_execute("COMMIT").map_err(|e| db_err(client, "cannot commit the new names")(e))?;
    Ok(renamed)
}

/// Records `m`, a `-- no-transaction` migration whose claim's process is gone and whose index
/// exists and is valid (it ran to completion, and was not recorded): checked again here, under
/// the migration lock, and the claim becomes the migration's row (marked stamped: this tool did
/// not see it finish). What `stamp --claimed` does.
pub fn record_claimed(client: &mut dyn Session, migrations: &[Migration], revision: Revision, opts: &Options) -> Result<Status, Error> {
    let m = migrations.get(revision.index()).ok_or_else(|| Error::Refused(format!("there is no {}", opts.label(Some(revision)))))?;
    let (set, table) = (opts.set_name(), opts.table.sql());
    let (status, _) = locked_status(client, migrations, opts, &mut |_| {}, &mut |_| Ok(lock::Poll::Ask))?.expect("held: nothing settles it");
    let rows = super::status::simple_rows(
        client,
        &format!("SELECT checksum FROM {table} WHERE set_name = {} AND file_name = {}", quote_literal(set), quote_literal(&m.file_name)),
    )
    .map_err(|e| db_err(client, "cannot read the claim")(e))?;
    let refuse = |client: &mut dyn Session, why: String| {
        let _ = client.batch_execute("ROLLBACK");
        Err(Error::Refused(why))
    };
    let Some(claim) = rows.first().and_then(|r| r[0].clone()).filter(|c| c.starts_with(crate::tracking::CLAIM)) else {
        return refuse(client, format!("{} ({}) has no claim to record: only a `-- no-transaction` file whose run died holds one", opts.label(Some(revision)), m.file_name));
    };
    if status.current.map_or(0, |r| r.number()) + 1 != revision.number() {
        return refuse(client, format!("{} is not the next migration (the database is at {})", opts.label(Some(revision)), opts.label(status.current)));
    }
    let pid: i32 = claim.trim_start_matches(crate::tracking::CLAIM).parse().unwrap_or(0);
    let alive = super::status::simple_rows(client, &format!("SELECT 1 FROM pg_stat_activity WHERE pid = {pid}")).map_err(|e| db_err(client, "cannot see who runs the migration")(e))?;
    if !alive.is_empty() {
        return refuse(client, format!("{} is being run by pid {pid} right now: wait for it", opts.label(Some(revision))));
    }
    match what_it_made(client, m) {
        Some(Made::Valid(_)) => {}
        Some(Made::Invalid(index)) => return refuse(client, format!("index {index} is INVALID: `DROP INDEX CONCURRENTLY {index};`, then `upgrade`")),
        None => return refuse(client, format!("what {} creates does not exist: `upgrade` runs it", m.file_name)),
    }
    in_tx(
        client,
        &format!(
            "UPDATE {table} SET checksum = {}, stamped = true, applied_at = clock_timestamp() WHERE set_name = {} AND file_name = {} AND checksum = {}",
            quote_literal(&m.checksum.to_string()),
            quote_literal(set),
            quote_literal(&m.file_name),
            quote_literal(&claim)
        ),
        "cannot record the claimed migration",
    )?;
    let applied = read_applied(client, opts)?;
    client.batch_execute("COMMIT").map_err(|e| db_err(client, "cannot commit the record")(e))?;
    Ok(Status::compare(applied, migrations))
}

/// The run's settings, with what the file's header says instead (`-- lock-timeout: 30s`,
/// `-- statement-timeout: 0`): checked by the resolver already.
fn file_settings(opts: &Options, m: &Migration) -> Vec<(&'static str, String)> {
    let mut settings = opts.local_settings();
    for (key, value, _) in crate::config::file_header(&m.sql) {
        let zero = (key == "statement-timeout").then_some("no limit");
        let Ok(d) = crate::config::parse_timeout(key, value, zero) else { continue };
        let name = if key == "lock-timeout" { "lock_timeout" } else { "statement_timeout" };
        settings.retain(|(k, _)| *k != name);
        settings.push((name, d.as_millis().to_string()));
    }
    settings
}

/// One statement inside the open transaction; on failure, rolls it back.
fn in_tx(client: &mut dyn Session, sql: &str, context: &str) -> Result<(), Error> {
    client.batch_execute(sql).map_err(|e| {
        let _ = client.batch_execute("ROLLBACK");
        db_err(client, context.to_string())(e)
    })
}

/// Runs the whole of `m` in the open transaction (a revised file run again under step 1's
/// lock); on failure, rolls it back.
fn run_again(client: &mut dyn Session, m: &Migration, opts: &Options, current: Option<Revision>) -> Result<(), Error> {
    let started = Instant::now();
    let Err(e) = client.batch_execute(&m.sql) else { return Ok(()) };
    let took = started.elapsed();
    let _ = client.batch_execute("ROLLBACK");
    Err(Error::Failed(failure(client, m, &e, 0, took, opts, current)))
}

/// The failure of `m` with error `e` (already rolled back), which took `took`; the file's text
/// started `skip` characters into what was sent. It names the file's line: the server's
/// position when it gives one, else the statement that fails when the file is run again
/// statement by statement in a transaction that is rolled back.
fn failure(
    client: &mut dyn Session,
    m: &Migration,
    e: &postgres::Error,
    skip: usize,
    took: Duration,
    opts: &Options,
    current: Option<Revision>,
) -> Box<MigrationFailure> {
    let db = e.as_db_error();
    let mut at = position(e, skip, &m.sql);
    let sqlstate = db.map(|d| d.code().code().to_string());
    // Only errors that come from the text itself are looked for again, and only for about as
    // long as the failure took: a cancel, a lock or statement timeout, a deadlock or a lost
    // connection would not recur, and a long migration is not run twice.
    let class = sqlstate.as_deref().map(|c| &c[..2]);
    let deterministic = !matches!(class, Some("57" | "08" | "40" | "53" | "55" | "XX" | "CP"))
        && !matches!(sqlstate.as_deref(), Some("57014"));
    if at.is_none() && db.is_some() && deterministic {
        at = locate(client, m, opts, took * 2 + Duration::from_millis(500));
    }
    let mut failure = MigrationFailure::new(opts, m, e, at, current);
    if sqlstate.as_deref() == Some("55P03") {
        failure.message = format!(
            "{}: another session holds a lock this migration needs, and lock-timeout ({}ms) ran out{}; \
             retry when the database is quieter, or raise `lock-timeout`",
            failure.message,
            opts.lock_timeout.as_millis(),
            lock_holders(client, opts).map(|h| format!(" (holding locks on this schema's tables now: {h})")).unwrap_or_default()
        );
    }
    Box::new(failure)
}

/// The byte offset in `sql` of the server's error position, which counts characters from 1
/// over text that had `skip` characters before `sql`.
fn position(e: &postgres::Error, skip: usize, sql: &str) -> Option<(usize, bool)> {
    match e.as_db_error()?.position()? {
        postgres::error::ErrorPosition::Original(pos) => {
            let at = (*pos as usize).checked_sub(skip + 1)?;
            // Just past the end: the `;` that ends an unterminated last statement.
            let byte = sql
                .char_indices()
                .nth(at)
                .map(|(byte, _)| byte)
                .or_else(|| (at <= sql.chars().count() + 2).then_some(sql.len()))?;
            Some((byte, true))
        }
        // A position inside a function body's query, not in the file.
        postgres::error::ErrorPosition::Internal { .. } => None,
    }
}

/// Who holds locks on the tables of the migration's schema right now (the server's lock
/// timeout names neither the table nor the session): `pid 1234 (psql, user app, in its
/// transaction for 12s) on procrastinate_jobs (AccessShareLock)`, the longest-running first.
fn lock_holders(client: &mut dyn Session, opts: &Options) -> Option<String> {
    let schema = opts.schema.as_ref().map_or_else(|| "current_schema()".to_string(), |s| quote_literal(&quote_ident(s)));
    let sql = format!(
        "SELECT a.pid, coalesce(nullif(a.application_name, ''), '?'), coalesce(a.usename::text, '?'), \
         coalesce(extract(epoch FROM now() - a.xact_start)::bigint::text, '?'), c.relname, l.mode \
         FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.granted AND l.locktype = 'relation' AND l.pid <> pg_backend_pid() \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND c.relnamespace = to_regnamespace({schema})::oid AND c.relkind IN ('r', 'p', 'm', 'v') \
         ORDER BY a.xact_start NULLS LAST, a.pid, c.relname LIMIT 5"
    );
    let rows = super::status::simple_rows(client, &sql).ok()?;
    let text = |r: &Vec<Option<String>>, i: usize| r[i].clone().unwrap_or_default();
    let held: Vec<String> = rows
        .iter()
        .map(|r| format!("pid {} ({}, user {}, in its transaction for {}s) on {} ({})", text(r, 0), text(r, 1), text(r, 2), text(r, 3), text(r, 4), text(r, 5)))
        .collect();
    (!held.is_empty()).then(|| held.join("; "))
}

/// The line of the statement that fails when `m` runs statement by statement, in a
/// transaction that is rolled back whatever happens, within `budget` (each statement gets what
/// is left as its statement_timeout): paid only after a failure, and never much longer than it.
fn locate(
    client: &mut dyn Session,
    m: &Migration,
    opts: &Options,
    budget: Duration,
) -> Option<(usize, bool)> {
    let statements = lexer::statements(&m.sql).ok()?;
    let settings: Vec<String> =
        opts.local_settings().iter().map(|(k, v)| format!("SELECT set_config({}, {}, true)", quote_literal(k), quote_literal(v))).collect();
    client.batch_execute(&format!("BEGIN;\n{}", settings.join(";\n"))).ok()?;
    let started = Instant::now();
    let mut failing = None;
    for st in &statements {
        let left = budget.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        let run = client.batch_execute(&format!("SET LOCAL statement_timeout = {}", left.as_millis().max(1)))
            .and_then(|()| client.batch_execute(&m.sql[st.span.clone()]));
        if let Err(e) = run {
            // Running out of the budget says nothing about where the original failed.
            if e.code().map(|c| c.code()) != Some("57014") {
                let text = &m.sql[st.span.clone()];
                failing = Some(
                    position(&e, 0, text)
                        .map_or((st.span.start, false), |(at, _)| (st.span.start + at, true)),
                );
            }
            break;
        }
    }
    let _ = client.batch_execute("ROLLBACK");
    failing
}

/// What the read before the lock found.
enum Early {
    /// The set is already where an upgrade to the target would take it, with nothing to accept
    /// or record either: at this revision.
    Done(Option<Revision>),
    /// There is work, and the tracking table is there in its current layout.
    Pending {
        /// The plan from this read needs nothing under the lock but that read: see
        /// [`Early::Missing::plain`].
        plain: bool,
    },
    /// There is no tracking table yet (`schema`: nor its schema): a first run.
    Missing {
        /// The tracking table's schema is missing too.
        schema: bool,
        /// The plan from this read (nothing applied) needs nothing under the lock but the read:
        /// nothing to accept or record as revised, no file that `new` left unwritten, so no
        /// refusal. Step 1 may then commit in the round trip of its read.
        plain: bool,
    },
    /// Anything unusual (no table yet, its first layout, rows to claim, a divergence, a failed
    /// read): the locked path finds out and says it.
    Unknown,
}

/// Whether there is anything to do, read in one plain query, without the lock or a transaction.
fn nothing_to_do(client: &mut dyn Session, migrations: &[Migration], target: Option<Revision>, opts: &Options) -> Early {
    Seen::read(client, opts).early(migrations, target, opts)
}

/// One poll while another process holds the lock, in one round trip: whether the set is where
/// this run goes (the others did it), else whether the lock is free now (taken and let go
/// within the message's own transaction: nothing stays open). Without a table yet the read
/// fails, and the waiter asks for the lock alone.
fn poll(client: &mut dyn Session, migrations: &[Migration], target: Option<Revision>, opts: &Options, key: &str) -> lock::Poll {
    let sql = format!("{};\nSELECT pg_try_advisory_xact_lock({key})", opts.table.current_layout_rows_sql());
    let Ok(mut results) = super::status::statements(client, &sql) else { return lock::Poll::Ask };
    let (Some(free), Some(rows)) = (results.pop(), results.pop()) else { return lock::Poll::Ask };
    let seen = Seen { found: Found::Rows(rows), table: opts.table.sql(), at: Instant::now() };
    if matches!(seen.early(migrations, target, opts), Early::Done(_)) {
        lock::Poll::Settled
    } else if free.first().and_then(|r| r[0].as_deref()) == Some("t") {
        lock::Poll::Free
    } else {
        lock::Poll::Taken
    }
}

/// What one plain read of the tracking table found, without the lock or a transaction: where
/// [`upgrade_seen`] starts (and, with [`Seen::applied`], the status a command shows first).
#[derive(Clone, Debug)]
pub struct Seen {
    found: Found,
    /// The table read, as SQL.
    table: String,
    /// When.
    at: Instant,
}

#[derive(Clone, Debug)]
enum Found {
    /// No tracking table (`schema`: nor its schema).
    Missing { schema: bool },
    /// Every row of a table of the current layout.
    Rows(Vec<Vec<Option<String>>>),
    /// Anything else (a table of the first layout, an error): to be read another way.
    Other,
}

impl Seen {
    /// The read: every row of the table, in its current layout.
    pub fn read(client: &mut dyn Session, opts: &Options) -> Seen {
        let found = match super::status::simple_rows(client, &opts.table.current_layout_rows_sql()) {
            Ok(rows) => Found::Rows(rows),
            Err(e) => match e.code().map(|c| c.code()) {
                Some("42P01") => Found::Missing { schema: false },
                Some("3F000") => Found::Missing { schema: true },
                _ => Found::Other,
            },
        };
        Seen { found, table: opts.table.sql(), at: Instant::now() }
    }

    /// The set's rows (`Some(None)`: no table), or `None` when this read cannot say (a table
    /// of the first layout, an error: read them with [`super::status`]).
    pub fn applied(&self, opts: &Options) -> Option<Option<Vec<Applied>>> {
        match &self.found {
            Found::Missing { .. } => Some(None),
            Found::Rows(rows) => Some(Some(super::status::set_rows(rows.clone(), opts.set_name(), opts.claim_unnamed))),
            Found::Other => None,
        }
    }

    fn early(self, migrations: &[Migration], target: Option<Revision>, opts: &Options) -> Early {
        let plain = |plan: &crate::state::Plan<'_>| {
            plan.accept.is_empty() && plan.revised.is_empty() && !plan.gaps.iter().copied().chain(plan.run.iter()).any(|m| m.not_written())
        };
        let rows = match self.found {
            Found::Rows(rows) => rows,
            Found::Missing { schema } => {
                let nothing = Status::compare_with(Some(Vec::new()), migrations, opts.out_of_order);
                let plain = plan_upgrade(migrations, &nothing, target, &opts.accept_changed).is_ok_and(|p| plain(&p));
                return Early::Missing { schema, plain };
            }
            Found::Other => return Early::Unknown,
        };
        if opts.claim_unnamed && rows.iter().any(|r| r[0].as_deref() == Some(crate::tracking::UNNAMED_SET)) {
            return Early::Unknown;
        }
        let applied = super::status::set_rows(rows, opts.set_name(), false);
        let status = Status::compare_with(Some(applied), migrations, opts.out_of_order);
        match plan_upgrade(migrations, &status, target, &opts.accept_changed) {
            Ok(plan) if plan.run.is_empty() && plan.gaps.is_empty() && plan.accept.is_empty() && plan.revised.is_empty() => Early::Done(status.current),
            Ok(plan) => Early::Pending { plain: plain(&plan) },
            Err(_) => Early::Unknown,
        }
    }
}

/// Takes the migration lock in a new transaction (left open for the caller), creates what is
/// missing (the schema, the tracking table), brings an older tracking table to the current
/// layout, gives the unnamed set's rows to the first set, and compares what is recorded with
/// the files: the start of every change, in one round trip.
fn locked_status(
    client: &mut dyn Session,
    migrations: &[Migration],
    opts: &Options,
    on_wait: &mut dyn FnMut(Option<&str>),
    settled: &mut dyn FnMut(&mut dyn Session) -> Result<lock::Poll, Error>,
) -> Result<Option<(Status, Vec<String>)>, Error> {
    Ok(locked_status_with(client, migrations, opts, on_wait, settled, Table::Unknown, false)?.map(|(status, missing, _)| (status, missing)))
}

/// What the read before the lock said of the tracking table.
#[derive(Clone, Copy)]
enum Table {
    /// There, in its current layout: nothing to set up (a plpgsql block less on every run).
    Ready,
    /// Not there (`schema`: nor its schema): created in plain DDL.
    Missing { schema: bool },
    /// Unread: the plpgsql block that creates it or brings an old layout up to date.
    Unknown,
}

/// [`locked_status`], setting the table up as `table` says it is; with `commit`, the
/// transaction commits in the same round trip instead of staying open.
fn locked_status_with(
    client: &mut dyn Session,
    migrations: &[Migration],
    opts: &Options,
    on_wait: &mut dyn FnMut(Option<&str>),
    settled: &mut dyn FnMut(&mut dyn Session) -> Result<lock::Poll, Error>,
    table: Table,
    commit: bool,
) -> Result<Option<(Status, Vec<String>, String)>, Error> {
    let table_ready = matches!(table, Table::Ready);
    let mut then = Vec::new();
    // Which of the schemas this creates are missing: a first run that fails takes them away.
    let schemas: Vec<String> = opts.schema.iter().chain(opts.table.schema.iter()).map(|s| quote_literal(s)).collect();
    then.push(if table_ready || schemas.is_empty() {
        "SELECT NULL WHERE false".to_string()
    } else {
        format!("SELECT n FROM unnest(ARRAY[{}]::text[]) n WHERE to_regnamespace(quote_ident(n)) IS NULL", schemas.join(", "))
    });
    // The schema the migrations run in, which may differ from the tracking table's own;
    // created only when missing (CREATE SCHEMA IF NOT EXISTS asks for the privilege anyway).
    if let (Some(schema), false) = (&opts.schema, table_ready) {
        then.push(format!(
            "DO $cargo_procrastinate$ BEGIN IF to_regnamespace({}) IS NULL THEN CREATE SCHEMA {}; END IF; END $cargo_procrastinate$",
            quote_literal(&quote_ident(schema)),
            quote_ident(schema)
        ));
    }
    match table {
        Table::Ready => {}
        Table::Missing { schema } => then.push(opts.table.create_sql(schema)),
        Table::Unknown => then.push(opts.table.ensure_sql()),
    }
    if opts.claim_unnamed {
        then.push(opts.table.claim_sql(opts.set_name()));
    }
    let rows_at = then.len();
    // A table of the current layout (read before the lock, or created just now in it) is read
    // plainly and filtered here: a set's own query (jsonb, to read the first layout too) costs
    // the server more than the table's few rows.
    let plain = matches!(table, Table::Ready | Table::Missing { .. });
    then.push(if plain { opts.table.current_layout_rows_sql() } else { opts.table.rows_sql(opts.set_name(), opts.claim_unnamed) });
    // The primary key that the claims count on, there.
    then.push(opts.table.key_check_sql());
    // The lock's key as a number, worked out once under the run's settings (the tracking
    // table's schema may come from its search_path).
    let key_at = then.len();
    let key = opts.table.lock_key();
    then.push(format!("SELECT {key}"));
    if commit {
        then.push("COMMIT".to_string());
    }
    let locked = lock::begin_locked(client, &opts.local_settings(), &key, &then, lock::Waiter::new(opts.lock_wait, opts.interrupt.clone()), on_wait, settled)
        .map_err(|e| match e {
            Error::Db { source, .. } if source.code().map(|c| c.code()) == Some("42P10") => Error::Refused(format!(
                "the tracking table {} has no primary key on (set_name, file_name), which is what keeps two processes from applying \
                 one file: add it back (`ALTER TABLE {} ADD PRIMARY KEY (set_name, file_name)`); nothing was applied",
                opts.table,
                opts.table.sql()
            )),
            Error::Db { source, abandoned, .. } => Error::Db { context: format!("cannot set up the tracking table {}", opts.table), source, abandoned },
            other => other,
        })?;
    let lock::Locked::Held(results) = locked else { return Ok(None) };
    let applied = if plain {
        super::status::set_rows(results[rows_at].clone(), opts.set_name(), opts.claim_unnamed)
    } else {
        results[rows_at].iter().map(|r| Applied::from_text(r)).collect()
    };
    let mut missing: Vec<String> = results[0].iter().filter_map(|r| r[0].clone()).collect();
    missing.dedup();
    // A number, or the expression again should the server say something else.
    let number = results[key_at].first().and_then(|r| r[0].clone()).filter(|k| k.parse::<i64>().is_ok()).unwrap_or(key);
    Ok(Some((Status::compare_with(Some(applied), migrations, opts.out_of_order), missing, number)))
}

/// Records one set at `target` (None: base) without running any SQL. `purge` clears that set's
/// records first.
pub fn stamp(
    client: &mut dyn Session,
    migrations: &[Migration],
    target: Option<Revision>,
    purge: bool,
    opts: &Options,
) -> Result<Status, Error> {
    let set = opts.set_name();
    let (status, _) = locked_status(client, migrations, opts, &mut |_| {}, &mut |_| Ok(lock::Poll::Ask))?.expect("held: nothing settles it");
    let record = match plan_stamp(migrations, &status, target, purge) {
        Ok(record) => record,
        Err(r) => {
            let _ = client.batch_execute("ROLLBACK");
            return Err(Error::refused(r, opts));
        }
    };
    let mut batch = Vec::new();
    if purge {
        batch.push(format!("DELETE FROM {} WHERE set_name = {}", opts.table.sql(), quote_literal(set)));
    }
    batch.extend(record.iter().map(|m| opts.table.insert_sql(set, m, true)));
    if !batch.is_empty() {
        in_tx(client, &batch.join(";\n"), "cannot record the stamp")?;
    }
    let applied = read_applied(client, opts)?;
    client.batch_execute("COMMIT").map_err(|e| db_err(client, "cannot commit the stamp")(e))?;
    Ok(Status::compare(applied, migrations))
}

/// What [`build_from_schema`] did.
#[derive(Debug)]
pub enum FromSchema {
    /// The schema was built and every migration recorded (as stamped), in one transaction.
    Built(UpgradeReport),
    /// Nothing was done, for this reason: the database is not fresh for the set.
    NotFresh(String),
}

/// SQLSTATE of "an object `schema_sql` creates exists already" (our own class, `CP`).
const SCHEMA_OBJECT_EXISTS: &str = "CPOBJ";

/// Builds a fresh database's set at head from `schema_sql` (the release's `schema.sql`, which
/// the caller has proven the migrations build exactly) and records every migration as
/// stamped, in one transaction and one round trip after the lock's: what `psql -1 -f
/// schema.sql` then `stamp head` would do, without the window between them. Only when the set
/// has nothing recorded and the schema has none of `names` (the relations, types and functions
/// `schema_sql` creates); otherwise it does nothing and says why. `label` names the file in
/// errors.
pub fn build_from_schema(
    client: &mut dyn Session,
    migrations: &[Migration],
    schema_sql: &str,
    label: &str,
    names: &[String],
    opts: &Options,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<FromSchema, Error> {
    let set = opts.set_name();
    let (status, _) = locked_status(client, migrations, opts, &mut |holder| on_event(Event::Waiting { holder }), &mut |_| Ok(lock::Poll::Ask))?.expect("held: nothing settles it");
    if !status.applied.is_empty() {
        let _ = client.batch_execute("ROLLBACK");
        return Ok(FromSchema::NotFresh(format!("{} of the set's migrations are recorded already", status.applied.len())));
    }
    let names: Vec<String> = names.iter().map(|n| quote_literal(n)).collect();
    // Checked in the transaction that builds, under the lock: the schema chosen by the
    // settings (`current_schema()`), where the file's unqualified names land.
    let check = format!(
        "DO $cargo_procrastinate$\nDECLARE\n    taken text;\nBEGIN\n    \
         SELECT n INTO taken FROM unnest(ARRAY[{}]::text[]) n\n    \
         WHERE EXISTS (SELECT FROM pg_class WHERE relname = n AND relnamespace = to_regnamespace(quote_ident(current_schema()))::oid)\n       \
         OR EXISTS (SELECT FROM pg_type WHERE typname = n AND typnamespace = to_regnamespace(quote_ident(current_schema()))::oid)\n       \
         OR EXISTS (SELECT FROM pg_proc WHERE proname = n AND pronamespace = to_regnamespace(quote_ident(current_schema()))::oid)\n    \
         LIMIT 1;\n    \
         IF FOUND THEN\n        RAISE EXCEPTION '%', taken USING ERRCODE = '{SCHEMA_OBJECT_EXISTS}';\n    END IF;\nEND\n$cargo_procrastinate$;\n",
        names.join(", ")
    );
    let rows: Vec<String> = migrations.iter().map(|m| opts.table.insert_sql(set, m, true)).collect();
    let sql = format!("{check}{schema_sql}\n;\n{}\nCOMMIT", rows.join("\n"));
    let Err(e) = client.batch_execute(&sql) else {
        let head = migrations.last().map(|m| m.revision);
        return Ok(FromSchema::Built(UpgradeReport { from: None, to: head, applied: Vec::new() }));
    };
    let _ = client.batch_execute("ROLLBACK");
    let db = e.as_db_error();
    if db.is_some_and(|d| d.code().code() == SCHEMA_OBJECT_EXISTS) {
        let schema = opts.schema.as_deref().unwrap_or("the search_path's first schema");
        return Ok(FromSchema::NotFresh(format!("`{}` exists already in {schema}", db.map(|d| d.message()).unwrap_or_default())));
    }
    let line = position(&e, check.chars().count(), schema_sql).map(|(at, _)| format!(":{}", lexer::line_of(schema_sql, at))).unwrap_or_default();
    Err(db_err(client, format!("cannot build the schema from {label}{line} (rolled back; nothing is recorded)"))(e))
}
