//! From settings to a connected client: where the URL comes from, which URL spellings are
//! accepted, TLS, and how a connection is named in output (never with its password).
//!
//! URL precedence: `--database-url` > the variable named by `database-url-env` (default
//! `DATABASE_URL`) > that key in the nearest `.env` file (up to the workspace root) > the connection service > libpq's `PG*` variables.
//! As libpq does, `PG*` variables also fill what the URL leaves out (password, user, ...).

use std::path::{Path, PathBuf};
use std::time::Duration;

use procrastinate_migrations::db::{Conn, ConnectError};
use tokio_postgres::config::Host;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{CancelToken, Config};
use crate::tls::MakeRustls;

use procrastinate_migrations::conninfo;

use crate::Failure;

/// libpq's sslmode, which tokio-postgres only partly knows (it has no verify-ca/verify-full).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// No TLS.
    Disable,
    /// TLS when the server accepts it, plain otherwise; unverified. The default, and `allow`.
    Prefer,
    /// TLS or no connection; unverified, unless a root certificate is given (then as `VerifyCa`).
    Require,
    /// TLS, with the server's certificate checked against the root certificate.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyFull,
}

impl TlsMode {
    fn parse(s: &str) -> Result<TlsMode, Failure> {
        Ok(match s {
            "disable" => TlsMode::Disable,
            // `allow` tries plain first; prefer's order is as close as the driver gets.
            "allow" | "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            other => {
                return Err(Failure::usage(format!(
                    "sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )))
            }
        })
    }
}

/// A database to connect to, and how to name it in output.
#[derive(Clone)]
pub struct Target {
    /// Host, port, user, password, database, application name and connect timeout; what the URL
    /// leaves out comes from `PG*`.
    pub config: Config,
    /// The `sslmode` asked for (`sslmode`, PGSSLMODE), or the driver's default, `prefer`.
    pub tls: TlsMode,
    /// `sslrootcert` or PGSSLROOTCERT: a PEM file, or `system` for OpenSSL's default store;
    /// `None` looks for ~/.postgresql/root.crt when a mode verifies.
    pub root_cert: Option<PathBuf>,
    /// The client certificate the server may ask for (`sslcert`/`sslkey`, PGSSLCERT/PGSSLKEY, or
    /// libpq's ~/.postgresql/postgresql.crt and .key when both exist).
    pub client_cert: Option<ClientCert>,
    /// `round-trip-timeout`: the bound on each round trip of the connection (see `db::Conn`).
    pub round_trip: Duration,
}

/// A client certificate and its key (PEM), with the key's passphrase (`sslpassword`).
#[derive(Clone)]
pub struct ClientCert {
    /// The certificate (chain), PEM.
    pub cert: PathBuf,
    /// Its private key, PEM; refused when group or others can read it, as libpq does.
    pub key: PathBuf,
    /// `sslpassword`, to decrypt the key.
    pub password: Option<String>,
}

impl Target {
    /// `postgres://user@host:port/dbname`: what logs and errors say, without the password.
    pub fn display(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "postgres://{}@{host}:{port}/{}",
            self.config.get_user().unwrap_or("?"),
            self.config.get_dbname().unwrap_or("?")
        )
    }

    /// Connects with the TLS the mode asks for, every wait bounded (`connect_timeout` for the
    /// set-up, `round_trip` for each round trip); the error names the target, never the password.
    pub fn connect(&self) -> Result<Conn, Failure> {
        let fail = |e: ConnectError| {
            // A database that does not exist yet: say how to make it.
            let missing = matches!(&e, ConnectError::Failed(e) if e.code().map(|c| c.code()) == Some("3D000"));
            let hint = if missing { "; create it with `cargo procrastinate database create`" } else { "" };
            Failure::connect(format!("cannot connect to {}: {}{hint}", self.display(), crate::tls::explain(&e.to_string())))
        };
        if self.tls == TlsMode::Disable {
            return Conn::connect(&self.config, tokio_postgres::NoTls, self.round_trip).map_err(fail);
        }
        // The certificates are read up front, so that a missing one is named clearly.
        Conn::connect(&self.config, self.tls_connector()?, self.round_trip).map_err(fail)
    }

    /// Asks the server to cancel the statement in flight on the connection of `token`, and
    /// waits (bounded) until the server has closed the request's socket: PgBouncer drops a
    /// request whose socket the client closes right after writing it. Plain, as libpq sends it
    /// (before PostgreSQL 17), unless the mode requires TLS.
    pub fn cancel(&self, token: &CancelToken) -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let bound = self.config.get_connect_timeout().copied().unwrap_or(Duration::from_secs(10));
        let host = self.config.get_hosts().first().cloned().ok_or("no host to send it to")?;
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let plain = matches!(self.tls, TlsMode::Disable | TlsMode::Prefer);
        let sent = async {
            let (stream, keep) = cancel::open(&host, port).await.map_err(|e| format!("cannot reach the server: {e}"))?;
            let name = match &host {
                Host::Tcp(h) => h.clone(),
                Host::Unix(_) => String::new(),
            };
            let sent = if plain {
                token.cancel_query_raw(stream, tokio_postgres::NoTls).await
            } else {
                let mut connector = self.tls_connector().map_err(|f| f.message)?;
                let tls = MakeTlsConnect::<cancel::Raw>::make_tls_connect(&mut connector, &name).map_err(|e| e.to_string())?;
                token.cancel_query_raw(stream, tls).await
            };
            sent.map_err(|e| procrastinate_migrations::db::describe(&e))?;
            // The request's socket stays open until the server (or PgBouncer) closes it.
            cancel::until_closed(keep).await;
            Ok(())
        };
        match rt.block_on(async { tokio::time::timeout(bound + Duration::from_secs(5), sent).await }) {
            Ok(result) => result,
            Err(_) => Err(format!("the server did not take the cancel request within {}s", (bound + Duration::from_secs(5)).as_secs())),
        }
    }

    /// Whether the server's certificate is checked (and so a root certificate needed).
    fn verifies(&self) -> bool {
        matches!(self.tls, TlsMode::VerifyCa | TlsMode::VerifyFull)
            // libpq: with a root certificate given, `require` verifies the chain like verify-ca.
            || (self.tls == TlsMode::Require && self.root_cert.is_some())
    }

    fn tls_connector(&self) -> Result<MakeRustls, Failure> {
        let verify = match self.tls {
            TlsMode::VerifyFull => crate::tls::Verify::Full(&self.root_cert),
            _ if self.verifies() => crate::tls::Verify::Chain(&self.root_cert),
            // prefer/require without a root certificate: encrypted, not authenticated (libpq's
            // behaviour too).
            _ => crate::tls::Verify::Nothing,
        };
        Ok(MakeRustls::new(crate::tls::config(verify, self.client_cert.as_ref())?))
    }
}

/// The cancel request's own socket: opened by us, so that it can stay open after the driver
/// has written the request (the driver shuts a stream it is given down and drops it).
mod cancel {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
    use tokio_postgres::config::Host;

    /// A TCP or Unix stream whose shutdown does nothing: the socket closes when its other
    /// handle ([`Keep`]) sees the server close it.
    #[derive(Debug)]
    pub(super) enum Raw {
        Tcp(tokio::net::TcpStream),
        Unix(tokio::net::UnixStream),
    }

    /// The same socket, kept to read until the server closes it.
    pub(super) enum Keep {
        Tcp(tokio::net::TcpStream),
        Unix(tokio::net::UnixStream),
    }

    /// Connects to the server's first host and gives two handles on the one socket.
    pub(super) async fn open(host: &Host, port: u16) -> io::Result<(Raw, Keep)> {
        match host {
            Host::Tcp(h) => {
                let s = tokio::net::TcpStream::connect((h.as_str(), port)).await?.into_std()?;
                let dup = s.try_clone()?;
                Ok((Raw::Tcp(tokio::net::TcpStream::from_std(dup)?), Keep::Tcp(tokio::net::TcpStream::from_std(s)?)))
            }
            Host::Unix(dir) => {
                let s = tokio::net::UnixStream::connect(dir.join(format!(".s.PGSQL.{port}"))).await?.into_std()?;
                let dup = s.try_clone()?;
                Ok((Raw::Unix(tokio::net::UnixStream::from_std(dup)?), Keep::Unix(tokio::net::UnixStream::from_std(s)?)))
            }
        }
    }

    /// Reads until the server closes the socket (it sends nothing back to a cancel request).
    pub(super) async fn until_closed(keep: Keep) {
        let mut buf = [0u8; 64];
        match keep {
            Keep::Tcp(mut s) => while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {},
            Keep::Unix(mut s) => while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {},
        }
    }

    impl AsyncRead for Raw {
        fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            match self.get_mut() {
                Raw::Tcp(s) => Pin::new(s).poll_read(cx, buf),
                Raw::Unix(s) => Pin::new(s).poll_read(cx, buf),
            }
        }
    }

    impl AsyncWrite for Raw {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
            match self.get_mut() {
                Raw::Tcp(s) => Pin::new(s).poll_write(cx, data),
                Raw::Unix(s) => Pin::new(s).poll_write(cx, data),
            }
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            match self.get_mut() {
                Raw::Tcp(s) => Pin::new(s).poll_flush(cx),
                Raw::Unix(s) => Pin::new(s).poll_flush(cx),
            }
        }

        /// Nothing: a half-close right after the request is what PgBouncer 1.18 drops it for.
        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
}

/// Finds the URL by precedence and builds the target. `Ok(None)`: nothing configured anywhere.
/// `dotenv`: where a `.env` file is looked for (see [`dotenv_file`]), `None` for `--no-dotenv`.
pub fn target(flag: Option<&str>, url_env: &str, dotenv: Option<(&Path, Option<&Path>)>) -> Result<Option<Target>, Failure> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if flag.is_some_and(|f| f.trim().is_empty()) {
        // An empty flag is a mistake (an unset variable in a script), not "use the defaults".
        return Err(Failure::usage("--database-url is empty: give a URL, or leave the flag out"));
    }
    let dotenv = || -> Result<Option<String>, Failure> {
        let Some(path) = dotenv.and_then(|(cwd, manifest_dir)| dotenv_file(cwd, manifest_dir)) else { return Ok(None) };
        if !path.is_file() {
            return Err(Failure::usage(format!(
                "{} is not a file (a directory?): it cannot hold {url_env}; remove it, or pass --no-dotenv",
                path.display()
            )));
        }
        let entries = dotenvy::from_path_iter(&path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        let mut found = None;
        for entry in entries {
            // A malformed line is an error that names it, never a silent skip.
            // Named by its line number only: the line may hold a password.
            let (k, v) = entry.map_err(|e| match e {
                dotenvy::Error::LineParse(line, _) => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let n = text.lines().position(|l| l.trim() == line.trim()).map_or_else(|| "?".to_string(), |i| (i + 1).to_string());
                    Failure::usage(format!("{} is malformed: line {n} is not KEY=VALUE", path.display()))
                }
                e => Failure::usage(format!("{} is malformed: {e}", path.display())),
            })?;
            // Every line is read: a malformed one after ours is still an error.
            if k == url_env {
                found = Some(v);
            }
        }
        Ok(found)
    };
    if flag.is_some_and(conninfo::carries_password) {
        crate::term::warn(&format!(
            "the password in --database-url is visible to every user of this machine (`ps`); \
             put the URL in ${url_env} or .env, or the password in PGPASSWORD"
        ));
    }
    let url = match flag.map(str::to_string).or_else(|| env(url_env)) {
        Some(url) => Some(url),
        None => dotenv()?,
    };
    let has_libpq = ["PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE"].iter().any(|k| env(k).is_some());
    match url {
        Some(url) => parse(&url, &env).map(Some),
        None if has_libpq => parse("", &env).map(Some),
        None => Ok(None),
    }
}

/// The `.env` file dotenvy would find: in the current directory or its parents (from the
/// manifest's directory when the current one is outside it), up to the workspace root (the
/// nearest directory above whose Cargo.toml has `[workspace]`), never beyond.
pub fn dotenv_file(cwd: &Path, manifest_dir: Option<&Path>) -> Option<PathBuf> {
    let start = match manifest_dir {
        Some(m) if !cwd.starts_with(m) => m,
        _ => cwd,
    };
    for dir in start.ancestors() {
        let file = dir.join(".env");
        // Anything there named `.env` (a directory too) is read, and an error if it cannot be.
        if file.symlink_metadata().is_ok() {
            return Some(file);
        }
        // The workspace root: its manifest has a `[workspace]` table (however it is spelt).
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
        if toml::from_str::<toml::Table>(&manifest).is_ok_and(|t| t.contains_key("workspace")) {
            return None;
        }
    }
    None
}

/// [`parse`] with the process's environment: what `--server URL` takes (libpq's variables,
/// the service file and the password file apply as for the database URL).
pub fn parse_env(input: &str) -> Result<Target, Failure> {
    parse(input, &|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// Parses a connection string (a URL, `postgres://`, `postgresql://`, `postgresql+driver://`,
/// or libpq's `key=value` pairs), fills what it leaves out as libpq does (the connection
/// service, `PG*` variables, the password file: [`conninfo::resolve`]), and builds the target.
/// Errors never quote the input: it may hold a password.
pub fn parse(input: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Target, Failure> {
    let pairs = if input.trim().is_empty() { Vec::new() } else { conninfo::parse(input).map_err(Failure::usage)? };
    // A deploy step should not wait forever (libpq's default), and names itself.
    let defaults = [("connect_timeout", "10"), ("fallback_application_name", "cargo-procrastinate")];
    let params = conninfo::resolve(pairs, env, &defaults).map_err(Failure::usage)?;
    if params.get("connect_timeout").is_some_and(|t| t.trim().parse::<i64>().is_ok_and(|t| t <= 0)) {
        return Err(Failure::usage("connect_timeout 0 means waiting forever for the server: give a number of seconds (default 10)"));
    }
    let config = params.config().map_err(Failure::usage)?;
    let tls = TlsMode::parse(params.get("sslmode").unwrap_or("prefer"))?;
    let home = |name: &str| PathBuf::from(env("HOME").unwrap_or_default()).join(".postgresql").join(name);
    let client_cert = match (params.get("sslcert"), params.get("sslkey")) {
        (Some(cert), key) => Some((PathBuf::from(cert), key.map_or_else(|| home("postgresql.key"), PathBuf::from))),
        (None, Some(_)) => return Err(Failure::usage("sslkey is set without sslcert: give both (or PGSSLCERT and PGSSLKEY)")),
        // libpq's defaults, used when both are there.
        (None, None) => Some((home("postgresql.crt"), home("postgresql.key"))).filter(|(c, k)| c.is_file() && k.is_file()),
    }
    .map(|(cert, key)| ClientCert { cert, key, password: params.get("sslpassword").map(str::to_string) });
    if tls == TlsMode::Disable && params.get("sslcert").is_some() {
        return Err(Failure::usage("sslcert is set with sslmode=disable: a client certificate needs TLS"));
    }
    Ok(Target { config, tls, root_cert: params.get("sslrootcert").map(PathBuf::from), client_cert, round_trip: Duration::from_secs(30) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn url_spellings_and_sslmode() {
        for url in ["postgres://u:secret@db:6543/app", "postgresql://u:secret@db:6543/app", "postgresql+psycopg://u:secret@db:6543/app"] {
            let t = parse(url, &no_env).unwrap();
            assert_eq!(t.display(), "postgres://u@db:6543/app");
            assert_eq!(t.config.get_password(), Some(&b"secret"[..]));
            assert_eq!(t.tls, TlsMode::Prefer);
        }
        let t = parse("postgres://u@db/app?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&connect_timeout=3", &no_env).unwrap();
        assert_eq!((t.tls, t.root_cert.as_deref()), (TlsMode::VerifyFull, Some(Path::new("/tmp/ca.pem"))));
        assert_eq!(t.config.get_connect_timeout(), Some(&Duration::from_secs(3)));
        let t = parse("host=db user=u dbname=app sslmode=require", &no_env).unwrap();
        assert_eq!((t.display(), t.tls), ("postgres://u@db:5432/app".to_string(), TlsMode::Require));
        assert!(parse("mysql://u:secret@db/app", &no_env).is_err());
        // A driver-read sslmode stays as strong as it was.
        assert_eq!(parse("host=db user=u sslmode = require", &no_env).unwrap().tls, TlsMode::Require);
    }

    #[test]
    fn a_password_is_never_echoed() {
        for input in ["host=db password=ab://cd dbname=x bogus=1", "host=db password=s3cret://x port=notaport", "postgres://u:s3cret@db:nope/app"] {
            let err = parse(input, &no_env).err().expect("invalid");
            assert!(!err.message.contains("ab://cd") && !err.message.contains("s3cret"), "{}", err.message);
        }
    }

    #[test]
    fn libpq_variables_fill_the_gaps() {
        let env = |k: &str| match k {
            "PGPASSWORD" => Some("pw".to_string()),
            "PGHOST" => Some("h".to_string()),
            "PGPORT" => Some("7".to_string()),
            _ => None,
        };
        let t = parse("postgres://u@/app", &env).unwrap();
        assert_eq!(t.display(), "postgres://u@h:7/app");
        assert_eq!(t.config.get_password(), Some(&b"pw"[..]));
        let t = parse("postgres://u:own@x/app", &env).unwrap();
        assert_eq!(t.config.get_password(), Some(&b"own"[..]));
        // PGPORT fills a host without a port, not one with.
        assert_eq!(parse("postgres://u@db/app", &env).unwrap().display(), "postgres://u@db:7/app");
        assert_eq!(parse("postgres://u@db:5433/app", &env).unwrap().display(), "postgres://u@db:5433/app");
        assert_eq!(parse("postgres://u@[::1]/app", &env).unwrap().config.get_ports(), &[7]);
    }
}
