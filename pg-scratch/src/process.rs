//! Starting and stopping the postmaster so that it never outlives the process that
//! started it, even when the `Scratch` is never dropped.
//!
//! Two mechanisms, because each one alone has a hole:
//! * `PR_SET_PDEATHSIG`: the kernel sends SIGQUIT (immediate shutdown) to the
//!   postmaster when its parent dies, which also covers abort and SIGKILL. It fires
//!   when the *thread* that forked the child exits, so children are forked from one
//!   dedicated thread that never exits. It cannot remove the data directory.
//! * An `atexit` handler: a test binary keeps its cluster in a `static OnceLock`, and
//!   statics are never dropped. On a normal exit the handler shuts down every
//!   registered postmaster cleanly and removes its directory.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, Once, OnceLock, TryLockError};
use std::time::{Duration, Instant};

type Job = (Command, Sender<io::Result<Child>>);

/// Spawns `cmd` from the forever-living spawner thread, with the parent-death signal set.
pub(crate) fn spawn_tied_to_process(mut cmd: Command) -> io::Result<Child> {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure only makes async-signal-safe syscalls (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(move || {
            // std runs pre_exec closures after its setgid/setuid, and changing
            // credentials clears the parent-death signal, so it must be set here.
            #[cfg(target_os = "linux")]
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl; then nobody would signal us.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    static SPAWNER: OnceLock<Sender<Job>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        // If the thread cannot be created, `rx` is dropped and `send` below reports it.
        let _ = std::thread::Builder::new().name("pg-scratch-spawner".into()).spawn(move || {
            for (mut cmd, reply) in rx {
                let _ = reply.send(cmd.spawn());
            }
            loop {
                std::thread::park(); // never exit: that would fire PDEATHSIG
            }
        });
        tx
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    let gone = || io::Error::other("the pg-scratch spawner thread is not running");
    spawner.send((cmd, reply_tx)).map_err(|_| gone())?;
    reply_rx.recv().map_err(|_| gone())?
}

static REGISTRY: Mutex<Vec<(libc::pid_t, PathBuf)>> = Mutex::new(Vec::new());

/// Remembers a running postmaster and the directory to remove at process exit.
pub(crate) fn register(pid: libc::pid_t, dir: PathBuf) {
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| {
        // SAFETY: registering a plain `extern "C" fn` that never unwinds.
        unsafe { libc::atexit(stop_all_at_exit) };
    });
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner()).push((pid, dir));
}

pub(crate) fn unregister(pid: libc::pid_t) {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner()).retain(|(p, _)| *p != pid);
}

extern "C" fn stop_all_at_exit() {
    // try_lock: exit() may be called while another thread holds the lock; blocking
    // here would hang the exit. PDEATHSIG still stops the postmasters then.
    let entries = match REGISTRY.try_lock() {
        Ok(mut guard) => std::mem::take(&mut *guard),
        Err(TryLockError::Poisoned(p)) => std::mem::take(&mut *p.into_inner()),
        Err(TryLockError::WouldBlock) => return,
    };
    for (pid, dir) in entries {
        shutdown(pid);
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Fast shutdown (SIGINT: roll back and disconnect clients), bounded wait, then SIGKILL.
pub(crate) fn shutdown(pid: libc::pid_t) {
    // SAFETY: plain syscalls on a pid that is our own unreaped child (so not reused).
    if unsafe { libc::kill(pid, libc::SIGINT) } != 0 {
        reap(pid, false);
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if reap(pid, false) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(pid, libc::SIGKILL) };
    reap(pid, true);
}

/// Reaps `pid` if it exited; true when it is gone (or is not our child at all).
pub(crate) fn reap(pid: libc::pid_t, block: bool) -> bool {
    let flags = if block { 0 } else { libc::WNOHANG };
    loop {
        let mut status = 0;
        // SAFETY: waitpid on a specific pid with a valid status pointer.
        match unsafe { libc::waitpid(pid, &mut status, flags) } {
            0 => return false,
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            _ => return true, // reaped, or ECHILD: already reaped elsewhere
        }
    }
}
