//! These start real clusters with the local PostgreSQL binaries.

use super::*;
use std::path::PathBuf;

fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn start_connect_create_and_clean_up() {
    let scratch = Scratch::start().expect("start a scratch cluster");
    let dir = scratch.socket_dir().to_path_buf();
    let pid = scratch.postmaster.pid;
    assert!(dir.join("data/PG_VERSION").is_file());
    assert!(alive(pid));
    assert_eq!(scratch.password().len(), 24);

    // Unix socket, trust auth.
    let mut client = scratch.config("postgres").connect(postgres::NoTls).expect("socket connect");
    let row = client.query_one("SELECT current_user::text, current_setting('fsync')", &[]).unwrap();
    assert_eq!(row.get::<_, String>(0), "postgres");
    assert_eq!(row.get::<_, String>(1), "off");

    // TCP, password auth.
    let url = scratch.url("postgres");
    assert_eq!(url, format!("postgres://postgres:{}@127.0.0.1:{}/postgres", scratch.password(), scratch.port()));
    let mut tcp = postgres::Client::connect(&url, postgres::NoTls).expect("TCP connect");
    assert_eq!(tcp.query_one("SELECT 1", &[]).unwrap().get::<_, i32>(0), 1);
    let wrong = format!("postgres://postgres:wrong@127.0.0.1:{}/postgres", scratch.port());
    assert!(postgres::Client::connect(&wrong, postgres::NoTls).is_err(), "wrong password accepted");

    // Quoted identifier: mixed case survives.
    scratch.create_database("Some DB").expect("create database");
    let mut db = scratch.config("Some DB").connect(postgres::NoTls).expect("connect to new db");
    assert_eq!(db.query_one("SELECT current_database()::text", &[]).unwrap().get::<_, String>(0), "Some DB");
    assert!(scratch.create_database("Some DB").is_err(), "duplicate database accepted");
    let mut by_url = postgres::Client::connect(&scratch.url("Some DB"), postgres::NoTls).expect("encoded URL");
    assert_eq!(by_url.query_one("SELECT current_database()::text", &[]).unwrap().get::<_, String>(0), "Some DB");

    // Open connections must not block the (fast) shutdown.
    scratch.stop();
    assert!(!dir.exists(), "directory {} left behind", dir.display());
    assert!(!alive(pid), "postmaster {pid} still running");
    drop((client, tcp, db, by_url));
}

#[test]
fn drop_during_panic_cleans_up() {
    let (dir, pid) = std::panic::catch_unwind(|| {
        let scratch = Scratch::start().expect("start a scratch cluster");
        let dir = scratch.socket_dir().to_path_buf();
        let pid = scratch.postmaster.pid;
        std::panic::panic_any((dir, pid));
        #[allow(unreachable_code)]
        drop(scratch)
    })
    .unwrap_err()
    .downcast::<(PathBuf, libc::pid_t)>()
    .map(|b| *b)
    .expect("panic payload");
    assert!(!dir.exists());
    assert!(!alive(pid));
}

#[test]
fn error_display_includes_source() {
    let e = Error::with("could not read x", std::io::Error::new(std::io::ErrorKind::NotFound, "gone"));
    assert_eq!(e.to_string(), "could not read x: gone");
    assert!(std::error::Error::source(&e).is_some());
}

/// Dead or a zombie nobody reaped yet (PID 1 in a container may never reap orphans).
fn gone(pid: libc::pid_t) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

static KEPT: std::sync::OnceLock<Scratch> = std::sync::OnceLock::new();

#[test]
#[ignore = "helper: run in a child process by the never_dropped_* tests"]
fn helper_keep_cluster_in_static() {
    let scratch = KEPT.get_or_init(|| Scratch::start().expect("start a scratch cluster"));
    println!("SCRATCH {} {}", scratch.postmaster.pid, scratch.socket_dir().display());
    if std::env::var_os("PG_SCRATCH_HELPER_ABORT").is_some() {
        std::process::abort();
    }
}

/// Runs the helper test in a child test process and returns the postmaster pid and dir.
fn run_helper(abort: bool) -> (libc::pid_t, PathBuf) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "tests::helper_keep_cluster_in_static", "--ignored", "--nocapture"]);
    if abort {
        cmd.env("PG_SCRATCH_HELPER_ABORT", "1");
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.success(), !abort, "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout.lines().find_map(|l| l.strip_prefix("SCRATCH ")).expect("helper output");
    let (pid, dir) = line.split_once(' ').unwrap();
    (pid.parse().unwrap(), PathBuf::from(dir))
}

#[test]
fn never_dropped_is_cleaned_up_at_exit() {
    let (pid, dir) = run_helper(false);
    assert!(gone(pid), "postmaster {pid} outlived its process");
    assert!(!dir.exists(), "directory {} left behind", dir.display());
}

#[cfg(target_os = "linux")]
#[test]
fn never_dropped_dies_with_aborted_process() {
    // Become the subreaper so the orphaned postmaster is reparented to us and we can
    // reap it (PID 1 in a container may leave it a zombie for a while).
    // SAFETY: plain prctl; affects only which process inherits orphans.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    let (pid, dir) = run_helper(true);
    // The parent-death signal is asynchronous: give the postmaster a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        process::reap(pid, false);
        if gone(pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(gone(pid), "postmaster {pid} outlived its aborted process");
    let _ = std::fs::remove_dir_all(dir); // abort skips atexit: removing it is up to the caller
}
