//! fd.* for the events that carry an fd (libs sinsp_filtercheck_fd.cpp;
//! only EF_CREATES_FD, EF_USES_FD and EF_DESTROYS_FD events have one):
//! opens (fd.name from the record, normalised), socket, connect, accept and
//! the dup family (the old fd's table entry). Every other event: missing.

use super::extract::EventView;
use super::fields::Field;
use super::paths;
use super::value::{Buf, Ip, V};
use crate::capture::record::{Record, SockAddr};
use crate::state::{Fd, FdKind};

const SOCK_STREAM: u8 = 1;
const SOCK_DGRAM: u8 = 2;
const SOCK_RAW: u8 = 3;

/// The fd an event is about, as Falco's m_fdinfo would hold it.
#[derive(Clone, Copy)]
pub(super) enum Subject<'a> {
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
        ok: bool,
        /// A socket's ends, worked out once per event.
        ends: Option<Ends>,
    },
    /// socket(): known by its record even when the table refused it.
    Socket {
        num: i64,
        family: u16,
        sock_type: u8,
    },
}

impl<'a> EventView<'a> {
    /// `find_subject`, once per event: every fd field of a rule needs it.
    /// Borrowed, not copied: with a socket's ends it is ~100 bytes.
    fn subject(&self) -> Option<&Subject<'a>> {
        self.lazy
            .subject
            .get_or_init(|| self.find_subject())
            .as_ref()
    }

    fn find_subject(&self) -> Option<Subject<'a>> {
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
            Record::Connect { addr, .. } => Some(entry(
                addr.fd,
                self.state.fd(pid, addr.fd)?,
                Some(addr),
                false,
                h.ret == 0 || h.ret == -115,
            )),
            Record::Accept { .. } => Some(entry(
                h.ret,
                self.state.fd(pid, h.ret)?,
                None,
                true,
                h.ret >= 0,
            )),
            Record::Dup { old_fd, .. } => {
                let fd = self.state.fd(pid, *old_fd)?;
                Some(entry(*old_fd, fd, None, fd.server, true))
            }
            _ => None,
        }
    }

    pub(super) fn fd_value<'b>(&'b self, f: Field, buf: &'b mut Buf) -> V<'b> {
        let Some(s) = self.subject() else {
            return V::Missing;
        };
        match *s {
            Subject::Open { num, raw, dir, ok } => self.open_value(f, num, raw, dir, ok, buf),
            Subject::Socket {
                num,
                family,
                sock_type,
            } => socket_value(f, num, family, sock_type, None),
            Subject::Entry {
                num,
                fd,
                connect,
                ok,
                ref ends,
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
                    let Some(e) = ends.as_ref() else {
                        return V::Missing;
                    };
                    match f {
                        Field::FdConnected => V::Bool(ok && e.remote.is_some()),
                        Field::FdNameChanged => V::Bool(connect.is_some() && ok),
                        Field::FdName => name(e.server(), e.client(), buf),
                        _ => {
                            let family = e.family.unwrap_or(fd.sock.family);
                            socket_value(f, num, family, fd.sock_type, Some(e))
                        }
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

    /// fd.typechar of a successful open, as `open_value` gives it.
    pub(super) fn open_typechar(&self) -> Option<&'static [u8]> {
        match self.rec {
            Record::Open { flags, .. } if self.hdr.ret >= 0 => {
                Some(if flags & 0o200000 != 0 { b"d" } else { b"f" })
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

fn entry<'a>(
    num: i64,
    fd: &'a Fd,
    connect: Option<&'a SockAddr>,
    server_side: bool,
    ok: bool,
) -> Subject<'a> {
    let ends =
        (fd.kind == FdKind::Socket).then(|| Ends::of(connect.unwrap_or(&fd.sock), server_side));
    Subject::Entry {
        num,
        fd,
        connect,
        ok,
        ends,
    }
}

/// One end of an IP socket: address and port.
type End = Option<(Ip, i64)>;

/// A socket's two ends as libsinsp's fdinfo holds them.
#[derive(Clone, Copy)]
pub(super) struct Ends {
    local: End,
    remote: End,
    server_side: bool,
    /// AF_INET or AF_INET6 when an end is known: a v6 socket whose known
    /// ends are all IPv4-mapped (or ::) is an IPv4 socket to Falco
    /// (parsers.cpp fill_client_socket_info, is_ipv4_mapped_ipv6).
    family: Option<u16>,
}

impl Ends {
    fn of(s: &SockAddr, server_side: bool) -> Ends {
        let end = |family, addr: &[u8; 16], port| -> End {
            let ip = match family {
                2 => Ip::v4([addr[0], addr[1], addr[2], addr[3]]),
                10 => Ip {
                    v6: true,
                    addr: *addr,
                },
                _ => return None,
            };
            Some((ip, i64::from(port)))
        };
        let (mut local, mut remote) = (
            end(s.lfamily, &s.laddr, s.lport),
            end(s.family, &s.addr, s.port),
        );
        let known = || [local, remote].into_iter().flatten();
        let family = if known().next().is_none() {
            None
        } else if known().all(|(ip, _)| !ip.v6 || v4_mapped(&ip.addr)) {
            for e in [&mut local, &mut remote].into_iter().flatten() {
                e.0 = to_v4(e.0);
            }
            Some(2)
        } else {
            for e in [&mut local, &mut remote].into_iter().flatten() {
                e.0 = to_v6(e.0);
            }
            Some(10)
        };
        Ends {
            local,
            remote,
            server_side,
            family,
        }
    }

    /// connect: the local end; accept: the peer.
    fn client(&self) -> End {
        if self.server_side {
            self.remote
        } else {
            self.local
        }
    }

    fn server(&self) -> End {
        if self.server_side {
            self.local
        } else {
            self.remote
        }
    }
}

/// sinsp_utils::is_ipv4_mapped_ipv6: ::ffff:a.b.c.d, or all zero.
fn v4_mapped(a: &[u8; 16]) -> bool {
    a[..10].iter().all(|&b| b == 0)
        && (a[10..12] == [0xff, 0xff] || a[10..].iter().all(|&b| b == 0))
}

fn to_v4(ip: Ip) -> Ip {
    if ip.v6 {
        Ip::v4([ip.addr[12], ip.addr[13], ip.addr[14], ip.addr[15]])
    } else {
        ip
    }
}

/// A v4 end beside a real v6 one (a dual-stack UDP socket connected to an
/// AF_INET address): shown as the kernel holds it, ::ffff:a.b.c.d.
fn to_v6(ip: Ip) -> Ip {
    if ip.v6 {
        return ip;
    }
    let mut addr = [0; 16];
    addr[10..12].copy_from_slice(&[0xff, 0xff]);
    addr[12..].copy_from_slice(&ip.addr[..4]);
    Ip { v6: true, addr }
}

/// `ends`: None for a socket() event (no address yet).
fn socket_value<'b>(f: Field, num: i64, family: u16, sock_type: u8, ends: Option<&Ends>) -> V<'b> {
    let inet = matches!(family, 2 | 10);
    let ip = |e: End| e.map_or(V::Missing, |(ip, _)| V::Ip(ip));
    let port = |e: End| e.map_or(V::Missing, |(_, p)| V::Int(p));
    let e = |pick: fn(&Ends) -> End| ends.and_then(pick);
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
        Field::FdSip | Field::FdSnet => ip(e(Ends::server)),
        Field::FdSport => port(e(Ends::server)),
        Field::FdCip | Field::FdCnet => ip(e(Ends::client)),
        Field::FdCport => port(e(Ends::client)),
        Field::FdLip => ip(e(|x| x.local)),
        Field::FdLport => port(e(|x| x.local)),
        Field::FdRip => ip(e(|x| x.remote)),
        Field::FdRport => port(e(|x| x.remote)),
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

#[cfg(test)]
mod tests;
