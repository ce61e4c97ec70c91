//! `cargo xtask bench replicas`: what a deploy whose replicas all run `upgrade` at once costs
//! the application that keeps serving meanwhile. An application thread runs `SELECT 1` every
//! 5 ms, through the same path as the replicas: directly, or through a real PgBouncer in
//! transaction-pooling mode with a pool of 2 server connections. Its latencies while 1, 16 and
//! 64 replicas upgrade a fresh database (3.10.0's 38 files) are compared with the same thread
//! alone; the replicas' wall time (all of them done) with one process alone. The pool is warm
//! (both server connections open) when the replicas start, as a running application has it.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::Result;

/// p50, p99 and max of `v`, in milliseconds.
fn percentiles(v: &mut [Duration]) -> (f64, f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.99), at(1.0))
}

/// The application: `SELECT 1` every 5 ms on its own connection to `url` until `stop`; when
/// each query started, and its latency.
fn app(url: &str, stop: &AtomicBool) -> std::result::Result<Vec<(Instant, Duration)>, String> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).map_err(|e| e.to_string())?;
    let mut latencies = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        client.simple_query("SELECT 1").map_err(|e| e.to_string())?;
        latencies.push((t, t.elapsed()));
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(latencies)
}

/// `n` replicas upgrading `url` at once while the application runs against it: their wall
/// time (the last one done) and the application's latencies meanwhile.
fn deploy(n: usize, url: &str, ours: &dyn Fn(&str) -> Command) -> Result<(Duration, Vec<Duration>)> {
    // The pool as a running application has it: both server connections open (two clients
    // in a transaction at once), so that no replica waits for PgBouncer to log in.
    let mut warm: Vec<postgres::Client> = (0..2).map(|_| postgres::Client::connect(url, postgres::NoTls)).collect::<std::result::Result<_, _>>()?;
    for c in &mut warm {
        c.batch_execute("BEGIN; SELECT 1")?;
    }
    for mut c in warm {
        c.batch_execute("COMMIT")?;
    }
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let app = s.spawn(|| app(url, &stop));
        // The application is connected and warm before the replicas start.
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        let children: Vec<Child> = (0..n).map(|_| ours(url).stdout(Stdio::null()).stderr(Stdio::piped()).spawn()).collect::<std::io::Result<_>>()?;
        let mut failed = None;
        for child in children {
            let out = child.wait_with_output()?;
            if !out.status.success() {
                failed = Some(String::from_utf8_lossy(&out.stderr).into_owned());
            }
        }
        let took = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        let all = app.join().map_err(|_| "the application thread panicked")??;
        if let Some(err) = failed {
            return Err(format!("a replica failed:\n{err}").into());
        }
        // Only what the application saw while the replicas ran.
        Ok((took, all.iter().filter(|(t, _)| *t >= started && *t <= started + took).map(|(_, d)| *d).collect()))
    })
}

pub(crate) fn replicas(scratch: &pg_scratch::Scratch, fresh: &dyn Fn() -> Result<String>, ours: &dyn Fn(&str) -> Command) -> Result<()> {
    let pooler = procrastinate_tests::pgbouncer::start("127.0.0.1", scratch.port(), "postgres", scratch.password())?;
    let pooled = |url: &str| url.replace(&format!(":{}/", scratch.port()), &format!(":{}/", pooler.port));
    println!("replicas upgrading at once (3.10.0's 38 files, a fresh database each time); the application's `SELECT 1` every 5 ms");
    for (path, via) in [("directly", false), ("through PgBouncer, pool of 2", true)] {
        let route = |url: String| if via { pooled(&url) } else { url };
        // The application alone, for as long as a deploy takes.
        let stop = AtomicBool::new(false);
        let alone_url = route(fresh()?);
        let alone = std::thread::scope(|s| {
            let h = s.spawn(|| app(&alone_url, &stop));
            std::thread::sleep(Duration::from_secs(2));
            stop.store(true, Ordering::Relaxed);
            h.join().map_err(|_| "the application thread panicked")?
        })?;
        let mut alone: Vec<Duration> = alone.into_iter().map(|(_, d)| d).collect();
        let (a50, a99, amax) = percentiles(&mut alone);
        println!("  {path}: the application alone: p50 {a50:.2} ms, p99 {a99:.2} ms, max {amax:.2} ms");
        let mut one = None;
        for n in [1, 16, 64] {
            let url = route(fresh()?);
            let (took, mut seen) = deploy(n, &url, ours)?;
            let one_took = *one.get_or_insert(took);
            let (p50, p99, max) = percentiles(&mut seen);
            println!(
                "    {n:>2} replicas: all done in {:>7.1} ms ({:.2}x one process); the application: p50 {p50:.2} ms, p99 {p99:.2} ms ({:.2}x alone), max {max:.2} ms",
                took.as_secs_f64() * 1e3,
                took.as_secs_f64() / one_took.as_secs_f64(),
                p99 / a99
            );
        }
    }
    Ok(())
}
