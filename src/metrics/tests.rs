//! Golden tests per schema, field by field, and the derivation rules.
use super::sections::{put_mem_037, put_mem_038};
use super::*;
use crate::capture::{KernelCounters, ProgStats};
use crate::state::StateCounters;

/// The golden field lists, one `name type` a line (type: u integer, f
/// float, s string); each file's leading comment says where it comes from.
const FALCO_037_FIELDS: &str = include_str!("golden/falco-0.37.fields");
const FALCO_042_FIELDS: &str = include_str!("golden/falco-0.42.fields");

/// Parses a golden list; a malformed line fails the test rather than
/// silently dropping a field.
fn golden_fields(text: &str) -> Vec<(&str, char)> {
    let fields: Vec<(&str, char)> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(' ') {
            Some((name, ty @ ("u" | "f" | "s"))) => (name, ty.chars().next().unwrap()),
            _ => panic!("bad golden line {l:?}"),
        })
        .collect();
    assert!(!fields.is_empty(), "empty golden list");
    fields
}

pub(super) fn all_on() -> MetricsConfig {
    MetricsConfig {
        resource_utilization_enabled: true,
        state_counters_enabled: true,
        kernel_event_counters_enabled: true,
        kernel_event_counters_per_cpu_enabled: true,
        libbpf_stats_enabled: true,
        convert_memory_to_mb: true,
        include_empty_values: true,
        schema: Schema::Falco037,
    }
}

pub(super) fn host() -> HostInfo {
    HostInfo {
        hostname: "test".into(),
        kernel_release: "6.6.7".into(),
        num_cpus: 2,
        start_ts_ns: 1,
        reload_ts_ns: 1,
        netinfo: vec![],
    }
}

pub(super) fn inputs(progs: &[ProgStats], num_evts: u64, kernel: KernelCounters) -> Inputs<'_> {
    Inputs {
        num_evts,
        num_compat_evts: 0,
        num_evts_no_enter: 0,
        enter_events: false,
        attach: "tp_btf",
        outputs_queue_num_drops: 0,
        output_write_errors: 0,
        mqtt_drops: 0,
        syslog_stream_drops: 0,
        kernel,
        per_cpu: &[],
        state: StateCounters::default(),
        n_threads: 3,
        n_fds: 0,
        kestrel_n_fds: 0,
        progs,
        culprits: None,
        rules: None,
        rules_counters: true,
    }
}

/// Inputs whose records are already events (enter capture on): the rate
/// and window rules below are the same in either unit.
fn events<'a>(progs: &'a [ProgStats], num_evts: u64, kernel: KernelCounters) -> Inputs<'a> {
    Inputs {
        enter_events: true,
        ..inputs(progs, num_evts, kernel)
    }
}

pub(super) fn parse(r: Rendered<'_>) -> serde_json::Value {
    assert_eq!(r.line.last(), Some(&b'\n'), "one line per snapshot");
    assert!(r.time.ends_with('Z'));
    serde_json::from_slice(r.line).expect("snapshot is valid JSON")
}

/// Renders two snapshots with every knob on and checks the second against
/// `golden`: each field present with its JSON type, nothing else outside
/// `kestrel.`, keys sorted.
fn golden(schema: Schema, golden: &[(&str, char)]) -> serde_json::Value {
    let progs = [
        ProgStats {
            name: "sys_exit",
            run_cnt: 10,
            run_time_ns: 1000,
        },
        ProgStats {
            name: "sched_proc_exit",
            run_cnt: 0,
            run_time_ns: 0,
        },
    ];
    let cfg = MetricsConfig { schema, ..all_on() };
    let mut s = Snapshotter::new(cfg, host(), resources::Resources::new("/"));
    let k = KernelCounters {
        n_evts: 5,
        ..Default::default()
    };
    let (t0, real) = (time::monotonic_ns(), time::realtime_ns());
    s.render_at(&inputs(&progs, 5, k), t0, real);
    let k2 = KernelCounters {
        n_evts: 9,
        ..Default::default()
    };
    let v = parse(s.render_at(&inputs(&progs, 9, k2), t0 + 120_000_000, real + 120_000_000));
    assert_eq!(v["rule"], "Falco internal: metrics snapshot");
    assert_eq!(v["output"], "Falco metrics snapshot");
    assert_eq!(v["priority"], "Informational");
    assert_eq!(v["source"], "internal");
    assert_eq!(v["hostname"], "test");
    let f = v["output_fields"].as_object().unwrap();
    for (name, ty) in golden {
        let val = f.get(*name).unwrap_or_else(|| panic!("{name} missing"));
        let ok = match ty {
            'u' => val.is_u64(),
            'f' => val.is_f64(),
            _ => val.is_string(),
        };
        assert!(ok, "{name} has the wrong JSON type: {val}");
    }
    for k in f.keys() {
        let listed = golden.iter().any(|(n, _)| n == k);
        assert!(
            listed || k.starts_with("kestrel."),
            "{k} is in no Falco schema"
        );
    }
    assert_eq!(f["scap.sys_exit.avg_time_ns"], 100);
    // 0.37 counts a syscall record as its enter and exit (metrics::units).
    let prev = if schema == Schema::Falco037 { 10 } else { 5 };
    assert_eq!(f["falco.num_evts_prev"], prev);
    let keys: Vec<&String> = f.keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "keys are sorted as Falco prints them");
    v
}

#[test]
fn falco_037_schema_is_the_seeds_field_by_field() {
    let v = golden(Schema::Falco037, &golden_fields(FALCO_037_FIELDS));
    assert!(v["output_fields"]
        .get("kestrel.n_drops_buffer_dup_exit")
        .is_some());
    // Kestrel's bucket for the syscalls modern_bpf counts in none.
    assert!(v["output_fields"]
        .get("kestrel.n_drops_buffer_other_exit")
        .is_some());
}

#[test]
fn falco_042_schema_is_current_falcos_field_by_field() {
    let v = golden(Schema::Falco042, &golden_fields(FALCO_042_FIELDS));
    let f = &v["output_fields"];
    assert!(f.get("falco.hostname").is_none());
    assert!(f.get("scap.n_drops_page_faults").is_none());
    assert!(f.get("kestrel.n_drops_buffer_execve_enter").is_some());
    assert!(f.get("kestrel.n_drops_bug").is_some());
    let cfg = MetricsConfig {
        schema: Schema::Falco042,
        convert_memory_to_mb: false,
        ..all_on()
    };
    let mut s = Snapshotter::new(cfg, host(), resources::Resources::new("/"));
    let v = parse(s.render(&inputs(&[], 0, KernelCounters::default())));
    let f = &v["output_fields"];
    assert!(f["falco.memory_rss_kb"].is_u64());
    assert!(f["falco.container_memory_used_bytes"].is_u64());
    assert!(f["falco.host_memory_used_kb"].is_u64());
}

#[test]
fn memory_037_zero_check_is_made_before_the_mb_conversion() {
    let mut f = Fields::new(false);
    put_mem_037(&mut f, "falco.memory_rss", 512, Some(0));
    put_mem_037(&mut f, "falco.memory_vsz", 0, Some(0));
    assert_eq!(f.list.len(), 1, "512 kB is not empty though it is 0 MB");
    assert_eq!(f.list[0].1, Value::U64(0));
    let mut f = Fields::new(false);
    put_mem_038(&mut f, "memory_rss", 1536, false, true);
    assert_eq!(f.list[0].0.as_str(), "falco.memory_rss_mb");
    assert_eq!(f.list[0].1, Value::F64(1.5));
}

#[test]
fn duration_is_wall_clock_since_start_ts() {
    let mut h = host();
    h.start_ts_ns = time::realtime_ns() - 42_500_000_000;
    let mut s = Snapshotter::new(all_on(), h, resources::Resources::new("/"));
    let v = parse(s.render(&inputs(&[], 0, KernelCounters::default())));
    assert_eq!(v["output_fields"]["falco.duration_sec"], 42);
}

#[test]
fn empty_values_are_left_out_except_the_always_present() {
    let mut cfg = all_on();
    cfg.include_empty_values = false;
    let mut s = Snapshotter::new(cfg, host(), resources::Resources::new("/nonexistent"));
    let v = parse(s.render(&inputs(&[], 0, KernelCounters::default())));
    let f = v["output_fields"].as_object().unwrap();
    assert!(f.get("scap.n_drops_bug").is_none());
    assert!(f.get("falco.n_added_fds").is_none());
    assert!(
        f.get("falco.memory_rss").is_none(),
        "0 read from a missing /proc"
    );
    for k in [
        "scap.n_evts",
        "scap.n_drops_perc",
        "falco.n_fds",
        "falco.n_threads",
        "falco.num_evts",
    ] {
        assert!(f.get(k).is_some(), "{k} must stay");
    }
    assert!(
        f.get("falco.evts_rate_sec").is_none(),
        "left out while prev is 0"
    );
}

#[test]
fn drop_percentage_and_rates_between_snapshots() {
    let mut s = Snapshotter::new(all_on(), host(), resources::Resources::new("/"));
    let mut k = KernelCounters {
        n_evts: 100,
        ..Default::default()
    };
    let (t0, real) = (time::monotonic_ns(), time::realtime_ns());
    let v = parse(s.render_at(&events(&[], 100, k), t0, real));
    assert_eq!(
        v["output_fields"]["scap.evts_rate_sec"], 0.0,
        "0 on the first snapshot"
    );
    k.n_evts = 300;
    k.n_drops_buffer_total = 50;
    k.n_drops_buffer[3][1] = 50;
    let v = parse(s.render_at(&events(&[], 250, k), t0 + 200_000_000, real));
    let f = &v["output_fields"];
    assert_eq!(f["scap.n_drops_perc"], 25.0);
    assert_eq!(f["scap.n_drops"], 50);
    assert_eq!(f["scap.n_drops_buffer_open_exit"], 50);
    assert_eq!(f["scap.n_evts_prev"], 100);
    assert_eq!(f["scap.evts_rate_sec"], 1000.0, "200 events over 200 ms");
    assert_eq!(f["scap.evts_drop_rate_sec"], 250.0, "50 drops over 200 ms");
}

#[test]
fn memory_units_follow_convert_memory_to_mb() {
    let mut cfg = all_on();
    let mut s = Snapshotter::new(cfg, host(), resources::Resources::new("/"));
    let mb = parse(s.render(&inputs(&[], 0, KernelCounters::default())));
    cfg.convert_memory_to_mb = false;
    let mut s = Snapshotter::new(cfg, host(), resources::Resources::new("/"));
    let kb = parse(s.render(&inputs(&[], 0, KernelCounters::default())));
    let rss_mb = mb["output_fields"]["falco.memory_rss"].as_u64().unwrap();
    let rss_kb = kb["output_fields"]["falco.memory_rss"].as_u64().unwrap();
    assert!(rss_kb > 1024);
    assert!((rss_kb / 1024).abs_diff(rss_mb) <= 2);
}

#[test]
fn a_final_snapshot_right_after_another_takes_one_window_for_every_derivation() {
    let mut s = Snapshotter::new(all_on(), host(), resources::Resources::new("/"));
    let k = |n| KernelCounters {
        n_evts: n,
        ..Default::default()
    };
    // Explicit clocks: start, a periodic snapshot 300 ms later, the final
    // one 2 ms after that.
    let (t0, real) = (time::monotonic_ns(), time::realtime_ns());
    s.render_at(&events(&[], 0, k(0)), t0, real);
    let v = parse(s.render_at(&events(&[], 3000, k(3000)), t0 + 300_000_000, real));
    let periodic = v["output_fields"]["scap.evts_rate_sec"].as_f64().unwrap();
    let v = parse(s.render_at(&events(&[], 3010, k(3010)), t0 + 302_000_000, real));
    let last = v["output_fields"]["scap.evts_rate_sec"].as_f64().unwrap();
    assert_eq!(periodic, 10_000.0, "3000 events over 300 ms");
    assert_eq!(
        last, 9_966.9,
        "3010 events over the 302 ms since the start snapshot"
    );
    let f = &v["output_fields"];
    assert_eq!(
        f["scap.n_evts_prev"], 0,
        "_prev, rates and n_drops_perc share the window since the snapshot before"
    );
    assert_eq!(f["falco.num_evts_prev"], 0);
}
