//! The start's word on table sizes: a /proc scan that already fills more
//! than half of a table leaves little room for what starts later, so the
//! agent says so once, naming the flag that raises it and what an entry
//! costs (the tables are fixed at start; nothing grows later).

use crate::state::State;

/// One line per table the scan filled beyond half: (used, capacity).
pub(super) fn half_full_lines(threads: (usize, usize), fds: (usize, usize)) -> Vec<String> {
    let tables = [
        (
            "thread",
            "--thread-table-size",
            threads,
            State::bytes_per_thread(),
        ),
        ("fd", "--fd-table-size", fds, State::bytes_per_fd()),
    ];
    tables
        .into_iter()
        .filter(|(_, _, (used, cap), _)| used.saturating_mul(2) > *cap)
        .map(|(name, flag, (used, cap), bytes)| {
            // The agent's own threads are admitted beyond the capacity.
            let used = used.min(cap);
            format!(
                "{name} table: the /proc scan filled {used} of its {cap} entries at start; \
                 raise {flag} ({bytes} bytes per entry) to leave room for what starts later"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tables_filled_beyond_half_are_named_with_flag_and_cost() {
        assert!(half_full_lines((10, 20), (0, 8)).is_empty(), "half is fine");
        let l = half_full_lines((11, 20), (5000, 8192));
        assert_eq!(l.len(), 2);
        assert!(l[0].starts_with("thread table: the /proc scan filled 11 of its 20 entries"));
        assert!(l[0].contains("--thread-table-size"));
        assert!(l[1].contains(&format!(
            "--fd-table-size ({} bytes per entry)",
            State::bytes_per_fd()
        )));
        let l = half_full_lines((0, 4096), (65, 64));
        assert!(l[0].starts_with("fd table: the /proc scan filled 64 of its 64"));
    }
}
