//! How sure a goal's ratio is. The mix goals divide one setup's overhead by another's (the
//! defaults' by the bare attach's, or by scap-open's), both measured against the mix alone in
//! the same interleaved rounds. When the divisor is a small overhead, a few ms of noise in one
//! median moves the ratio by tenths between runs of one build, so a single figure cannot say
//! on which side of a goal's line it falls. A percentile bootstrap over the rounds can: draw
//! the rounds again with replacement (each round whole, so its setups stay paired), take the
//! ratio of medians of every draw, and report the 5th and 95th percentiles. Deterministic: a
//! fixed seed, so a rerun of the same figures prints the same interval.

use super::median;

/// The ratio the goals use: (median(x) - median(alone)) / (median(base) - median(alone)).
/// A divisor at or below zero (no overhead to divide by) reads as infinite.
pub fn overhead_ratio(alone: &[f64], x: &[f64], base: &[f64]) -> f64 {
    let a = median(alone.to_vec());
    let over = median(base.to_vec()) - a;
    if over <= 0.0 {
        return f64::INFINITY;
    }
    (median(x.to_vec()) - a) / over
}

/// splitmix64: enough to draw round indices; no crate for it.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The 5th and 95th percentiles of `overhead_ratio` over 2 000 redraws of the rounds.
pub fn bootstrap(alone: &[f64], x: &[f64], base: &[f64]) -> (f64, f64) {
    const DRAWS: usize = 2000;
    let n = alone.len().min(x.len()).min(base.len());
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut state = 0x006b_6573_7472_656c_u64;
    let (mut da, mut dx, mut db) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut ratios: Vec<f64> = (0..DRAWS)
        .map(|_| {
            for k in 0..n {
                let i = (next(&mut state) % n as u64) as usize;
                (da[k], dx[k], db[k]) = (alone[i], x[i], base[i]);
            }
            overhead_ratio(&da, &dx, &db)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    (ratios[DRAWS / 20], ratios[DRAWS - 1 - DRAWS / 20])
}

/// One line: the ratio, its 90 % interval, and where the interval sits against the goal.
pub fn goal_line(what: &str, goal: f64, alone: &[f64], x: &[f64], base: &[f64]) -> String {
    let r = overhead_ratio(alone, x, base);
    let (lo, hi) = bootstrap(alone, x, base);
    let verdict = if hi <= goal {
        "met"
    } else if lo > goal {
        "not met"
    } else {
        "undecided (the interval spans the line)"
    };
    format!("{what} (goal <= {goal}): {r:.2}, 90 % bootstrap interval over the rounds {lo:.2}-{hi:.2}: {verdict}")
}
