//! Proves the per-event path (decode + state update) never allocates: a
//! counting global allocator watches the thread replaying >= 1 M records
//! after a warm-up, /proc lookups on thread-lookup misses included.

use std::alloc::{GlobalAlloc, Layout, System};

use kestrel::capture::record::{decode, synth};
use kestrel::capture::skel::types::kestrel_record_type as T;
use kestrel::state::proc_scan::ProcRoot;
use kestrel::state::State;

struct Counting;

thread_local! {
    /// Allocations made by this thread (the harness allocates on others
    /// while a test runs: two tests in this file must not count each other's).
    static MINE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn count() {
    let _ = MINE.try_with(|c| c.set(c.get() + 1));
}

fn mine() -> u64 {
    MINE.with(|c| c.get())
}

// SAFETY: every call is passed on unchanged to System, which upholds the
// GlobalAlloc contract; counting touches only a thread-local.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn nr(name: &str) -> i16 {
    kestrel::capture::syscalls::by_name(name)
        .and_then(|s| s.nr)
        .unwrap() as i16
}

/// A process lifecycle touching every record kind and state rule.
fn stream() -> Vec<Vec<u8>> {
    let (chdir, fchdir) = (nr("chdir"), nr("fchdir"));
    let img = synth::Image {
        path: "/usr/sbin/some-daemon",
        argv: &["some-daemon", "--config", "/etc/some/config/file.conf"],
        exepath: "/usr/sbin/some-daemon",
        cwd: "/var/lib/some-daemon",
        flags: 0,
    };
    // Synthetic children name pid 1 as their parent: give it fds to copy.
    let mut v = vec![synth::open(1, 1, 3, 0, "/var/log/init.log")];
    for i in 0..64u32 {
        let (p, c) = (1000 + i, 5000 + i);
        v.push(synth::clone(p, p, i64::from(c), false, false));
        v.push(synth::clone(c, c, 0, true, false));
        v.push(synth::exec_image(c, c, c, &img));
        v.push(synth::clone(c + 100, c, 0, true, true));
        v.push(synth::syscall(
            c,
            c,
            chdir,
            0,
            [0; 6],
            Some("../x/./y"),
            None,
        ));
        v.push(synth::syscall(
            c + 100,
            c,
            fchdir,
            0,
            [3, 0, 0, 0, 0, 0],
            None,
            None,
        ));
        v.push(synth::syscall(c, c, 82, 0, [0; 6], Some("/a"), Some("/b")));
        v.push(synth::exit(c + 100, c, false));
        v.push(synth::open(
            c,
            c,
            3,
            0o2000000,
            "/etc/some/config/file.conf",
        ));
        v.push(synth::open(c, c, 4, 0, "/var/log/app.log"));
        v.push(synth::socket(c, c, 5));
        v.push(synth::sockaddr(T::KR_CONNECT, c, c, 5, 0));
        v.push(synth::fd(T::KR_DUP, c, c, 4, 6, false));
        v.push(synth::sockaddr(T::KR_ACCEPT, c, c, 5, 7));
        v.push(synth::enter(c, c, 3));
        v.push(synth::fd(T::KR_CLOSE, c, c, 4, 0, false));
        v.push(synth::fd(T::KR_CLOSE, c, c, 99, -9, false));
        v.push(synth::exec(c, c, c, "/bin/sh"));
        v.push(synth::exit(c, c, true));
    }
    // Thread-lookup misses that go to /proc: this very thread (found there)
    // and a tid /proc does not have (placeholder); each exit makes the next
    // record miss again.
    let me = std::process::id();
    let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
    for t in [tid, u32::MAX - 7] {
        v.push(synth::exit(t, me, false));
        v.push(synth::fd(T::KR_CLOSE, t, me, 99, -9, false));
        v.push(synth::exit(t, me, false));
        v.push(synth::syscall(t, me, chdir, 0, [0; 6], Some("sub"), None));
    }
    v
}

#[test]
fn one_million_records_through_decode_and_state_allocate_nothing() {
    let recs = stream();
    let mut state =
        State::new(4096, 8192, 1, true).with_proc_fallback(ProcRoot::new("/proc").unwrap());
    for p in 1000..1064 {
        state.seed_thread(kestrel::state::Thread::new(p, p));
    }
    let run = |state: &mut State, n: usize| {
        let mut done = 0;
        while done < n {
            // The agent's 100 ms tick refills the /proc lookup budget.
            state.tick();
            for r in &recs {
                match decode(r) {
                    Ok(rec) => state.apply(&rec),
                    Err(_) => state.count_decode_error(),
                }
                done += 1;
            }
        }
        done
    };
    run(&mut state, 10_000); // warm-up
    let before = mine();
    let n = run(&mut state, 1_000_000);
    let allocs = mine() - before;
    assert!(n >= 1_000_000);
    assert_eq!(allocs, 0, "{allocs} allocations over {n} records");
    assert_eq!(state.counters.n_decode_errors, 0);
    let c = state.counters;
    assert!(c.n_added_threads > 0 && c.n_removed_fds > 0 && c.n_inherited_fds > 0);
    assert!(
        c.n_proc_lookups > 1000,
        "{} /proc lookups",
        c.n_proc_lookups
    );
    assert!(c.n_proc_lookup_misses > 1000);
}

/// The same with the built-in ruleset on every record: rule evaluation,
/// alerts rendered and queued (the limiter off so every match renders) and
/// the queue drained, still without one allocation.
#[test]
fn rules_and_alerts_on_the_per_event_path_allocate_nothing() {
    use kestrel::rules::engine::{Engine, EngineConfig};
    use kestrel::rules::{files, Priority, RuleFile};
    use kestrel::state::pipeline::Pipeline;
    let set = kestrel::rules::load(
        &[RuleFile {
            name: "default",
            text: files::default_rules().as_bytes(),
        }],
        Priority::Debug,
    )
    .unwrap();
    let mut recs = stream();
    for i in 0..32u32 {
        let c = 7000 + i;
        recs.push(synth::clone(c, c, 0, true, false));
        recs.push(synth::exec(c, c, c, "/usr/bin/cat"));
        recs.push(synth::open(c, c, 3, 0, "/etc/shadow"));
        recs.push(synth::exec(c, c, c, "/dev/shm/payload"));
        recs.push(synth::exit(c, c, true));
    }
    let mut p = Pipeline::new(
        State::new(4096, 8192, 1, true).with_proc_fallback(ProcRoot::new("/proc").unwrap()),
        None,
    );
    // Room for a round's alerts: the test drains once per round.
    let cfg = EngineConfig {
        rate: 0.0,
        queue_bytes: 1 << 20,
        ..EngineConfig::default()
    };
    let users = kestrel::rules::users::Users::new(std::path::Path::new("/"));
    p.rules = Some(Engine::new(set, &cfg, "gw", users, Default::default()));
    let mut lines = 0u64;
    let mut run = |p: &mut Pipeline, n: usize| {
        let mut done = 0;
        while done < n {
            p.state.tick();
            for r in &recs {
                p.on_record(r);
                done += 1;
            }
            if let Some(e) = &mut p.rules {
                e.queue.drain(|_, l| lines += u64::from(l.ends_with(b"\n")));
            }
        }
        done
    };
    run(&mut p, 10_000);
    let before = mine();
    let n = run(&mut p, 1_000_000);
    let allocs = mine() - before;
    assert_eq!(allocs, 0, "{allocs} allocations over {n} records");
    let c = &p.rules.as_ref().unwrap().counters;
    assert!(c.matches_total > 10_000, "{} matches", c.matches_total);
    assert_eq!(c.emitted, c.matches_total);
    assert_eq!(c.queue_drops, 0);
    assert!(lines > 10_000);
}
