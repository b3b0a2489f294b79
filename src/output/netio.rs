//! The socket-level steps under `conn`: is a non-blocking connect done,
//! push out TLS records, one step of a handshake; and the per-output
//! rate limit of the network outputs' log lines.

use std::io;

use mio::net::TcpStream;
use rustls::ClientConnection;

/// One output's log lines, at most one per 10 s (several outputs failing
/// at once each get their line); what is held back is counted.
#[derive(Default)]
pub struct RateLog {
    last_ns: Option<u64>,
    held: u64,
}

impl RateLog {
    pub fn line(&mut self, args: std::fmt::Arguments<'_>) {
        let now = crate::base::time::monotonic_ns();
        if self
            .last_ns
            .is_some_and(|t| now.saturating_sub(t) < crate::log::WINDOW_NS)
        {
            self.held += 1;
            return;
        }
        self.last_ns = Some(now);
        match std::mem::take(&mut self.held) {
            0 => crate::log::line(args),
            n => crate::log_line!("{args} ({n} similar lines suppressed)"),
        }
    }
}

pub(super) fn connected(sock: &TcpStream) -> io::Result<bool> {
    if let Some(e) = sock.take_error()? {
        return Err(e);
    }
    match sock.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

pub(super) fn flush_tls(sock: &mut TcpStream, tls: &mut ClientConnection) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(sock) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One step of the handshake: true when it is done.
pub(super) fn handshake(sock: &mut TcpStream, tls: &mut ClientConnection) -> io::Result<bool> {
    loop {
        flush_tls(sock, tls)?;
        if !tls.is_handshaking() {
            return Ok(true);
        }
        if !tls.wants_read() {
            return Ok(false);
        }
        match tls.read_tls(sock) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed")),
            Ok(_) => {
                if let Err(e) = tls.process_new_packets() {
                    // The alert telling the peer why goes out first.
                    let _ = flush_tls(sock, tls);
                    return Err(io::Error::other(e));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}
