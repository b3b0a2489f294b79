//! The replay measurement shared by `benches/replay.rs` and the rig: a
//! synthetic stream close to a busy gateway through decode + state update.

use std::time::Instant;

use kestrel::capture::record::{decode, synth};
use kestrel::capture::skel::types::kestrel_record_type as T;
use kestrel::state::State;

/// Mostly opens/closes with some process churn, per process.
pub fn stream() -> Vec<Vec<u8>> {
    stream_as(false)
}

/// `stream`, with `tails` each close after its open as the staging probe
/// sends it (bpf/stage.h): riding on the open as a tail. Without, as the
/// perf-buffer path and 32-bit ARM send it: a record of its own.
pub fn stream_as(tails: bool) -> Vec<Vec<u8>> {
    let mut recs = Vec::new();
    for i in 0..256u32 {
        let c = 5000 + i;
        recs.push(synth::clone(c, c, 0, true, false));
        recs.push(synth::exec(c, c, c, "/usr/bin/worker"));
        for fd in 3..13 {
            let open = synth::open(c, c, fd, 0, "/var/lib/app/data/file.db");
            recs.push(if tails {
                synth::with_close_tail(open)
            } else {
                open
            });
            recs.push(synth::fd(T::KR_CLOSE, c, c, fd, 0, false));
        }
        recs.push(synth::socket(c, c, 20));
        recs.push(synth::sockaddr(T::KR_CONNECT, c, c, 20, 0));
        recs.push(synth::exit(c, c, true));
    }
    recs
}

/// Best events/s over `runs` runs of `rounds` passes; also the stream length.
#[allow(dead_code)]
pub fn best_of(runs: usize, rounds: usize) -> (f64, usize) {
    best_of_state(runs, rounds, State::new(4096, 8192, 1, false))
}

/// As `best_of`, through a given (e.g. pre-filled) state.
#[allow(dead_code)]
pub fn best_of_state(runs: usize, rounds: usize, mut state: State) -> (f64, usize) {
    let recs = stream();
    let mut best = 0.0f64;
    for _ in 0..runs {
        let t = Instant::now();
        for _ in 0..rounds {
            for r in &recs {
                if let Ok(rec) = decode(r) {
                    state.apply(&rec);
                }
            }
        }
        best = best.max((rounds * recs.len()) as f64 / t.elapsed().as_secs_f64());
    }
    (best, recs.len())
}

/// As `best_of`, through the pipeline with `rules` run on every record.
#[allow(dead_code)]
pub fn best_of_rules(
    runs: usize,
    rounds: usize,
    rules: Option<kestrel::rules::RuleSet>,
    tails: bool,
) -> (f64, usize) {
    use kestrel::rules::engine::{Engine, EngineConfig};
    use kestrel::state::pipeline::Pipeline;
    let recs = stream_as(tails);
    let mut p = Pipeline::new(State::new(4096, 8192, 1, false), None);
    p.rules = rules.map(|set| {
        let cfg = EngineConfig {
            rate: 0.0,
            ..EngineConfig::default()
        };
        let users = kestrel::rules::users::Users::new(std::path::Path::new("/"));
        Engine::new(set, &cfg, "bench", users, Default::default())
    });
    let mut best = 0.0f64;
    for _ in 0..runs {
        let t = Instant::now();
        for _ in 0..rounds {
            for r in &recs {
                p.on_record(r);
            }
            if let Some(e) = &mut p.rules {
                e.queue.drain(|_, _| {});
            }
        }
        best = best.max((rounds * recs.len()) as f64 / t.elapsed().as_secs_f64());
    }
    (best, recs.len())
}
