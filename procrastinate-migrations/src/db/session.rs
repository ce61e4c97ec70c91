//! What this crate needs of a connection ([`Session`]), and a connection that never waits
//! without a bound ([`Conn`]).
//!
//! Every function of [`crate::db`] takes `&mut dyn Session`: an application passes its
//! `postgres::Client` as it is, and the CLI a [`Conn`], whose every wait is bounded:
//!
//! - setting up the connection (TCP, TLS, start-up, authentication) within `connect_timeout`
//!   for each host, as libpq bounds it (the driver alone bounds only the TCP connect);
//! - each round trip of the tool's own statements within `round_trip`: past it, the connection
//!   is abandoned (closed) and the caller says so;
//! - a round trip that runs migrations may take as long as they do, so past `round_trip` the
//!   session asks the server, on a second connection, what its own backend is doing (a batch
//!   starts with a comment naming the run, which `pg_stat_activity` shows): working, it waits on; idle in
//!   its transaction (the message or its answer was lost, and the transaction holds the
//!   migration lock), it ends that backend and gives up; gone, or the server unreachable, it
//!   gives up. TCP keepalives (libpq's settings) catch a peer that vanished.

use std::time::{Duration, Instant};

use postgres::SimpleQueryMessage;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::Socket;

/// The simple-query protocol and a connection's state: all this crate asks of a client.
pub trait Session {
    /// Runs `sql` (one or several statements) with the simple-query protocol.
    fn simple_query(&mut self, sql: &str) -> Result<Vec<SimpleQueryMessage>, postgres::Error>;

    /// [`simple_query`](Self::simple_query), results dropped.
    fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.simple_query(sql).map(drop)
    }

    /// Whether the connection is gone.
    fn is_closed(&self) -> bool;

    /// Called with `true` before round trips that run migrations (which may take as long as the
    /// migrations do), and with `false` after. A session without bounds ignores it.
    fn working(&mut self, _migrations: bool) {}

    /// Why the last round trip was given up by the session's own bound, if it was.
    fn abandoned(&self) -> Option<&Abandoned> {
        None
    }

    /// A comment that the tool's transactions and migrations start with, when the session
    /// asks for one: a second connection finds this session's backend by it in
    /// `pg_stat_activity.query` (see [`Conn`]).
    fn tag(&self) -> Option<&str> {
        None
    }
}

impl Session for postgres::Client {
    fn simple_query(&mut self, sql: &str) -> Result<Vec<SimpleQueryMessage>, postgres::Error> {
        postgres::Client::simple_query(self, sql)
    }

    fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
        postgres::Client::batch_execute(self, sql)
    }

    fn is_closed(&self) -> bool {
        postgres::Client::is_closed(self)
    }
}

/// A round trip a [`Conn`] gave up on, and why: the connection is closed after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Abandoned {
    /// How long it waited for the answer.
    pub waited: Duration,
    /// What it found: `no answer within 30s`, `the server did not answer a second connection
    /// either`, `its transaction sat idle (the message or its answer was lost); that backend
    /// was ended, which rolled it back`...
    pub why: String,
}

type Reconnect = Box<dyn Fn() -> Result<Conn, postgres::Error> + Send>;

/// A connection whose every wait is bounded (see the module's documentation): a blocking
/// facade over `tokio_postgres`, as `postgres::Client` is, with the bounds added.
pub struct Conn {
    rt: tokio::runtime::Runtime,
    /// `None` only while dropping (the client goes first, so that the driver sends Terminate).
    client: Option<tokio_postgres::Client>,
    driver: tokio::task::JoinHandle<()>,
    round_trip: Duration,
    /// A second connection to the same server, with the same settings (for liveness probes).
    reconnect: Reconnect,
    /// Migrations are running (see [`Session::working`]): a slow answer is probed, not given up.
    work: bool,
    /// What the transactions of this session start with (see [`Session::tag`]).
    tag: String,
    abandoned: Option<Abandoned>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("round_trip", &self.round_trip).field("closed", &self.is_closed()).finish()
    }
}

/// Why a connection could not be made.
#[derive(Debug)]
pub enum ConnectError {
    /// The driver's error: refused, authentication, TLS...
    Failed(postgres::Error),
    /// Setting up the connection took longer than `connect_timeout` (for each host).
    TimedOut(Duration),
    /// No runtime could be made (out of threads or file descriptors).
    Runtime(std::io::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Failed(e) => f.write_str(&super::describe(e)),
            ConnectError::TimedOut(d) => write!(
                f,
                "no connection within {}s (connect_timeout): the server accepted nothing, or accepted and never \
                 answered (a proxy whose backend is down?)",
                d.as_secs()
            ),
            ConnectError::Runtime(e) => write!(f, "cannot start the connection's runtime: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {}

impl Conn {
    /// Connects with `config` and `tls`, the whole set-up bounded by `connect_timeout` for each
    /// host (libpq's meaning; 10 s when the config has none); `round_trip` bounds each of the
    /// tool's round trips and spaces the liveness probes while migrations run.
    pub fn connect<T>(config: &tokio_postgres::Config, tls: T, round_trip: Duration) -> Result<Conn, ConnectError>
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: Send + 'static,
        T::TlsConnect: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(ConnectError::Runtime)?;
        let per_host = config.get_connect_timeout().copied().unwrap_or(Duration::from_secs(10));
        let bound = per_host * (config.get_hosts().len().max(1) as u32);
        let connecting = config.connect(tls.clone());
        let (client, connection) = match rt.block_on(async { tokio::time::timeout(bound, connecting).await }) {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(ConnectError::Failed(e)),
            Err(_) => return Err(ConnectError::TimedOut(bound)),
        };
        let driver = rt.spawn(async move {
            let _ = connection.await;
        });
        let (again, tls) = (config.clone(), tls);
        let reconnect: Reconnect = Box::new(move || {
            Conn::connect(&again, tls.clone(), round_trip).map_err(|e| match e {
                ConnectError::Failed(e) => e,
                _ => postgres::Error::__private_api_timeout(),
            })
        });
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let tag = format!("/* cargo-procrastinate {:x}{nanos:08x} */", std::process::id());
        Ok(Conn { rt, client: Some(client), driver, round_trip, reconnect, work: false, tag, abandoned: None })
    }

    /// What a signal handler needs to ask the server to cancel the statement in flight.
    pub fn cancel_token(&self) -> tokio_postgres::CancelToken {
        self.client().cancel_token()
    }

    fn client(&self) -> &tokio_postgres::Client {
        self.client.as_ref().expect("only taken while dropping")
    }

    /// The bound on each of the tool's round trips.
    pub fn round_trip(&self) -> Duration {
        self.round_trip
    }

    /// Closes the connection: the driver task goes, and with it the socket.
    fn abandon(&mut self, waited: Duration, why: String) -> postgres::Error {
        self.driver.abort();
        let driver = &mut self.driver;
        let _ = self.rt.block_on(driver);
        self.abandoned = Some(Abandoned { waited, why });
        // The client now fails at once: that is the error of the round trip given up.
        self.rt.block_on(self.client().simple_query("")).err().unwrap_or_else(postgres::Error::__private_api_timeout)
    }

    /// On a second connection: what is this session's backend doing? Found by the text its
    /// last message started with (the tag); one left idle in its transaction (the message that
    /// would end it, or the answer, was lost on the way) is ended, which rolls it back and
    /// lets go of the migration lock.
    fn probe(&self) -> Probe {
        let Ok(mut side) = (self.reconnect)() else { return Probe::Unreachable };
        let tag = crate::tracking::quote_literal(&self.tag);
        let sql = format!(
            "SELECT pid, state FROM pg_stat_activity \
             WHERE left(query, length({tag})) = {tag} AND pid <> pg_backend_pid()"
        );
        let rows = match side.simple_query(&sql) {
            Ok(rows) => rows,
            Err(_) => return Probe::Unreachable,
        };
        let row = rows.into_iter().find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((r.get(0).unwrap_or("").to_string(), r.get(1).unwrap_or("").to_string())),
            _ => None,
        });
        match row {
            // We wait for an answer, and it waits for a message: one of them was lost.
            Some((pid, state)) if state.starts_with("idle in transaction") => {
                // It waits for a message that will never come, holding the migration lock.
                // Ended, and waited for (up to 5 s, PostgreSQL 14+), so that when the run says the
                // lock is let go, it is.
                let pid = pid.parse::<i32>().unwrap_or(0);
                if side.simple_query(&format!("SELECT pg_terminate_backend({pid}, 5000)")).is_err() {
                    let _ = side.simple_query(&format!("SELECT pg_terminate_backend({pid})"));
                }
                Probe::Stuck
            }
            // Finished, and its answer never came.
            Some((_, state)) if state == "idle" => Probe::Gone,
            Some(_) => Probe::Working,
            None => Probe::Gone,
        }
    }

    /// One round trip, bounded as the module says.
    fn round(&mut self, sql: &str) -> Result<Vec<SimpleQueryMessage>, postgres::Error> {
        if self.is_closed() {
            return self.rt.block_on(self.client().simple_query(sql));
        }
        self.abandoned = None;
        let started = Instant::now();
        let mut gone_once = false;
        let client = self.client.as_ref().expect("only taken while dropping");
        let mut query = Box::pin(client.simple_query(sql));
        loop {
            let round_trip = self.round_trip;
            let waiting = &mut query;
            match self.rt.block_on(async { tokio::time::timeout(round_trip, waiting).await }) {
                Ok(result) => return result,
                Err(_) if !self.work => {
                    drop(query);
                    // The tool's own statements are small: no answer in time is an answer. A
                    // transaction of ours left open on the server is ended on the way out.
                    let mut why = format!("no answer within {}s (round-trip-timeout)", self.round_trip.as_secs());
                    if let Probe::Stuck = self.probe() {
                        why.push_str("; the server had our transaction open, waiting for a message that was lost: that backend was ended, which let go of its locks");
                    }
                    return Err(self.abandon(started.elapsed(), why));
                }
                Err(_) => match self.probe() {
                    Probe::Working => gone_once = false,
                    // Between two transactions of the batch, perhaps: look once more.
                    Probe::Gone if !gone_once => gone_once = true,
                    Probe::Gone => {
                        drop(query);
                        let why = "the server finished the transaction but its answer never came (lost on the way)".to_string();
                        return Err(self.abandon(started.elapsed(), why));
                    }
                    Probe::Stuck => {
                        drop(query);
                        let why = "its transaction sat idle, waiting for a message that was lost on the way; that backend was \
                                   ended, which rolled the transaction back and let go of the migration lock"
                            .to_string();
                        return Err(self.abandon(started.elapsed(), why));
                    }
                    Probe::Unreachable => {
                        drop(query);
                        let why = format!(
                            "no answer for {}s, and a second connection could not reach the server either",
                            started.elapsed().as_secs()
                        );
                        return Err(self.abandon(started.elapsed(), why));
                    }
                },
            }
        }
    }
}

enum Probe {
    Working,
    Stuck,
    Gone,
    Unreachable,
}

impl Session for Conn {
    fn simple_query(&mut self, sql: &str) -> Result<Vec<SimpleQueryMessage>, postgres::Error> {
        self.round(sql)
    }

    fn is_closed(&self) -> bool {
        self.client.as_ref().is_none_or(tokio_postgres::Client::is_closed)
    }

    fn working(&mut self, migrations: bool) {
        self.work = migrations;
    }

    fn abandoned(&self) -> Option<&Abandoned> {
        self.abandoned.as_ref()
    }

    fn tag(&self) -> Option<&str> {
        Some(&self.tag)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The client goes first: the driver then sends Terminate, as the blocking client does,
        // so the server logs no unexpected EOF. Briefly: a dead peer is not waited for.
        let open = !self.is_closed();
        drop(self.client.take());
        if open {
            let driver = &mut self.driver;
            let _ = self.rt.block_on(async { tokio::time::timeout(Duration::from_millis(500), driver).await });
        }
    }
}
