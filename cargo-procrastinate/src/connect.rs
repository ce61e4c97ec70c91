//! From settings to a connected client: where the URL comes from, which URL spellings are
//! accepted, TLS, and how a connection is named in output (never with its password).
//!
//! URL precedence: `--database-url` > the variable named by `database-url-env` (default
//! `DATABASE_URL`) > that key in a `.env` file beside the manifest > libpq's `PG*` variables.
//! As libpq does, `PG*` variables also fill what the URL leaves out (password, user, ...).

use std::path::{Path, PathBuf};
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use std::future::Future;
use std::pin::Pin;

use postgres::config::{Host, SslMode};
use postgres::tls::{MakeTlsConnect, TlsConnect};
use postgres::{Client, Config};
use postgres_openssl::MakeTlsConnector;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::Failure;

/// libpq's sslmode, which tokio-postgres only partly knows (it has no verify-ca/verify-full).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
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
pub struct Target {
    pub config: Config,
    pub tls: TlsMode,
    pub root_cert: Option<PathBuf>,
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

    pub fn connect(&self) -> Result<Client, Failure> {
        let fail = |e: postgres::Error| {
            Failure::connect(format!("cannot connect to {}: {}", self.display(), procrastinate_migrations::db::describe(&e)))
        };
        if self.tls == TlsMode::Disable {
            return self.config.connect(postgres::NoTls).map_err(fail);
        }
        if self.verifies() {
            // The certificates are read up front, so that a missing one is named clearly.
            let connector = self.tls_connector()?;
            return self.config.connect(connector).map_err(fail);
        }
        // prefer/require without verification: nothing of TLS is built until the server has
        // accepted it (a server without TLS, under `prefer`, never costs the context).
        self.config.connect(LazyTls { tls: self.tls }).map_err(fail)
    }

    /// Whether the server's certificate is checked (and so a root certificate needed).
    fn verifies(&self) -> bool {
        matches!(self.tls, TlsMode::VerifyCa | TlsMode::VerifyFull)
            // libpq: with a root certificate given, `require` verifies the chain like verify-ca.
            || (self.tls == TlsMode::Require && self.root_cert.is_some())
    }

    fn tls_connector(&self) -> Result<MakeTlsConnector, Failure> {
        let tls_err = |e: openssl::error::ErrorStack| Failure::connect(format!("cannot set up TLS: {e}"));
        let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(tls_err)?;
        if self.verifies() {
            match &self.root_cert {
                Some(path) if path.as_os_str() == "system" => builder.set_default_verify_paths().map_err(tls_err)?,
                Some(path) => builder.set_ca_file(path).map_err(|e| {
                    Failure::connect(format!("cannot read sslrootcert {}: {e}", path.display()))
                })?,
                None => {
                    let default = home_root_cert();
                    if !default.is_file() {
                        return Err(Failure::connect(format!(
                            "sslmode=verify-ca/verify-full needs a root certificate: set sslrootcert=PATH in the URL \
                             (or `system`), PGSSLROOTCERT, or create {}",
                            default.display()
                        )));
                    }
                    builder.set_ca_file(&default).map_err(tls_err)?;
                }
            }
            builder.set_verify(SslVerifyMode::PEER);
        } else {
            // prefer/require without a root certificate: encrypted, not authenticated (libpq's
            // behaviour too).
            builder.set_verify(SslVerifyMode::NONE);
        }
        let mut connector = MakeTlsConnector::new(builder.build());
        let check_host = self.tls == TlsMode::VerifyFull;
        connector.set_callback(move |config, _domain| {
            config.set_verify_hostname(check_host);
            Ok(())
        });
        Ok(connector)
    }
}

/// TLS that is set up only once the server has said yes to it: encrypted, not authenticated
/// (`prefer` and `require` without a root certificate, as in libpq).
#[derive(Clone, Copy)]
struct LazyTls {
    tls: TlsMode,
}

/// [`LazyTls`] for one host.
struct LazyConnect {
    domain: String,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S> MakeTlsConnect<S> for LazyTls
where
    S: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + 'static + Sync + Send,
{
    type Stream = postgres_openssl::TlsStream<S>;
    type TlsConnect = LazyConnect;
    type Error = BoxError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<LazyConnect, BoxError> {
        debug_assert!(matches!(self.tls, TlsMode::Prefer | TlsMode::Require));
        Ok(LazyConnect { domain: domain.to_string() })
    }
}

impl<S> TlsConnect<S> for LazyConnect
where
    S: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + 'static + Sync + Send,
{
    type Stream = postgres_openssl::TlsStream<S>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Stream, BoxError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            // Built here, after the server accepted TLS; no certificate store: nothing verifies.
            let mut builder = SslConnector::builder(SslMethod::tls_client())?;
            builder.set_verify(SslVerifyMode::NONE);
            let mut ssl = builder.build().configure()?;
            ssl.set_verify_hostname(false);
            postgres_openssl::TlsConnector::new(ssl, &self.domain).connect(stream).await
        })
    }
}

fn home_root_cert() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".postgresql/root.crt")
}

/// Finds the URL by precedence and builds the target. `Ok(None)`: nothing configured anywhere.
pub fn target(flag: Option<&str>, url_env: &str, manifest_dir: Option<&Path>) -> Result<Option<Target>, Failure> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if flag.is_some_and(|f| f.trim().is_empty()) {
        // An empty flag is a mistake (an unset variable in a script), not "use the defaults".
        return Err(Failure::usage("--database-url is empty: give a URL, or leave the flag out"));
    }
    let dotenv = || -> Result<Option<String>, Failure> {
        let Some(path) = manifest_dir.map(|d| d.join(".env")).filter(|p| p.is_file()) else { return Ok(None) };
        let entries = dotenvy::from_path_iter(&path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        for entry in entries {
            // A malformed line is an error that names it, never a silent skip.
            let (k, v) = entry.map_err(|e| Failure::usage(format!("{} is malformed: {e}", path.display())))?;
            if k == url_env {
                return Ok(Some(v));
            }
        }
        Ok(None)
    };
    if flag.is_some_and(carries_password) {
        eprintln!(
            "warning: the password in --database-url is visible to every user of this machine (`ps`); \
             put the URL in ${url_env} or .env, or the password in PGPASSWORD"
        );
    }
    let url = match flag.map(str::to_string).or_else(|| env(url_env)) {
        Some(url) => Some(url),
        None => dotenv()?,
    };
    let has_libpq = ["PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD"].iter().any(|k| env(k).is_some());
    match url {
        Some(url) => parse(&url, &env).map(Some),
        None if has_libpq => parse("", &env).map(Some),
        None => Ok(None),
    }
}

/// Whether a URL or key=value string spells out a password.
fn carries_password(input: &str) -> bool {
    match url_scheme(input) {
        Some((_, rest)) => {
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            authority.rsplit_once('@').is_some_and(|(userinfo, _)| userinfo.contains(':')) || rest.contains("password=")
        }
        None => input.split_whitespace().any(|kv| kv.starts_with("password=")),
    }
}

/// `scheme://...` with a scheme as RFC 3986 spells it; anything else is libpq's key=value form
/// (whose values, a password among them, may well contain `://`).
fn url_scheme(input: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = input.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// Parses a URL (`postgres://`, `postgresql://`, `postgresql+driver://`) or a key=value string,
/// then fills gaps from `PG*` variables. Errors never quote the input: it may hold a password.
pub fn parse(input: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Target, Failure> {
    let mut sslmode = None;
    let mut root_cert = None;
    let cleaned = if let Some((scheme, after)) = url_scheme(input) {
        // SQLAlchemy spells the driver into the scheme: postgresql+psycopg://
        let base = scheme.split('+').next().unwrap_or(scheme);
        if base != "postgres" && base != "postgresql" {
            return Err(Failure::usage(format!("database URL scheme `{scheme}://` is not postgres:// or postgresql://")));
        }
        let (head, query) = after.split_once('?').unwrap_or((after, ""));
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslmode" => sslmode = Some(percent_decode(v)),
                "sslrootcert" => root_cert = Some(percent_decode(v)),
                _ => rest.push(pair),
            }
        }
        let query = if rest.is_empty() { String::new() } else { format!("?{}", rest.join("&")) };
        format!("postgresql://{}{query}", with_default_port(head, env("PGPORT")))
    } else {
        // key=value form (libpq conninfo); values with spaces must be quoted there, so a
        // whitespace split of unquoted sslmode/sslrootcert is enough (anything it misses is
        // still read by the driver below).
        let mut kept = Vec::new();
        for part in input.split_whitespace() {
            match part.split_once('=') {
                Some(("sslmode", v)) => sslmode = Some(v.trim_matches('\'').to_string()),
                Some(("sslrootcert", v)) => root_cert = Some(v.trim_matches('\'').to_string()),
                _ => kept.push(part),
            }
        }
        kept.join(" ")
    };
    let mut config: Config = if cleaned.is_empty() {
        Config::new()
    } else {
        cleaned.parse().map_err(|e: postgres::Error| {
            Failure::usage(format!(
                "the database URL is not valid ({}); expected postgres://user:password@host:port/dbname",
                procrastinate_migrations::db::describe(&e)
            ))
        })?
    };
    fill_from_env(&mut config, env);
    let tls = match sslmode.or_else(|| env("PGSSLMODE")) {
        Some(mode) => TlsMode::parse(&mode)?,
        // Whatever the driver read itself (its default is prefer, as libpq's).
        None => match config.get_ssl_mode() {
            SslMode::Disable => TlsMode::Disable,
            SslMode::Require => TlsMode::Require,
            _ => TlsMode::Prefer,
        },
    };
    config.ssl_mode(match tls {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        _ => SslMode::Require,
    });
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    // As libpq: the URL's application_name, else PGAPPNAME, else ours.
    if config.get_application_name().is_none() {
        config.application_name(&env("PGAPPNAME").unwrap_or_else(|| "cargo-procrastinate".into()));
    }
    Ok(Target { config, tls, root_cert: root_cert.or_else(|| env("PGSSLROOTCERT")).map(PathBuf::from) })
}

/// `user@host/db` with `:PGPORT` after each host that names no port. The driver fills 5432 in
/// for a URL host without a port, so libpq's PGPORT fallback has to happen in the text.
fn with_default_port(head: &str, port: Option<String>) -> String {
    let Some(port) = port else { return head.to_string() };
    let end = head.find('/').unwrap_or(head.len());
    let (authority, path) = head.split_at(end);
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let hosts: Vec<String> = hosts
        .split(',')
        .map(|h| {
            let after_bracket = h.rsplit_once(']').map_or(h, |(_, rest)| rest);
            if h.is_empty() || after_bracket.contains(':') { h.to_string() } else { format!("{h}:{port}") }
        })
        .collect();
    format!("{userinfo}{}{path}", hosts.join(","))
}

/// libpq's defaults for what the URL does not say.
fn fill_from_env(config: &mut Config, env: &dyn Fn(&str) -> Option<String>) {
    if config.get_hosts().is_empty() {
        match env("PGHOST") {
            Some(h) if h.starts_with('/') => config.host_path(h),
            Some(h) => config.host(&h),
            // libpq's compiled-in default on Debian is the socket directory.
            None if Path::new("/var/run/postgresql").is_dir() => config.host_path("/var/run/postgresql"),
            None => config.host("localhost"),
        };
    }
    if config.get_ports().is_empty() {
        if let Some(port) = env("PGPORT").and_then(|p| p.parse().ok()) {
            config.port(port);
        }
    }
    if config.get_user().is_none() {
        let user = env("PGUSER").or_else(|| env("USER")).unwrap_or_else(|| "postgres".into());
        config.user(&user);
    }
    if config.get_dbname().is_none() {
        let db = env("PGDATABASE").unwrap_or_else(|| config.get_user().unwrap_or("postgres").to_string());
        config.dbname(&db);
    }
    if config.get_password().is_none() {
        if let Some(pw) = env("PGPASSWORD").or_else(|| pgpass(config, env)) {
            config.password(pw);
        }
    }
}

/// The password for this connection from `PGPASSFILE` or `~/.pgpass`, as libpq reads it: lines
/// `host:port:database:user:password`, `*` matching anything, `\:` and `\\` escaped, the first
/// match winning; a file that others can read is ignored (with a warning), as libpq does.
fn pgpass(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let path = env("PGPASSFILE").map(PathBuf::from).or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    let meta = std::fs::metadata(&path).ok()?;
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            eprintln!("warning: password file {} has group or world access; permissions should be u=rw (0600) or less: ignored", path.display());
            return None;
        }
    }
    let text = std::fs::read_to_string(&path).ok()?;
    // libpq matches a Unix-socket connection as host `localhost`.
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        _ => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432).to_string();
    let wanted = [host.as_str(), port.as_str(), config.get_dbname().unwrap_or(""), config.get_user().unwrap_or("")];
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let fields = split_pgpass(line);
        (fields.len() == 5 && fields[..4].iter().zip(wanted).all(|(f, w)| f == "*" || f == w)).then(|| fields[4].clone())
    })
}

/// A .pgpass line's fields, with `\:` and `\\` unescaped.
fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().expect("never empty").extend(chars.next()),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("never empty").push(c),
        }
    }
    fields
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%').then(|| s.get(i + 1..i + 3)).flatten();
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn pgpass_lines_split_with_escapes() {
        assert_eq!(split_pgpass(r"h:5432:*:u\:x:p\\w:d"), ["h", "5432", "*", "u:x", r"p\w:d"]);
    }

    #[test]
    fn passwords_in_the_flag_are_noticed() {
        assert!(carries_password("postgres://u:secret@h/db"));
        assert!(carries_password("host=h password=secret"));
        assert!(carries_password("postgres://u@h/db?password=secret"));
        assert!(!carries_password("postgres://u@h/db"));
        assert!(!carries_password("postgres://h:5432/db"));
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
