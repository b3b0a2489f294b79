//! The two snapshot schemas, named by the Falco they match. `falco-0.37`
//! is the seed's (Falco 0.37.0, libs 0.14.2: stats_writer.cpp and
//! libsinsp/stats.cpp; events are enters and exits, see units.rs).
//! `falco-0.42` is Falco 0.42+ (libs 0.22+), matched against Falco 0.44.1
//! with libs 0.25.4: 0.38 renamed the host fields, moved `falco.hostname` to
//! `evt.hostname`, made converted memory `*_mb` doubles
//! (libsinsp/metrics_collector.cpp output_rule_metrics_converter); 0.41 added
//! `falco.reload_ts`; libs 0.22 (0.42) dropped enter events, so modern_bpf
//! (libpman/src/stats.c) kept two enter buckets, and it counts no page-fault
//! or bug drops. Falco 0.38-0.41 (six enter buckets, no reload_ts before
//! 0.41) has no schema here; `falco-0.38`, this schema's first name, is kept
//! as an alias of `falco-0.42`. Kestrel's figures outside a schema keep a
//! `kestrel.` name.

use crate::capture::skel::types::kestrel_category as Cat;
use crate::capture::{KC_MAX, KD_MAX};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Schema {
    #[default]
    Falco037,
    Falco042,
}

/// Each drop category of bpf/kestrel.h with its field name; the order is
/// checked against the generated enum at compile time.
const CATEGORIES: [(Cat, &str); KC_MAX] = [
    (Cat::KC_CLONE_FORK, "clone_fork"),
    (Cat::KC_EXECVE, "execve"),
    (Cat::KC_CONNECT, "connect"),
    (Cat::KC_OPEN, "open"),
    (Cat::KC_DIR_FILE, "dir_file"),
    (Cat::KC_OTHER_INTEREST, "other_interest"),
    (Cat::KC_CLOSE, "close"),
    (Cat::KC_PROC_EXIT, "proc_exit"),
    (Cat::KC_DUP, "dup"),
    (Cat::KC_SOCKET, "socket"),
    (Cat::KC_OTHER, "other"),
];

/// Drop category names, indexed like enum kestrel_category.
pub const CATEGORY_NAMES: [&str; KC_MAX] = {
    let mut names = [""; KC_MAX];
    let mut i = 0;
    while i < KC_MAX {
        assert!(
            CATEGORIES[i].0 .0 as usize == i,
            "CATEGORIES out of enum order"
        );
        names[i] = CATEGORIES[i].1;
        i += 1;
    }
    names
};

const DIRS: [&str; KD_MAX] = ["enter", "exit"];

/// Whether category `cat` has an enter side: the process-exit record is no
/// syscall, so it has none; every syscall category may drop on enter.
pub fn has_enter_side(cat: usize) -> bool {
    CATEGORY_NAMES.get(cat).is_some_and(|c| *c != "proc_exit")
}

/// The `drop` label of category `cat` in Prometheus: Falco's regex
/// `n_drops_buffer_([^_]+(?:_[^_]+)*)_exit$` (falco_metrics.cpp,
/// sources_to_text_prometheus) turns `n_drops_buffer_proc_exit` into
/// `proc`; every other category keeps its name.
pub fn prometheus_drop_label(cat: usize) -> &'static str {
    match CATEGORY_NAMES.get(cat).copied() {
        Some("proc_exit") => "proc",
        Some(c) => c,
        None => "unknown",
    }
}

impl Schema {
    pub fn parse(s: &str) -> Result<Schema, String> {
        match s {
            "falco-0.37" => Ok(Schema::Falco037),
            // The first name of falco-0.42, which matched 0.38-0.41 only in part.
            "falco-0.42" | "falco-0.38" => Ok(Schema::Falco042),
            _ => Err(format!(
                "unknown schema '{s}' (use falco-0.37 or falco-0.42)"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Schema::Falco037 => "falco-0.37",
            Schema::Falco042 => "falco-0.42",
        }
    }

    pub fn hostname_key(self) -> &'static str {
        match self {
            Schema::Falco037 => "falco.hostname",
            Schema::Falco042 => "evt.hostname",
        }
    }

    /// Whether Falco has a `scap.n_drops_buffer_*` field for (category, dir).
    pub fn has_bucket(self, cat: usize, dir: usize) -> bool {
        let name = CATEGORY_NAMES.get(cat).copied().unwrap_or("");
        match (self, name, dir) {
            (_, "dup" | "socket" | "other" | "", _) => false,
            (_, "close" | "proc_exit", 0) => false,
            (_, "close" | "proc_exit", _) => true,
            (Schema::Falco037, _, _) => true,
            (Schema::Falco042, "connect" | "open", _) => true,
            (Schema::Falco042, _, d) => d == 1,
        }
    }

    /// Writes the field name of bucket (cat, dir) into `out`: Falco's when
    /// the schema has it, else Kestrel's.
    pub fn bucket_name(self, cat: usize, dir: usize, out: &mut super::fields::Key) {
        use core::fmt::Write as _;
        out.clear();
        let c = CATEGORY_NAMES.get(cat).copied().unwrap_or("unknown");
        let _ = match (self.has_bucket(cat, dir), c) {
            // Falco names the process-exit bucket without a direction.
            (true, "proc_exit") => write!(out, "scap.n_drops_buffer_proc_exit"),
            (true, _) => write!(out, "scap.n_drops_buffer_{c}_{}", DIRS[dir & 1]),
            (false, _) => write!(out, "kestrel.n_drops_buffer_{c}_{}", DIRS[dir & 1]),
        };
    }

    /// scap.n_drops_page_faults and scap.n_drops_bug exist in 0.37 only.
    pub fn has_pf_and_bug(self) -> bool {
        self == Schema::Falco037
    }
}
