//! Ctrl-C and SIGTERM during a change: the first asks the server to cancel the statement in
//! flight (so the migration rolls back and releases its locks now, not when the server next
//! notices the client is gone) and stops before the next migration; a second exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use postgres::CancelToken;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::exit;

/// The flag `db::upgrade` checks, and the connection to cancel.
#[derive(Clone)]
pub struct Interrupts {
    /// Set by the first signal; given to `upgrade` as `db::Options::interrupt`, it stops the
    /// run before its next migration.
    pub flag: Arc<AtomicBool>,
    cancel: Arc<Mutex<Option<CancelToken>>>,
}

impl Interrupts {
    /// Takes over SIGINT and SIGTERM for the rest of the process.
    pub fn install() -> std::io::Result<Interrupts> {
        let me = Interrupts { flag: Arc::new(AtomicBool::new(false)), cancel: Arc::new(Mutex::new(None)) };
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let watcher = me.clone();
        std::thread::spawn(move || {
            for _ in signals.forever() {
                if watcher.flag.swap(true, Ordering::SeqCst) {
                    eprintln!("interrupted again: exiting now");
                    std::process::exit(exit::INTERRUPTED);
                }
                eprintln!("interrupted: cancelling the migration in flight (again to exit at once)");
                let token = watcher.cancel.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let Some(token) = token {
                    // Sent unencrypted, as libpq's cancel requests were before PostgreSQL 17.
                    if let Err(e) = token.cancel_query(postgres::NoTls) {
                        eprintln!("warning: the cancel request failed: {e}");
                    }
                }
            }
        });
        Ok(me)
    }

    /// The connection whose statement a signal cancels.
    pub fn watch(&self, client: &postgres::Client) {
        *self.cancel.lock().unwrap_or_else(|p| p.into_inner()) = Some(client.cancel_token());
    }
}
