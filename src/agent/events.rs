//! The loop's plumbing: timerfds, the signalfd, epoll registration, and
//! the housekeeping of each drain tick (state clock, purge, drop checks).

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use mio::unix::SourceFd;
use mio::{Interest, Poll, Token};
use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
    Timespec,
};

use super::StartError;
use crate::alerts::DropMonitor;
use crate::capture::Probe;
use crate::log::Key;
use crate::output::Outputs;
use crate::state::State;

pub(super) fn timer(ns: u64, periodic: bool) -> Result<OwnedFd, StartError> {
    let fd = timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )
    .map_err(|e| StartError::env(format!("timerfd_create: {e}")))?;
    let ts = Timespec {
        tv_sec: (ns / 1_000_000_000) as i64,
        tv_nsec: (ns % 1_000_000_000) as i64,
    };
    let spec = Itimerspec {
        it_interval: if periodic {
            ts
        } else {
            Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }
        },
        it_value: ts,
    };
    timerfd_settime(&fd, TimerfdTimerFlags::empty(), &spec)
        .map_err(|e| StartError::env(format!("timerfd_settime: {e}")))?;
    Ok(fd)
}

pub(super) fn drain_timer(fd: &OwnedFd) {
    let mut b = [0u8; 8];
    let _ = rustix::io::read(fd, &mut b);
}

/// Blocks SIGTERM, SIGINT and SIGHUP and returns a signalfd for them.
pub(super) fn signal_fd() -> Result<OwnedFd, StartError> {
    // SAFETY: plain libc calls on a local, zero-initialised sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(StartError::env("cannot block signals".into()));
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(StartError::env(format!(
                "signalfd: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Reads pending signals: (stop requested, reopen requested).
pub(super) fn read_signals(fd: &OwnedFd) -> (bool, bool) {
    let (mut stop, mut hup) = (false, false);
    let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
    while let Ok(n) = rustix::io::read(fd, &mut info) {
        if n != info.len() {
            break;
        }
        // SAFETY: the kernel wrote one whole signalfd_siginfo.
        let si: libc::signalfd_siginfo = unsafe { std::ptr::read_unaligned(info.as_ptr().cast()) };
        match si.ssi_signo as i32 {
            libc::SIGHUP => hup = true,
            _ => stop = true,
        }
    }
    (stop, hup)
}

/// Once per drain tick: the state's clock, libsinsp's purge sweep every
/// `purge_every` ticks, and the rate-limited table-full log.
pub(super) fn state_tick(state: &mut State, ticks: u64, purge_every: u64, timeout_ticks: u32) {
    state.tick();
    if ticks % purge_every == 0 {
        state.purge_proc(timeout_ticks);
    }
    if state.log_full_drop {
        state.log_full_drop = false;
        crate::log_limited!(
            Key::ThreadTableFull,
            "thread table full: {} threads refused so far",
            state.counters.n_drops_full_threadtable
        );
    }
}

/// Falco's drop check when due (once a second): alert lines go to the
/// outputs; true when the `exit` action fired.
pub(super) fn check_drops(
    drops: &mut DropMonitor,
    state: &State,
    probe: &mut Probe<'_>,
    outputs: &mut Outputs,
) -> bool {
    let now = crate::base::time::monotonic_ns();
    if !drops.due(now) {
        return false;
    }
    let c = state.counters;
    let t = drops.check_tables(now, c.n_drops_full_threadtable, c.n_drops_full_fdtable);
    if t.alert {
        outputs.write(drops.line(), drops.time());
    }
    let o = drops.check(now, &probe.counters());
    if o.alert {
        outputs.write(drops.line(), drops.time());
    }
    o.exit
}

pub(super) fn register(poll: &Poll, fd: RawFd, token: Token) -> Result<(), StartError> {
    poll.registry()
        .register(&mut SourceFd(&fd), token, Interest::READABLE)
        .map_err(|e| StartError::env(format!("epoll register: {e}")))
}
