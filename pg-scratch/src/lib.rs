//! A throwaway PostgreSQL cluster: a copy of a data directory `initdb` made once, run `postgres`
//! on a free port and a private unix socket, remove everything when done.
//!
//! Used by the test suite and by `cargo procrastinate --scratch`. Unix only.

#![warn(missing_docs)]

mod bindir;
mod error;
mod process;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use bindir::find_bindir;
pub use error::Error;

/// A running throwaway cluster. Dropping it (or [`Scratch::stop`]) shuts the server
/// down and removes its directory; see `process.rs` for what happens if it is never dropped.
pub struct Scratch {
    // Dropped in this order: the postmaster is stopped before the directory goes.
    postmaster: Postmaster,
    dir: tempfile::TempDir,
    port: u16,
    password: String,
}

impl Scratch {
    /// Creates a cluster with `initdb`, starts it and waits until it accepts connections.
    pub fn start() -> Result<Scratch, Error> {
        Scratch::start_with(&[])
    }

    /// [`start`](Self::start), with server settings of the caller's (`-c name=value`), such as
    /// `shared_preload_libraries`.
    pub fn start_with(settings: &[(&str, &str)]) -> Result<Scratch, Error> {
        let bindir = find_bindir()?;
        let owner = server_owner()?;
        let dir = tempfile::Builder::new()
            .prefix("pg-scratch-")
            .tempdir()
            .map_err(|e| Error::with("could not create a temporary directory (check TMPDIR)", e))?;
        let password = random_password()?;
        // A copy of a data directory `initdb` made once for this server version: a copy takes a
        // few tens of milliseconds where `initdb` takes about a second. The password is set
        // once the server runs (over the socket, where `postgres` is trusted).
        let template = template(&bindir, owner)?;
        copy_data(&template, dir.path(), owner)?;

        // The port is only known to be free when we look; another process may take it
        // before the postmaster binds, so a bind failure is retried with a new port.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            let postmaster = launch(&bindir, dir.path(), owner, port, settings)?;
            let failure = match wait_ready(&postmaster, dir.path(), port) {
                Ok(()) => {
                    let scratch = Scratch { postmaster, dir, port, password };
                    scratch
                        .config("postgres")
                        .connect(postgres::NoTls)
                        .and_then(|mut c| c.batch_execute(&format!("ALTER ROLE postgres PASSWORD '{}'", scratch.password)))
                        .map_err(|e| Error::with("could not set the scratch cluster's password", e))?;
                    return Ok(scratch);
                }
                Err(Startup::PortTaken) if attempt < 5 => continue,
                Err(Startup::PortTaken) => "could not find a free TCP port after 5 attempts",
                Err(Startup::Failed(what)) => what,
            };
            let log = dir.path().join("postgres.log");
            return Err(Error::msg(format!(
                "{failure}; last lines of {}:\n{}",
                log.display(),
                log_tail(&log)
            )));
        }
    }

    /// TCP port the server listens on at 127.0.0.1; also names its unix socket.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Directory holding the server's unix socket (`.s.PGSQL.<port>`).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Password of the superuser `postgres` (random per cluster), needed over TCP.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Connection over the unix socket as `postgres` (trust auth: no password needed).
    pub fn config(&self, dbname: &str) -> postgres::Config {
        socket_config(self.socket_dir(), self.port, dbname)
    }

    /// TCP URL with password, for tools that take a URL (`DATABASE_URL`, the CLI).
    /// The database name is percent-encoded where a URL requires it.
    pub fn url(&self, dbname: &str) -> String {
        let dbname: String = dbname
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("postgres://postgres:{}@127.0.0.1:{}/{dbname}", self.password, self.port)
    }

    /// `CREATE DATABASE "<name>"`, run from the admin database `postgres`.
    pub fn create_database(&self, name: &str) -> Result<(), Error> {
        let mut client = self
            .config("postgres")
            .connect(postgres::NoTls)
            .map_err(|e| Error::with("could not connect to the scratch cluster", e))?;
        let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        client
            .batch_execute(&sql)
            .map_err(|e| Error::with(format!("could not create database {name:?}"), e))
    }

    /// A hot standby of this cluster: `pg_basebackup -R` of it into a directory of its own,
    /// started on another port and streaming from this one (read-only: `pg_is_in_recovery()`).
    /// Same superuser password; removed with the returned value.
    pub fn standby(&self) -> Result<Scratch, Error> {
        let bindir = find_bindir()?;
        let owner = server_owner()?;
        let dir = tempfile::Builder::new()
            .prefix("pg-scratch-standby-")
            .tempdir()
            .map_err(|e| Error::with("could not create a temporary directory (check TMPDIR)", e))?;
        chown(dir.path(), owner)?;
        let mut cmd = Command::new(bindir.join("pg_basebackup"));
        cmd.arg("-D").arg(dir.path().join("data"))
            .arg("-h").arg(self.socket_dir())
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-R", "--no-sync", "-X", "stream", "--checkpoint=fast"])
            .current_dir(dir.path())
            .stdin(Stdio::null());
        as_owner(&mut cmd, owner);
        let out = cmd.output().map_err(|e| Error::with("could not run pg_basebackup", e))?;
        if !out.status.success() {
            return Err(Error::msg(format!("pg_basebackup failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr).trim_end())));
        }
        let port = free_port()?;
        let postmaster = launch(&bindir, dir.path(), owner, port, &[])?;
        match wait_ready(&postmaster, dir.path(), port) {
            Ok(()) => Ok(Scratch { postmaster, dir, port, password: self.password.clone() }),
            Err(_) => Err(Error::msg(format!("the standby did not start; last lines of its log:\n{}", log_tail(&dir.path().join("postgres.log"))))),
        }
    }

    /// Stops the server and removes the directory (same as dropping).
    pub fn stop(self) {}
}

fn socket_config(socket_dir: &Path, port: u16, dbname: &str) -> postgres::Config {
    let mut config = postgres::Config::new();
    config.host_path(socket_dir).port(port).user("postgres").dbname(dbname);
    config
}

enum Startup {
    PortTaken,
    Failed(&'static str),
}

/// Polls over the unix socket until the server accepts connections.
fn wait_ready(postmaster: &Postmaster, dir: &Path, port: u16) -> Result<(), Startup> {
    let mut config = socket_config(dir, port, "postgres");
    config.connect_timeout(Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if process::reap(postmaster.pid, false) {
            // Never signal or reap it again: the pid may be reused.
            postmaster.exited.store(true, Ordering::Relaxed);
            process::unregister(postmaster.pid);
            let log = log_tail(&dir.join("postgres.log"));
            return Err(if log.contains("Address already in use") {
                Startup::PortTaken
            } else {
                Startup::Failed("the PostgreSQL server exited during startup")
            });
        }
        if config.connect(postgres::NoTls).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Startup::Failed("the PostgreSQL server did not accept connections within 30 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Fast shutdown (SIGINT to the postmaster, bounded wait, then SIGKILL); the
/// `TempDir` field then removes the directory. Nothing here can panic, so this is
/// safe during a panic unwind.
impl Drop for Scratch {
    fn drop(&mut self) {
        self.postmaster.stop();
    }
}

/// The postmaster child; stops itself on drop (also covers failed startups).
struct Postmaster {
    pid: libc::pid_t,
    exited: AtomicBool,
}

impl Postmaster {
    fn stop(&self) {
        // Once exited and reaped, never signal the pid again: it may have been reused.
        if !self.exited.swap(true, Ordering::Relaxed) {
            process::shutdown(self.pid);
            process::unregister(self.pid);
        }
    }
}

impl Drop for Postmaster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `(uid, gid)` of the `postgres` user when we are root, else `None`.
///
/// initdb and postgres refuse to run as root, so when the process is root the cluster
/// is created and run as the `postgres` OS user (the child's uid/gid are switched)
/// and its directory is chowned to that user.
fn server_owner() -> Result<Option<(u32, u32)>, Error> {
    // SAFETY: geteuid has no preconditions; getpwnam gets a NUL-terminated name and its
    // result is read immediately (it points into static storage).
    unsafe {
        if libc::geteuid() != 0 {
            return Ok(None);
        }
        let pw = libc::getpwnam(c"postgres".as_ptr());
        if pw.is_null() {
            return Err(Error::msg(
                "running as root, but there is no `postgres` OS user to run the server as \
                 (PostgreSQL refuses to run as root): create one (useradd --system postgres) \
                 or run as a regular user",
            ));
        }
        Ok(Some(((*pw).pw_uid, (*pw).pw_gid)))
    }
}

fn as_owner(cmd: &mut Command, owner: Option<(u32, u32)>) {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
    }
}

fn chown(path: &Path, owner: Option<(u32, u32)>) -> Result<(), Error> {
    match owner {
        None => Ok(()),
        Some((uid, gid)) => std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(|e| Error::with(format!("could not chown {} to postgres", path.display()), e)),
    }
}

/// 24 hex characters from /dev/urandom (no extra crates needed for this).
fn random_password() -> Result<String, Error> {
    let mut bytes = [0u8; 12];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::with("could not read /dev/urandom", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Bumped when what [`initdb`] makes changes: templates of another format are not reused.
const TEMPLATE_FORMAT: u32 = 1;

/// The data directory `initdb` made once for the server in `bindir` (found again by the
/// server's version and this crate's template format), made now if there is none: in a
/// directory of its own first, then renamed into place, so that concurrent processes never see
/// half of one.
fn template(bindir: &Path, owner: Option<(u32, u32)>) -> Result<PathBuf, Error> {
    let version = Command::new(bindir.join("postgres")).arg("--version").output().map_err(|e| Error::with("could not run postgres --version", e))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().replace(|c: char| !c.is_ascii_alphanumeric() && c != '.', "_");
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let place = std::env::temp_dir().join(format!("pg-scratch-template-{uid}-{version}-{TEMPLATE_FORMAT}"));
    let data = place.join("data");
    if place.join("ready").is_file() {
        return Ok(data);
    }
    let building = tempfile::Builder::new()
        .prefix("pg-scratch-template-building-")
        .tempdir()
        .map_err(|e| Error::with("could not create a temporary directory (check TMPDIR)", e))?;
    initdb(bindir, building.path(), owner, &random_password()?)?;
    std::fs::write(building.path().join("ready"), b"").map_err(|e| Error::with("could not mark the template ready", e))?;
    let building = building.keep();
    if std::fs::rename(&building, &place).is_err() {
        // Another process put one there first: that one serves.
        let _ = std::fs::remove_dir_all(&building);
    }
    if !place.join("ready").is_file() {
        return Err(Error::msg(format!("could not put the template data directory at {}", place.display())));
    }
    Ok(data)
}

/// Copies the template's data directory into `dir` (as `data`, owned and private as the server
/// wants it).
fn copy_data(template: &Path, dir: &Path, owner: Option<(u32, u32)>) -> Result<(), Error> {
    chown(dir, owner)?;
    let out = Command::new("cp")
        .arg("-a")
        .arg(template)
        .arg(dir.join("data"))
        .output()
        .map_err(|e| Error::with("could not run cp", e))?;
    if !out.status.success() {
        return Err(Error::msg(format!("could not copy {} into {}: {}", template.display(), dir.display(), String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(())
}

fn initdb(bindir: &Path, dir: &Path, owner: Option<(u32, u32)>, password: &str) -> Result<(), Error> {
    chown(dir, owner)?;
    let pwfile = dir.join("pwfile");
    std::fs::write(&pwfile, password)
        .map_err(|e| Error::with(format!("could not write {}", pwfile.display()), e))?;
    chown(&pwfile, owner)?;
    let mut cmd = Command::new(bindir.join("initdb"));
    cmd.arg("-D").arg(dir.join("data"))
        .args(["-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .args(["-E", "UTF8", "--locale=C", "--no-sync"])
        .current_dir(dir) // the caller's cwd may not be accessible to the postgres user
        .stdin(Stdio::null());
    as_owner(&mut cmd, owner);
    let hint = match owner {
        Some(_) => " (it runs as the `postgres` OS user, which must be able to reach this directory: check TMPDIR)",
        None => "",
    };
    let out = cmd.output().map_err(|e| {
        Error::with(format!("could not run {} in {}{hint}", bindir.join("initdb").display(), dir.display()), e)
    })?;
    let _ = std::fs::remove_file(&pwfile);
    if !out.status.success() {
        return Err(Error::msg(format!(
            "initdb failed ({}) in {}{hint}:\n{}",
            out.status,
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        )));
    }
    Ok(())
}

fn free_port() -> Result<u16, Error> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| Error::with("could not find a free TCP port on 127.0.0.1", e))
}

fn launch(bindir: &Path, dir: &Path, owner: Option<(u32, u32)>, port: u16, settings: &[(&str, &str)]) -> Result<Postmaster, Error> {
    let log_path = dir.join("postgres.log");
    let log = File::create(&log_path)
        .map_err(|e| Error::with(format!("could not create {}", log_path.display()), e))?;
    let log2 = log.try_clone().map_err(|e| Error::with("could not duplicate the log file handle", e))?;
    let mut cmd = Command::new(bindir.join("postgres"));
    cmd.arg("-D").arg(dir.join("data"))
        .arg("-k").arg(dir)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
        .args(["-c", "max_connections=200", "-c", "listen_addresses=127.0.0.1"])
        .args(settings.iter().flat_map(|(k, v)| ["-c".to_string(), format!("{k}={v}")]))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    as_owner(&mut cmd, owner);
    let child = process::spawn_tied_to_process(cmd)
        .map_err(|e| Error::with(format!("could not start {}", bindir.join("postgres").display()), e))?;
    let pid = child.id() as libc::pid_t;
    // From here on the pid is reaped with waitpid by `process`, not through `child`.
    drop(child);
    process::register(pid, dir.to_path_buf());
    Ok(Postmaster { pid, exited: AtomicBool::new(false) })
}

#[cfg(test)]
mod tests;
