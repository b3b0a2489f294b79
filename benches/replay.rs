//! Replay benchmark: synthetic records through decode + state update on one
//! core; prints events/s. `cargo bench --bench replay`.

use std::time::Instant;

use kestrel::capture::record::{decode, synth};
use kestrel::capture::skel::types::kestrel_record_type as T;
use kestrel::state::State;

fn main() {
    // A mix close to a busy gateway: mostly opens/closes, some process churn.
    let mut recs = Vec::new();
    for i in 0..256u32 {
        let c = 5000 + i;
        recs.push(synth::clone(c, c, 0, true, false));
        recs.push(synth::exec(c, c, c, "/usr/bin/worker"));
        for fd in 3..13 {
            recs.push(synth::open(c, c, fd, 0, "/var/lib/app/data/file.db"));
            recs.push(synth::fd(T::KR_CLOSE, c, c, fd, 0, false));
        }
        recs.push(synth::socket(c, c, 20));
        recs.push(synth::sockaddr(T::KR_CONNECT, c, c, 20, 0));
        recs.push(synth::exit(c, c, true));
    }
    let mut state = State::new(4096, 8192, 1, false);
    let rounds = 200;
    let mut best = 0.0f64;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..rounds {
            for r in &recs {
                if let Ok(rec) = decode(r) {
                    state.apply(&rec);
                }
            }
        }
        let eps = (rounds * recs.len()) as f64 / t.elapsed().as_secs_f64();
        best = best.max(eps);
        println!("replay: {:.2} M events/s", eps / 1e6);
    }
    println!(
        "replay best: {:.2} M events/s ({} records per round); bytes/thread entry {}, bytes/fd entry {}",
        best / 1e6,
        recs.len(),
        State::bytes_per_thread(),
        State::bytes_per_fd()
    );
}
