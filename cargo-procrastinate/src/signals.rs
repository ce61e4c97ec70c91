//! Ctrl-C and SIGTERM during a change: the first asks the server to cancel the statement in
//! flight (so the migration rolls back and releases its locks now, not when the server next
//! notices the client is gone) and stops before the next migration; a second exits at once.
//!
//! The cancel request goes on a socket of its own that stays open until the server closes it
//! (`connect::Target::cancel`): PgBouncer 1.18 drops a request whose socket is closed right
//! after it is written, and the migration would then run to its end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tokio_postgres::CancelToken;

use crate::connect::Target;
use crate::exit;

/// The flag `db::upgrade` checks, and the connection to cancel.
#[derive(Clone)]
pub struct Interrupts {
    /// Set by the first signal; given to `upgrade` as `db::Options::interrupt`, it stops the
    /// run before its next migration, and a wait for the migration lock at once.
    pub flag: Arc<AtomicBool>,
    cancel: Arc<Mutex<Option<(Target, CancelToken)>>>,
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
                    crate::term::error("interrupted again: exiting now");
                    std::process::exit(exit::INTERRUPTED);
                }
                crate::term::log("interrupted: cancelling the migration in flight (again to exit at once)");
                let watched = watcher.cancel.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let Some((target, token)) = watched {
                    if let Err(e) = target.cancel(&token) {
                        crate::term::log(&format!("warning: the cancel request failed: {e}"));
                    }
                }
            }
        });
        Ok(me)
    }

    /// The connection whose statement a signal cancels: where it goes, and its key.
    pub fn watch(&self, target: Target, token: CancelToken) {
        *self.cancel.lock().unwrap_or_else(|p| p.into_inner()) = Some((target, token));
    }
}
