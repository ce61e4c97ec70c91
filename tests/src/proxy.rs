//! A TCP proxy between the tool and a server that can stop answering, or reset, in either
//! direction: the faults a deploy meets behind a load balancer or across a network partition,
//! made on purpose. Threads and `std::net` only.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does with the bytes it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Passes everything on, both ways.
    Forward = 0,
    /// Keeps every connection open and passes nothing on, either way: a server (or proxy)
    /// that stopped answering. New connections are accepted, and hear nothing.
    Silent = 1,
    /// Passes the server's bytes on, drops the client's: a message (a `COMMIT`) lost on its way.
    DropClientBytes = 2,
    /// Resets every connection.
    Reset = 3,
    /// Passes everything on but a client's bare `COMMIT` (a simple-query message of that one
    /// word): the message that would end a transaction, lost on its way.
    DropCommit = 4,
}

/// The simple-query message `COMMIT`: `Q`, its length, the text and a NUL.
const COMMIT: &[u8] = b"Q\0\0\0\x0bCOMMIT\0";

/// A running proxy; its threads end with the process.
pub struct Proxy {
    /// The port it listens on, at 127.0.0.1.
    pub port: u16,
    mode: Arc<AtomicU8>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Listens on a free port and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("its address").port();
        let mode = Arc::new(AtomicU8::new(Mode::Forward as u8));
        let connections: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (m, conns) = (mode.clone(), connections.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if m.load(Ordering::SeqCst) == Mode::Reset as u8 {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                let mut kept = conns.lock().unwrap();
                kept.push(client.try_clone().unwrap());
                kept.push(server.try_clone().unwrap());
                drop(kept);
                pump(client.try_clone().unwrap(), server.try_clone().unwrap(), m.clone(), true);
                pump(server, client, m.clone(), false);
            }
        });
        Proxy { port, mode, connections }
    }

    /// From now on, behave as `mode` says (for the connections open and the new ones).
    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
        if mode == Mode::Reset {
            for c in self.connections.lock().unwrap().drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Copies `from` to `to` while the mode lets it; `upstream`: the client's direction.
fn pump(mut from: TcpStream, mut to: TcpStream, mode: Arc<AtomicU8>, upstream: bool) {
    std::thread::spawn(move || {
        let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
                Err(_) => break,
            };
            let pass = match mode.load(Ordering::SeqCst) {
                m if m == Mode::Forward as u8 => true,
                m if m == Mode::DropCommit as u8 => !(upstream && &buf[..n] == COMMIT),
                m if m == Mode::DropClientBytes as u8 => !upstream,
                m if m == Mode::Reset as u8 => break,
                _ => false,
            };
            if pass && to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        // In Silent mode the connection stays up: nothing is closed that a real silent peer
        // would not close either.
        if mode.load(Ordering::SeqCst) != Mode::Silent as u8 {
            let _ = to.shutdown(Shutdown::Write);
        }
    });
}
