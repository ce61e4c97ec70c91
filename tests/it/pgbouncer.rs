//! The concurrency claim, behind a real PgBouncer in transaction-pooling mode with fewer server
//! connections than clients: consecutive transactions of one client land on different backends,
//! and PgBouncer 1.18 has no prepared-statement support. Session state of any kind would break.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// A PgBouncer process, killed on drop.
struct Bouncer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pgbouncer_binary() -> std::path::PathBuf {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
        .expect("pgbouncer is not installed: apt-get install pgbouncer (.ci/run does)")
}

fn id(flag: &str) -> u32 {
    let out = Command::new("id").args([flag, "postgres"]).output().expect("id");
    String::from_utf8(out.stdout).unwrap().trim().parse().expect("postgres user")
}

/// PgBouncer in front of the server of `db` (URL `postgres://postgres:PW@HOST:PORT/DB`).
fn bouncer(db: &TestDb) -> Bouncer {
    let url = db.url();
    let rest = url.strip_prefix("postgres://").unwrap();
    let (auth, rest) = rest.split_once('@').unwrap();
    let (user, password) = auth.split_once(':').unwrap();
    let (hostport, _) = rest.split_once('/').unwrap();
    let (host, port) = hostport.split_once(':').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let d = dir.path().display();
    std::fs::write(dir.path().join("users.txt"), format!("\"{user}\" \"\"\n")).unwrap();
    std::fs::write(
        dir.path().join("pgbouncer.ini"),
        format!(
            "[databases]\n* = host={host} port={port} user={user} password={password}\n\n[pgbouncer]\n\
             listen_addr = 127.0.0.1\nlisten_port = {listen}\nunix_socket_dir =\n\
             auth_type = trust\nauth_file = {d}/users.txt\n\
             pool_mode = transaction\ndefault_pool_size = 2\nmax_client_conn = 100\n\
             logfile = {d}/pgbouncer.log\npidfile = {d}/pgbouncer.pid\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new(pgbouncer_binary());
    cmd.arg(dir.path().join("pgbouncer.ini")).stdout(Stdio::null()).stderr(Stdio::null());
    // PgBouncer refuses to run as root, like initdb: run it as the postgres user.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            std::os::unix::fs::chown(entry.unwrap().path(), Some(id("-u")), Some(id("-g"))).unwrap();
        }
        std::os::unix::fs::chown(dir.path(), Some(id("-u")), Some(id("-g"))).unwrap();
        cmd.uid(id("-u")).gid(id("-g"));
    }
    let child = cmd.spawn().expect("start pgbouncer");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", listen)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "pgbouncer did not start: {}", std::fs::read_to_string(dir.path().join("pgbouncer.log")).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(50));
    }
    Bouncer { child, port: listen, _dir: dir }
}

#[test]
fn concurrent_upgrades_through_pgbouncer_transaction_pooling() {
    let up = v3_10();
    let db = TestDb::new("pgbouncer");
    let bouncer = bouncer(&db);
    let via = format!("postgres://postgres@127.0.0.1:{}/{}?sslmode=disable", bouncer.port, db.name());
    let dir = up.migrations.to_str().unwrap();
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| s.spawn(|| cli_in(&std::env::temp_dir(), &["--migrations", dir, "--database-url", &via, "--message-format", "json", "upgrade"], &[])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut applied: Vec<String> = Vec::new();
    for run in runs {
        let json = run.ok().json();
        assert_eq!(json["to"], "0038");
        applied.extend(json["applied"].as_array().unwrap().iter().map(|a| a["revision"].as_str().unwrap().to_string()));
    }
    applied.sort();
    assert_eq!(applied, (1..=38).map(|n| format!("{n:04}")).collect::<Vec<_>>());
    // And the rest of the commands work through it too.
    cli_in(&std::env::temp_dir(), &["--migrations", dir, "--database-url", &via, "check"], &[]).ok();
    // search_path is SET LOCAL in every transaction, so it holds whichever backend runs it.
    let other = cli_in(&std::env::temp_dir(), &["--migrations", dir, "--database-url", &via, "--schema", "other", "upgrade", "0004"], &[]).ok();
    assert!(other.stderr.contains("upgraded base -> 0004"), "{}", other.stderr);
    let jobs: Option<String> = db.client().query_one("SELECT to_regclass('other.procrastinate_jobs')::text", &[]).unwrap().get(0);
    assert_eq!(jobs.as_deref(), Some("other.procrastinate_jobs"));
    assert_eq!(tracking_rows(&db, "other.cargo_procrastinate_migrations").len(), 4);
}

/// Ctrl-C behind PgBouncer in transaction pooling: the cancel request reaches the server (its
/// socket stays open until PgBouncer closes it; 1.18 drops one closed at once), the migration
/// is rolled back and not recorded, and the tool exits 130 with the position it read.
#[test]
fn sigint_cancels_a_migration_through_pgbouncer() {
    let db = TestDb::new("pgbouncer_sigint");
    let bouncer = bouncer(&db);
    let via = format!("postgres://postgres@127.0.0.1:{}/{}?sslmode=disable", bouncer.port, db.name());
    let set = copy_set(&example_set());
    let slow = "03.00.00_01_pre_slow.sql";
    write(set.path(), slow, "CREATE TABLE slow_done (x int);\nSELECT pg_sleep(20);\n");
    let args = ["--migrations", set.path().to_str().unwrap(), "--database-url", via.as_str()];
    cli_in(&std::env::temp_dir(), &[&args[..], &["upgrade", "0003"]].concat(), &[]).ok();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-procrastinate"))
        .args([&args[..], &["upgrade"]].concat())
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut client = db.client();
    let started = Instant::now();
    while client.query_one("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'", &[]).unwrap().get::<_, i64>(0) == 0 {
        assert!(started.elapsed() < Duration::from_secs(15), "the slow migration never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let signalled = Instant::now();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(signalled.elapsed() < Duration::from_secs(10), "exited {:?} after the signal: {stderr}", signalled.elapsed());
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains(&format!("interrupted: migration 0004 ({slow}) was stopped and rolled back; the database is at 0003")), "{stderr}");
    let done: Option<String> = client.query_one("SELECT to_regclass('slow_done')::text", &[]).unwrap().get(0);
    assert_eq!(done, None, "rolled back, not committed 20 s later");
    assert_eq!(tracking_rows(&db, "cargo_procrastinate_migrations").len(), 3, "not recorded");
}
