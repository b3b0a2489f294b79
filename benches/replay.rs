//! Replay benchmark: synthetic records through decode + state update on one
//! core; prints events/s. `cargo bench --bench replay`.

mod replay_core;

use kestrel::state::State;

fn main() {
    for _ in 0..5 {
        let (eps, _) = replay_core::best_of(1, 200);
        println!("replay: {:.2} M events/s", eps / 1e6);
    }
    let (best, n) = replay_core::best_of(5, 200);
    println!(
        "replay best: {:.2} M events/s ({n} records per round); bytes/thread entry {}, bytes/fd entry {}",
        best / 1e6,
        State::bytes_per_thread(),
        State::bytes_per_fd()
    );
}
