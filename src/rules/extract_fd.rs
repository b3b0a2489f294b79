//! fd.* for the events that carry an fd (libs sinsp_filtercheck_fd.cpp;
//! only EF_CREATES_FD, EF_USES_FD and EF_DESTROYS_FD events have one):
//! opens (fd.name from the record, normalised), socket, connect, accept and
//! the dup family (the old fd's table entry). Every other event: missing.

use super::extract::{sock_ip, EventView};
use super::fields::Field;
use super::paths;
use super::value::{Buf, Ip, V};
use crate::capture::record::{Record, SockAddr};
use crate::state::{Fd, FdKind};

const SOCK_STREAM: u8 = 1;
const SOCK_DGRAM: u8 = 2;
const SOCK_RAW: u8 = 3;

/// The fd an event is about, as Falco's m_fdinfo would hold it.
enum Subject<'a> {
    /// An open: the record's own path, the new fd (or -1).
    Open {
        num: i64,
        raw: &'a [u8],
        dir: bool,
        ok: bool,
    },
    /// A socket-family event or a dup: the table's entry.
    Entry {
        num: i64,
        fd: &'a Fd,
        connect: Option<&'a SockAddr>,
        accept: bool,
        ok: bool,
    },
    /// socket(): known by its record even when the table refused it.
    Socket {
        num: i64,
        family: u16,
        sock_type: u8,
    },
}

impl<'a> EventView<'a> {
    fn subject(&self) -> Option<Subject<'a>> {
        let h = self.hdr;
        let pid = h.pid;
        match self.rec {
            Record::Open { flags, path, .. } => Some(Subject::Open {
                num: if h.ret >= 0 { h.ret } else { -1 },
                raw: path,
                dir: flags & 0o200000 != 0,
                ok: h.ret >= 0,
            }),
            Record::Socket {
                domain, sock_type, ..
            } => Some(Subject::Socket {
                num: h.ret,
                family: *domain as u16,
                sock_type: (*sock_type & 0xf) as u8,
            }),
            Record::Connect { addr, .. } => Some(Subject::Entry {
                num: addr.fd,
                fd: self.state.fd(pid, addr.fd)?,
                connect: Some(addr),
                accept: false,
                ok: h.ret == 0 || h.ret == -115,
            }),
            Record::Accept { .. } => Some(Subject::Entry {
                num: h.ret,
                fd: self.state.fd(pid, h.ret)?,
                connect: None,
                accept: true,
                ok: h.ret >= 0,
            }),
            Record::Dup { old_fd, .. } => Some(Subject::Entry {
                num: *old_fd,
                fd: self.state.fd(pid, *old_fd)?,
                connect: None,
                accept: false,
                ok: true,
            }),
            _ => None,
        }
    }

    pub(super) fn fd_value<'b>(&'b self, f: Field, buf: &'b mut Buf) -> V<'b> {
        let Some(s) = self.subject() else {
            return V::Missing;
        };
        match s {
            Subject::Open { num, raw, dir, ok } => self.open_value(f, num, raw, dir, ok, buf),
            Subject::Socket {
                num,
                family,
                sock_type,
            } => socket_value(f, num, family, sock_type, None, None, None),
            Subject::Entry {
                num,
                fd,
                connect,
                accept,
                ok,
            } => match fd.kind {
                FdKind::File => match f {
                    Field::FdNum => V::Int(num),
                    Field::FdName => V::Str(&fd.path),
                    Field::FdTypechar => V::Str(b"f"),
                    Field::FdType => V::Str(b"file"),
                    Field::FdDirectory | Field::FdFilename => {
                        let (d, n) = paths::split(&fd.path);
                        V::Str(if f == Field::FdDirectory { d } else { n })
                    }
                    _ => V::Missing,
                },
                FdKind::Socket => {
                    let sock = connect.unwrap_or(&fd.sock);
                    let peer = sock_ip(sock).map(|ip| (ip, i64::from(sock.port)));
                    // connect: the peer is the server; accept: the client.
                    let (server, client) = if accept { (None, peer) } else { (peer, None) };
                    match f {
                        Field::FdConnected => V::Bool(ok && peer.is_some()),
                        Field::FdNameChanged => V::Bool(connect.is_some() && ok),
                        Field::FdName => name(server, client, buf),
                        _ => socket_value(
                            f,
                            num,
                            fd.sock.family.max(sock.family),
                            fd.sock_type,
                            server,
                            client,
                            peer,
                        ),
                    }
                }
            },
        }
    }

    /// fd.name / fd.directory / fd.filename of an open whose path needs no
    /// normalising, straight from the record: exactly what `fd_value` would
    /// return, without its dispatch (the hot checks of the open rules).
    pub(super) fn open_path_part(&self, f: Field) -> Option<&'a [u8]> {
        let Record::Open { path, .. } = self.rec else {
            return None;
        };
        if path.is_empty() {
            return None;
        }
        let at = self.open_scan(path)?;
        match f {
            Field::FdName => Some(path),
            Field::FdDirectory | Field::FdFilename if self.hdr.ret >= 0 => {
                let (d, n) = paths::split_at_slash(path, at);
                Some(if f == Field::FdDirectory { d } else { n })
            }
            _ => None,
        }
    }

    /// paths::scan of the open's path, once per event.
    fn open_scan(&self, raw: &[u8]) -> Option<usize> {
        match self.lazy.open_scan.get() {
            Some(s) => s,
            None => {
                let s = paths::scan(raw);
                self.lazy.open_scan.set(Some(s));
                s
            }
        }
    }

    fn open_value<'b>(
        &'b self,
        f: Field,
        num: i64,
        raw: &'b [u8],
        dir: bool,
        ok: bool,
        buf: &'b mut Buf,
    ) -> V<'b> {
        let normalized = |buf: &'b mut Buf| -> V<'b> {
            if raw.is_empty() {
                return V::Missing;
            }
            if self.open_scan(raw).is_some() {
                return V::Str(raw);
            }
            let cwd: &[u8] =
                self.thread()
                    .map_or(&b"/"[..], |t| if t.cwd.is_empty() { b"/" } else { &t.cwd });
            paths::join_normalized(cwd, raw, buf);
            V::Str(&buf[..])
        };
        match f {
            Field::FdNum => V::Int(num),
            Field::FdNameraw => {
                if raw.is_empty() {
                    V::Missing
                } else {
                    V::Str(raw)
                }
            }
            Field::FdName => normalized(buf),
            // A normal path splits at the slash its one scan found.
            Field::FdDirectory | Field::FdFilename if ok && self.open_scan(raw).is_some() => {
                let at = self.open_scan(raw).unwrap_or(0);
                let (d, n) = paths::split_at_slash(raw, at);
                V::Str(if f == Field::FdDirectory { d } else { n })
            }
            Field::FdDirectory | Field::FdFilename if ok => match normalized(buf) {
                V::Str(s) => {
                    let (d, n) = paths::split(s);
                    V::Str(if f == Field::FdDirectory { d } else { n })
                }
                v => v,
            },
            // A failed legacy open guesses `o`, the *at family `f`
            // (sinsp_evt::extract_typechar).
            Field::FdTypechar => V::Str(match (ok, dir) {
                (true, true) => b"d",
                (true, false) => b"f",
                _ if matches!(
                    super::events::name_of(self.code),
                    "open" | "open_by_handle_at"
                ) =>
                {
                    b"o"
                }
                _ => b"f",
            }),
            Field::FdType if ok => V::Str(if dir { b"directory" } else { b"file" }),
            _ => V::Missing,
        }
    }
}

/// `peer`: the remote end (the server after connect, the client after
/// accept); the local end is not captured, so lip/lport stay missing.
fn socket_value<'b>(
    f: Field,
    num: i64,
    family: u16,
    sock_type: u8,
    server: Option<(Ip, i64)>,
    client: Option<(Ip, i64)>,
    peer: Option<(Ip, i64)>,
) -> V<'b> {
    let inet = matches!(family, 2 | 10);
    match f {
        Field::FdNum => V::Int(num),
        Field::FdTypechar => V::Str(match family {
            2 => b"4",
            10 => b"6",
            1 => b"u",
            16 => b"n",
            _ => b"o",
        }),
        Field::FdType => match family {
            2 => V::Str(b"ipv4"),
            10 => V::Str(b"ipv6"),
            1 => V::Str(b"unix"),
            16 => V::Str(b"netlink"),
            _ => V::Missing,
        },
        Field::FdL4proto if inet => V::Str(match sock_type {
            SOCK_STREAM => b"tcp",
            SOCK_DGRAM => b"udp",
            SOCK_RAW => b"raw",
            _ => b"<NA>",
        }),
        Field::FdSip | Field::FdSnet => server.map_or(V::Missing, |(ip, _)| V::Ip(ip)),
        Field::FdSport => server.map_or(V::Missing, |(_, p)| V::Int(p)),
        Field::FdCip | Field::FdCnet => client.map_or(V::Missing, |(ip, _)| V::Ip(ip)),
        Field::FdCport => client.map_or(V::Missing, |(_, p)| V::Int(p)),
        Field::FdRip => peer.map_or(V::Missing, |(ip, _)| V::Ip(ip)),
        Field::FdRport => peer.map_or(V::Missing, |(_, p)| V::Int(p)),
        _ => V::Missing,
    }
}

/// `cip:cport->sip:sport`, with what is known of each end.
fn name<'b>(server: Option<(Ip, i64)>, client: Option<(Ip, i64)>, buf: &'b mut Buf) -> V<'b> {
    if server.is_none() && client.is_none() {
        return V::Missing;
    }
    buf.clear();
    let end = |e: Option<(Ip, i64)>, buf: &mut Buf| {
        if let Some((ip, port)) = e {
            ip.write(buf);
            let _ = buf.push(b':');
            let _ = buf.extend_from_slice(super::format::itoa_buf(port).bytes());
        }
    };
    end(client, buf);
    let _ = buf.extend_from_slice(b"->");
    end(server, buf);
    V::Str(&buf[..])
}
