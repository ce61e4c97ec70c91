//! A real PgBouncer in front of a server, in transaction-pooling mode with 2 server connections
//! per database (fewer than its clients): for the tests and for `cargo xtask bench replicas`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A PgBouncer process, killed on drop.
pub struct Bouncer {
    child: Child,
    /// Where it listens, on 127.0.0.1.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> Result<PathBuf, String> {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| "pgbouncer is not installed: apt-get install pgbouncer (.ci/run does)".to_string())
}

fn postgres_id(flag: &str) -> Result<u32, String> {
    let out = Command::new("id").args([flag, "postgres"]).output().map_err(|e| format!("id: {e}"))?;
    String::from_utf8_lossy(&out.stdout).trim().parse().map_err(|e| format!("the postgres user's id: {e}"))
}

/// PgBouncer in front of the server at `host:port`, logging in there as `user` with
/// `password`; its own clients are trusted.
pub fn start(host: &str, port: u16, user: &str, password: &str) -> Result<Bouncer, String> {
    let io = |e: std::io::Error| e.to_string();
    let dir = tempfile::tempdir().map_err(io)?;
    let listen = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(io)?.port();
    let d = dir.path().display();
    std::fs::write(dir.path().join("users.txt"), format!("\"{user}\" \"\"\n")).map_err(io)?;
    std::fs::write(
        dir.path().join("pgbouncer.ini"),
        format!(
            "[databases]\n* = host={host} port={port} user={user} password={password}\n\n[pgbouncer]\n\
             listen_addr = 127.0.0.1\nlisten_port = {listen}\nunix_socket_dir =\n\
             auth_type = trust\nauth_file = {d}/users.txt\n\
             pool_mode = transaction\ndefault_pool_size = 2\nmax_client_conn = 500\n\
             logfile = {d}/pgbouncer.log\npidfile = {d}/pgbouncer.pid\n"
        ),
    )
    .map_err(io)?;
    let mut cmd = Command::new(binary()?);
    cmd.arg(dir.path().join("pgbouncer.ini")).stdout(Stdio::null()).stderr(Stdio::null());
    // PgBouncer refuses to run as root, like initdb: run it as the postgres user.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let (uid, gid) = (postgres_id("-u")?, postgres_id("-g")?);
        for entry in std::fs::read_dir(dir.path()).map_err(io)? {
            std::os::unix::fs::chown(entry.map_err(io)?.path(), Some(uid), Some(gid)).map_err(io)?;
        }
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(io)?;
        cmd.uid(uid).gid(gid);
    }
    let child = cmd.spawn().map_err(|e| format!("start pgbouncer: {e}"))?;
    let bouncer = Bouncer { child, port: listen, _dir: dir };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", listen)).is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            return Err(format!("pgbouncer did not start: {}", std::fs::read_to_string(bouncer._dir.path().join("pgbouncer.log")).unwrap_or_default()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(bouncer)
}
