//! Connection strings as libpq reads them, in every place a connection is made (the CLI, the
//! build-time check, an application): one grammar, one set of environment rules.
//!
//! - [`parse`]: a URL (`postgres://`, `postgresql://`, SQLAlchemy's `postgresql+driver://`) or
//!   libpq's `key = value` pairs (values quoted with `'...'`, backslash escapes, spaces around
//!   `=`), into keyword/value pairs. Errors name the keyword or the place, never a value: a
//!   value may be a password.
//! - [`resolve`]: libpq's precedence for what the string leaves out: the connection service
//!   (`service` or `PGSERVICE`, in `PGSERVICEFILE` or `~/.pg_service.conf`, then
//!   `PGSYSCONFDIR/pg_service.conf`), then the `PG*` variables, then the caller's defaults, then
//!   libpq's; the password last, from `passfile`/`PGPASSFILE`/`~/.pgpass`.
//! - [`Params::config`] (feature `postgres`): the driver's `Config`, with every keyword it knows;
//!   the TLS files are the caller's business ([`Params::get`]).
//!
//! ```
//! use procrastinate_migrations::conninfo;
//!
//! let pairs = conninfo::parse("host = db.internal  dbname='my app' sslmode=disable")?;
//! assert_eq!(pairs[1], ("dbname".to_string(), "my app".to_string()));
//! let params = conninfo::resolve(pairs, &|_| None, &[("connect_timeout", "10")])?;
//! assert_eq!(params.get("connect_timeout"), Some("10"));
//! assert_eq!(params.display(), "postgres://postgres@db.internal:5432/my app"); // libpq defaults the user
//! # Ok::<(), String>(())
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The driver's keywords, handed to it as libpq would (by `ConnInfo::config`), except
/// `keepalives_count`, which it spells `keepalives_retries`.
const DRIVER: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "options",
    "application_name",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
    "sslnegotiation",
];

/// Keywords the caller handles, besides the driver's: [`DRIVER`] and these are all this
/// crate's connections understand.
const HANDLED: &[&str] = &[
    "keepalives_count",
    // Resolved here.
    "service",
    "passfile",
    "fallback_application_name",
    "gssencmode",
    "client_encoding",
    // The caller's: TLS.
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
];

/// libpq keywords this crate does not implement: refused by name, never dropped silently.
const UNSUPPORTED: &[&str] = &[
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "sslcompression",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "sslcertmode",
    "requirepeer",
    "gsslib",
    "gssdelegation",
    "krbsrvname",
    "require_auth",
    "replication",
    "min_protocol_version",
    "max_protocol_version",
];

/// The `PG*` variable of each keyword, as libpq reads them.
const ENV: &[(&str, &str)] = &[
    ("host", "PGHOST"),
    ("hostaddr", "PGHOSTADDR"),
    ("port", "PGPORT"),
    ("dbname", "PGDATABASE"),
    ("user", "PGUSER"),
    ("password", "PGPASSWORD"),
    ("passfile", "PGPASSFILE"),
    ("options", "PGOPTIONS"),
    ("application_name", "PGAPPNAME"),
    ("connect_timeout", "PGCONNECT_TIMEOUT"),
    ("target_session_attrs", "PGTARGETSESSIONATTRS"),
    ("load_balance_hosts", "PGLOADBALANCEHOSTS"),
    ("channel_binding", "PGCHANNELBINDING"),
    ("sslnegotiation", "PGSSLNEGOTIATION"),
    ("gssencmode", "PGGSSENCMODE"),
    ("client_encoding", "PGCLIENTENCODING"),
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("sslcert", "PGSSLCERT"),
    ("sslkey", "PGSSLKEY"),
    ("sslcrl", "PGSSLCRL"),
    ("sslcrldir", "PGSSLCRLDIR"),
    ("sslsni", "PGSSLSNI"),
    ("requirepeer", "PGREQUIREPEER"),
    ("krbsrvname", "PGKRBSRVNAME"),
    ("gsslib", "PGGSSLIB"),
    ("require_auth", "PGREQUIREAUTH"),
    ("ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION"),
    ("ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION"),
];

/// Longest connection string taken: far above any real one, and a clear error instead of a
/// server that resets the connection.
pub const MAX_LEN: usize = 16 * 1024;

/// The keyword/value pairs of a connection string, in order (a later one wins). A URL's hosts
/// and ports become one `host` and one `port` value each, comma-separated, as libpq keeps them.
pub fn parse(input: &str) -> Result<Vec<(String, String)>, String> {
    if input.len() > MAX_LEN {
        return Err(format!("the connection string is {} bytes long (at most {MAX_LEN}): is it the right value?", input.len()));
    }
    let pairs = match url_scheme(input) {
        Some((scheme, rest)) => parse_url(scheme, rest)?,
        None => parse_keywords(input)?,
    };
    for (k, _) in &pairs {
        check_keyword(k)?;
    }
    Ok(pairs)
}

fn check_keyword(k: &str) -> Result<(), String> {
    if UNSUPPORTED.contains(&k) {
        return Err(format!("the connection string sets `{k}`, a libpq setting this tool does not support; remove it"));
    }
    if !DRIVER.contains(&k) && !HANDLED.contains(&k) {
        return Err(format!("the connection string sets `{k}`, which is not a PostgreSQL connection setting"));
    }
    Ok(())
}

/// `scheme://...` with a scheme as RFC 3986 spells it; anything else is libpq's key=value form
/// (whose values, a password among them, may well contain `://`).
pub fn url_scheme(input: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = input.trim_start().split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// libpq's `conninfo_parse`: `keyword = value` separated by whitespace; a value is a run of
/// non-space characters or `'quoted'`, and a backslash takes the next character as it is.
fn parse_keywords(input: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut it = input.chars().peekable();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        if it.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = it.peek() {
            if c.is_whitespace() || c == '=' {
                break;
            }
            key.push(c);
            it.next();
        }
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        if it.next() != Some('=') {
            return Err(format!("the connection string has `{key}` without `=` after it (expected key=value pairs, or a postgres:// URL)"));
        }
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        let mut value = String::new();
        if it.peek() == Some(&'\'') {
            it.next();
            loop {
                match it.next() {
                    Some('\\') => value.extend(it.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("the value of `{key}` in the connection string is an unterminated quoted string")),
                }
            }
        } else {
            while let Some(&c) = it.peek() {
                if c.is_whitespace() {
                    break;
                }
                it.next();
                if c == '\\' {
                    value.extend(it.next());
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

/// libpq's URI form: `postgresql://[user[:password]@][host[:port][,...]][/dbname][?key=value&...]`.
fn parse_url(scheme: &str, rest: &str) -> Result<Vec<(String, String)>, String> {
    // SQLAlchemy spells the driver into the scheme: postgresql+psycopg://
    let base = scheme.split('+').next().unwrap_or(scheme);
    if base != "postgres" && base != "postgresql" {
        return Err(format!("database URL scheme `{scheme}://` is not postgres:// or postgresql://"));
    }
    let decode = |what: &str, s: &str| -> Result<String, String> {
        percent_decode(s).ok_or_else(|| format!("the database URL's {what} has an invalid percent-encoding"))
    };
    let mut out = Vec::new();
    let (before_query, query) = rest.split_once('?').map_or((rest, None), |(a, q)| (a, Some(q)));
    let (authority, path) = before_query.split_once('/').map_or((before_query, None), |(a, p)| (a, Some(p)));
    let hosts = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let (user, password) = userinfo.split_once(':').map_or((userinfo, None), |(u, p)| (u, Some(p)));
            if !user.is_empty() {
                out.push(("user".into(), decode("user", user)?));
            }
            if let Some(p) = password {
                out.push(("password".into(), decode("password", p)?));
            }
            hosts
        }
        None => authority,
    };
    if !hosts.is_empty() {
        let (mut names, mut ports) = (Vec::new(), Vec::new());
        for spec in hosts.split(',') {
            let (host, port) = if let Some(inner) = spec.strip_prefix('[') {
                let (h, after) = inner.split_once(']').ok_or("the database URL has an IPv6 host without its closing `]`")?;
                (h, after.strip_prefix(':'))
            } else {
                spec.rsplit_once(':').map_or((spec, None), |(h, p)| (h, Some(p)))
            };
            if let Some(p) = port.filter(|p| !p.is_empty() && !p.bytes().all(|b| b.is_ascii_digit())) {
                return Err(format!("the database URL's port `{p}` is not a number"));
            }
            names.push(decode("host", host)?);
            ports.push(port.unwrap_or("").to_string());
        }
        if names.iter().any(|n| !n.is_empty()) {
            out.push(("host".into(), names.join(",")));
        }
        if ports.iter().any(|p| !p.is_empty()) {
            out.push(("port".into(), ports.join(",")));
        }
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        out.push(("dbname".into(), decode("database name", db)?));
    }
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| "the database URL has a query parameter without `=`".to_string())?;
        let (k, v) = (decode("query", k)?, decode("query", v)?);
        // libpq takes JDBC's `ssl=true` as sslmode=require.
        if k == "ssl" && v == "true" {
            out.push(("sslmode".into(), "require".into()));
        } else {
            out.push((k, v));
        }
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Resolved connection parameters: every keyword set by the string, the service, the
/// environment or a default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// A keyword's value, if anything set it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// `postgres://user@host:port/dbname`: how logs and errors name the connection, never with
    /// its password.
    pub fn display(&self) -> String {
        let host = self.get("host").and_then(|h| h.split(',').next()).unwrap_or("localhost");
        let port = self.get("port").and_then(|p| p.split(',').next()).filter(|p| !p.is_empty()).unwrap_or("5432");
        format!("postgres://{}@{host}:{port}/{}", self.get("user").unwrap_or("?"), self.get("dbname").unwrap_or("?"))
    }

    /// The driver's configuration: every keyword it knows, as it would parse them itself (so
    /// host lists, `hostaddr`, `target_session_attrs` and the rest mean what libpq means).
    /// TLS is the caller's: `sslmode` is given to the driver as `disable`, `prefer` or
    /// `require`, and the files are left to [`get`](Self::get).
    #[cfg(feature = "postgres")]
    pub fn config(&self) -> Result<tokio_postgres::Config, String> {
        let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
        let mut text = Vec::new();
        for (k, v) in &self.values {
            if DRIVER.contains(&k.as_str()) {
                text.push(format!("{k}={}", quote(v)));
            }
        }
        if let Some(n) = self.get("keepalives_count") {
            text.push(format!("keepalives_retries={}", quote(n)));
        }
        let mode = match self.get("sslmode").unwrap_or("prefer") {
            "disable" => "disable",
            "allow" | "prefer" => "prefer",
            _ => "require",
        };
        text.push(format!("sslmode={mode}"));
        text.join(" ").parse::<tokio_postgres::Config>().map_err(|e| {
            // The driver names the keyword whose value it cannot read (never the value).
            let why = std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
            format!("the connection settings are not valid: {why}")
        })
    }
}

/// What the string leaves out, filled as libpq fills it: the service's settings, then the
/// `PG*` variables (`env`), then `defaults` (the caller's: `connect_timeout`,
/// `fallback_application_name`...), then libpq's (host: the socket directory, port 5432, user:
/// the login name, dbname: the user); the password last, from the password file.
pub fn resolve(pairs: Vec<(String, String)>, env: &dyn Fn(&str) -> Option<String>, defaults: &[(&str, &str)]) -> Result<Params, String> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in pairs {
        check_keyword(&k)?;
        values.insert(k, v);
    }
    let service = values.get("service").cloned().or_else(|| env("PGSERVICE").filter(|s| !s.is_empty()));
    if let Some(name) = service {
        for (k, v) in service_settings(&name, env)? {
            values.entry(k).or_insert(v);
        }
    }
    for (key, var) in ENV {
        if !values.contains_key(*key) {
            if let Some(v) = env(var).filter(|v| !v.is_empty()) {
                check_keyword(key).map_err(|_| format!("{var} sets `{key}`, a libpq setting this tool does not support; unset it"))?;
                values.insert(key.to_string(), v);
            }
        }
    }
    for (k, v) in defaults {
        values.entry(k.to_string()).or_insert_with(|| v.to_string());
    }
    if !values.contains_key("application_name") {
        if let Some(v) = values.get("fallback_application_name").cloned() {
            values.insert("application_name".into(), v);
        }
    }
    if !values.contains_key("host") && !values.contains_key("hostaddr") {
        // libpq's compiled-in default on Debian is the socket directory.
        let socket = "/var/run/postgresql";
        let host = if std::path::Path::new(socket).is_dir() { socket } else { "localhost" };
        values.insert("host".into(), host.into());
    }
    if !values.contains_key("user") {
        values.insert("user".into(), env("USER").or_else(|| env("LOGNAME")).unwrap_or_else(|| "postgres".into()));
    }
    if !values.contains_key("dbname") {
        let user = values["user"].clone();
        values.insert("dbname".into(), user);
    }
    check_values(&values)?;
    if !values.contains_key("password") {
        if let Some(pw) = passfile(&values, env) {
            values.insert("password".into(), pw);
        }
    }
    Ok(Params { values })
}

/// Values this crate decides on itself, checked before anything connects.
fn check_values(values: &BTreeMap<String, String>) -> Result<(), String> {
    if let Some(mode) = values.get("sslmode") {
        if !matches!(mode.as_str(), "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full") {
            return Err(format!("sslmode `{mode}` is not one of disable, allow, prefer, require, verify-ca, verify-full"));
        }
    }
    match values.get("gssencmode").map(String::as_str) {
        // Without GSSAPI, as libpq built without it: `prefer` falls back to no encryption.
        None | Some("disable" | "prefer") => {}
        Some("require") => return Err("gssencmode=require: this tool has no GSSAPI encryption; use sslmode instead".into()),
        Some(other) => return Err(format!("gssencmode `{other}` is not one of disable, prefer, require")),
    }
    if let Some(enc) = values.get("client_encoding") {
        if !matches!(enc.to_ascii_uppercase().as_str(), "UTF8" | "UTF-8" | "UNICODE" | "AUTO") {
            return Err(format!("client_encoding `{enc}`: this tool talks UTF8 only"));
        }
    }
    if let Some(t) = values.get("connect_timeout") {
        if t.trim().parse::<i64>().is_err() {
            return Err(format!("connect_timeout `{t}` is not a number of seconds"));
        }
    }
    Ok(())
}

/// The settings of service `name` from the connection service file, found as libpq finds it:
/// PGSERVICEFILE or ~/.pg_service.conf, then PGSYSCONFDIR/pg_service.conf (Debian's default
/// /etc/postgresql-common/pg_service.conf). A service named nowhere is an error, and so is a
/// line the file's grammar does not allow.
pub fn service_settings(name: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<(String, String)>, String> {
    let user_file = env("PGSERVICEFILE").map(PathBuf::from).or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".pg_service.conf")));
    let system = env("PGSYSCONFDIR").map_or_else(|| PathBuf::from("/etc/postgresql-common"), PathBuf::from).join("pg_service.conf");
    let mut looked = Vec::new();
    for path in user_file.into_iter().chain([system]) {
        looked.push(path.display().to_string());
        if path.is_dir() {
            return Err(format!("service file {} is a directory", path.display()));
        }
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let mut section: Option<String> = None;
        let mut found: Option<Vec<(String, String)>> = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            let at = || format!("{}:{}", path.display(), n + 1);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(open) = line.strip_prefix('[') {
                let s = open.strip_suffix(']').ok_or_else(|| format!("{}: a service section needs its closing `]`", at()))?;
                section = Some(s.trim().to_string());
                continue;
            }
            let (k, v) = line.split_once('=').ok_or_else(|| format!("{}: expected key=value or [service]", at()))?;
            if section.as_deref() != Some(name) {
                continue;
            }
            let k = k.trim();
            if k == "service" {
                return Err(format!("{}: a service cannot name another service", at()));
            }
            check_keyword(k).map_err(|e| format!("{}: {}", at(), e.replace("the connection string", "the service")))?;
            found.get_or_insert_with(Vec::new).push((k.to_string(), v.trim().to_string()));
        }
        if let Some(settings) = found {
            return Ok(settings);
        }
    }
    Err(format!("service `{name}` is not defined (looked in {})", looked.join(", ")))
}

/// The password for this connection from `passfile`, `PGPASSFILE` or `~/.pgpass`, as libpq
/// reads it: lines `host:port:database:user:password`, `*` matching anything, `\:` and `\\`
/// escaped, the first match winning; a file others can read is ignored (with a warning on
/// stderr), as libpq does.
fn passfile(values: &BTreeMap<String, String>, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let path = values.get("passfile").map(PathBuf::from).or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    let meta = std::fs::metadata(&path).ok().filter(std::fs::Metadata::is_file)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "warning: password file {} has group or world access; permissions should be u=rw (0600) or less: ignored",
                path.display()
            );
            return None;
        }
    }
    let _ = meta;
    let text = std::fs::read_to_string(&path).ok()?;
    // libpq matches a Unix-socket connection as host `localhost`, and the first host of a list.
    let host = values.get("host").and_then(|h| h.split(',').next()).filter(|h| !h.starts_with('/') && !h.is_empty()).unwrap_or("localhost");
    let port = values.get("port").and_then(|p| p.split(',').next()).filter(|p| !p.is_empty()).unwrap_or("5432");
    let wanted = [host, port, values.get("dbname").map_or("", String::as_str), values.get("user").map_or("", String::as_str)];
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

/// Whether a connection string spells out a password (in a URL's user info or query, or as a
/// `password` keyword).
pub fn carries_password(input: &str) -> bool {
    parse(input).is_ok_and(|pairs| pairs.iter().any(|(k, _)| k == "password"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, String)> {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn kv(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn keyword_strings_follow_libpq_grammar() {
        assert_eq!(pairs("host=db port=5433"), kv(&[("host", "db"), ("port", "5433")]));
        assert_eq!(pairs("  host = db   sslmode =disable "), kv(&[("host", "db"), ("sslmode", "disable")]));
        assert_eq!(pairs(r"dbname='my app' password='it\'s' user=a\ b"), kv(&[("dbname", "my app"), ("password", "it's"), ("user", "a b")]));
        assert_eq!(pairs("host=''"), kv(&[("host", "")]));
        assert_eq!(pairs("gssencmode=disable"), kv(&[("gssencmode", "disable")]));
        assert!(parse("host").unwrap_err().contains("`host` without `=`"));
        assert!(parse("password='open").unwrap_err().contains("unterminated"));
        assert!(parse("bogus=1").unwrap_err().contains("`bogus`, which is not"));
        assert!(parse("sslcrl=x").unwrap_err().contains("does not support"));
        assert!(parse(&"x".repeat(100_000)).unwrap_err().contains("bytes long"));
    }

    #[test]
    fn urls_follow_libpq_grammar() {
        assert_eq!(
            pairs("postgresql+psycopg://u%40x:p%3Aw@h1:5433,[::1]:5434,h3/my%20db?sslmode=require&application_name=a"),
            kv(&[
                ("user", "u@x"),
                ("password", "p:w"),
                ("host", "h1,::1,h3"),
                ("port", "5433,5434,"),
                ("dbname", "my db"),
                ("sslmode", "require"),
                ("application_name", "a")
            ])
        );
        assert_eq!(pairs("postgres:///app?host=%2Fvar%2Frun%2Fpostgresql"), kv(&[("dbname", "app"), ("host", "/var/run/postgresql")]));
        assert_eq!(pairs("postgres://h?ssl=true"), kv(&[("host", "h"), ("sslmode", "require")]));
        assert!(parse("mysql://h/db").unwrap_err().contains("not postgres://"));
        assert!(parse("postgres://h:port/db").unwrap_err().contains("not a number"));
        assert!(parse("postgres://h/db?bogus=1").unwrap_err().contains("`bogus`"));
    }

    #[test]
    fn errors_never_quote_a_value() {
        for input in ["host=db password=ab://cd dbname=x bogus=1", "postgres://u:s3cret@db:nope/app", "password='s3cret"] {
            let err = parse(input).unwrap_err();
            assert!(!err.contains("s3cret") && !err.contains("ab://cd"), "{err}");
        }
    }

    #[test]
    fn the_string_then_the_service_then_the_environment_then_defaults() {
        let dir = std::env::temp_dir().join(format!("conninfo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("services");
        std::fs::write(&file, "# comment\n[ops]\nhost=svc\nport = 6000\n[other]\nhost=no\n").unwrap();
        let f = file.display().to_string();
        let env = |k: &str| match k {
            "PGSERVICEFILE" => Some(f.clone()),
            "PGPORT" => Some("7000".to_string()),
            "PGUSER" => Some("envuser".to_string()),
            "PGAPPNAME" => Some("fromenv".to_string()),
            _ => None,
        };
        let p = resolve(pairs("service=ops dbname=app"), &env, &[("connect_timeout", "10"), ("fallback_application_name", "tool")]).unwrap();
        assert_eq!(p.display(), "postgres://envuser@svc:6000/app");
        assert_eq!((p.get("connect_timeout"), p.get("application_name")), (Some("10"), Some("fromenv")));
        std::fs::write(&file, "[ops\nhost=svc\n").unwrap();
        let err = resolve(pairs("service=ops"), &env, &[]).unwrap_err();
        assert!(err.contains(":1: a service section needs its closing `]`"), "{err}");
        assert!(resolve(pairs("service=nope"), &|_| None, &[]).unwrap_err().contains("not defined"));
        assert!(resolve(pairs("gssencmode=require"), &|_| None, &[]).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn pgpass_lines_split_with_escapes() {
        assert_eq!(split_pgpass(r"h:5432:*:u\:x:p\\w:d"), ["h", "5432", "*", "u:x", r"p\w:d"]);
    }

    #[test]
    fn passwords_are_noticed() {
        assert!(carries_password("postgres://u:secret@h/db"));
        assert!(carries_password("host=h password=secret"));
        assert!(carries_password("postgres://u@h/db?password=secret"));
        assert!(!carries_password("postgres://u@h/db"));
        assert!(!carries_password("postgres://h:5432/db"));
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn the_driver_gets_every_value_as_written() {
        let p = resolve(pairs("host=db port=5433 dbname='my app' password='a b\\'c\\\\' keepalives_idle=30 sslmode=verify-full"), &|_| None, &[]).unwrap();
        let c = p.config().unwrap();
        assert_eq!(c.get_dbname(), Some("my app"));
        assert_eq!(c.get_password(), Some(&b"a b'c\\"[..]));
        assert_eq!(c.get_ports(), &[5433]);
        assert_eq!(c.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        assert_eq!(c.get_keepalives_idle(), std::time::Duration::from_secs(30));
    }
}
