//! Drop-alert rules: Falco's threshold, token bucket and actions, and the
//! alert JSON of falco_outputs::handle_msg.
use super::*;

fn counters(evts: u64, open_exit: u64, close_enter: u64) -> KernelCounters {
    let mut k = KernelCounters {
        n_evts: evts,
        n_drops_buffer_total: open_exit + close_enter,
        ..KernelCounters::default()
    };
    k.n_drops_buffer[3][1] = open_exit;
    k.n_drops_buffer[6][0] = close_enter;
    k
}

fn monitor(actions: &str, threshold: f64, rate: f64, burst: f64, schema: Schema) -> DropMonitor {
    let cfg = DropAlertConfig {
        actions: parse_actions(actions).unwrap(),
        threshold,
        rate,
        max_burst: burst,
    };
    // Enter records captured: records are events in either schema.
    DropMonitor::new(cfg, schema, "gw1", KernelCounters::default()).with_enter_events(true)
}

#[test]
fn without_enters_falco_037_alerts_count_enter_and_exit_events() {
    // metrics::units: an open record dropped is its enter and exit dropped.
    let mut m = monitor("alert", 0.0, 1000.0, 1000.0, Schema::Falco037).with_enter_events(false);
    m.check(1, &counters(1000, 40, 0));
    m.check(2, &counters(1500, 100, 0));
    let v: serde_json::Value = serde_json::from_slice(m.line()).unwrap();
    let f = &v["output_fields"];
    assert_eq!(
        (&f["n_evts"], &f["n_drops"]),
        (&"1000".into(), &"120".into())
    );
    assert_eq!(f["n_drops_buffer_open_enter"], "60");
}

#[test]
fn actions_parse_like_falco_yaml() {
    assert_eq!(
        parse_actions("log, alert").unwrap(),
        vec![DropAction::Log, DropAction::Alert]
    );
    assert!(parse_actions("ignore,log").is_err());
    assert!(parse_actions("panic").is_err());
    assert!(parse_actions(",").is_err());
    assert_eq!(DropAlertConfig::default().threshold, 0.1);
}

#[test]
fn token_bucket_starts_full_and_refills_at_rate() {
    let mut b = TokenBucket::new(0.5, 2.0, 0);
    assert!(b.claim(0) && b.claim(0));
    assert!(!b.claim(1_000_000_000), "half a token after 1 s");
    assert!(b.claim(2_000_000_000), "a whole one after 2 s");
    assert!(!b.claim(2_000_000_000));
}

#[test]
fn threshold_is_the_share_of_new_events_dropped() {
    let mut m = monitor("alert", 0.1, 1000.0, 1000.0, Schema::Falco037);
    // 10 drops of 100 events: 0.1 is not above 0.1.
    assert_eq!(m.check(1, &counters(100, 10, 0)), Outcome::default());
    let o = m.check(2, &counters(200, 21, 0));
    assert!(o.alert && !o.exit, "11 of 100 is above");
    assert_eq!(m.n_detected, 1);
}

#[test]
fn alert_json_is_falcos_with_deltas_as_strings() {
    let mut m = monitor("log,alert", 0.0, 1000.0, 1000.0, Schema::Falco037);
    m.check(1, &counters(1000, 40, 2));
    m.check(2, &counters(1500, 100, 5));
    let v: serde_json::Value = serde_json::from_slice(m.line()).unwrap();
    assert_eq!(v["rule"], "Falco internal: syscall event drop");
    assert_eq!(v["priority"], "Debug");
    assert_eq!(v["source"], "internal");
    assert_eq!(v["hostname"], "gw1");
    assert_eq!(
        v["output"],
        "Falco internal: syscall event drop. 63 system calls dropped in last second."
    );
    let f = v["output_fields"].as_object().unwrap();
    assert_eq!(f["n_evts"], "500");
    assert_eq!(f["n_drops"], "63");
    assert_eq!(f["n_drops_buffer_open_exit"], "60");
    assert_eq!(f["n_drops_buffer_total"], "63");
    assert_eq!(f["kestrel.n_drops_buffer_close_enter"], "3");
    assert_eq!(f["n_drops_page_faults"], "0");
    assert_eq!(f["ebpf_enabled"], "1");
    // Falco 0.37's modern_bpf set of names, all strings.
    for k in [
        "n_drops_buffer_clone_fork_enter",
        "n_drops_buffer_clone_fork_exit",
        "n_drops_buffer_execve_enter",
        "n_drops_buffer_execve_exit",
        "n_drops_buffer_connect_enter",
        "n_drops_buffer_connect_exit",
        "n_drops_buffer_open_enter",
        "n_drops_buffer_dir_file_enter",
        "n_drops_buffer_dir_file_exit",
        "n_drops_buffer_other_interest_enter",
        "n_drops_buffer_other_interest_exit",
        "n_drops_buffer_close_exit",
        "n_drops_buffer_proc_exit",
        "n_drops_scratch_map",
        "n_drops_bug",
    ] {
        assert!(f[k].is_string(), "{k}");
    }
    let keys: Vec<&String> = f.keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(m.line().last(), Some(&b'\n'));
}

#[test]
fn newer_schema_names_only_modern_bpf_buckets() {
    let mut m = monitor("alert", 0.0, 1000.0, 1000.0, Schema::Falco042);
    m.check(1, &counters(100, 5, 0));
    let v: serde_json::Value = serde_json::from_slice(m.line()).unwrap();
    let f = v["output_fields"].as_object().unwrap();
    assert!(f.contains_key("n_drops_buffer_open_enter"));
    assert!(f.contains_key("kestrel.n_drops_buffer_execve_enter"));
    // The last bucket still fits the alert's fixed field list.
    assert!(f.contains_key("kestrel.n_drops_buffer_other_exit"));
    assert!(!f.contains_key("n_drops_page_faults"));
}

#[test]
fn rate_limit_and_exit() {
    let mut m = monitor("alert", 0.0, 0.0001, 1.0, Schema::Falco037);
    let mut alerts = 0;
    for i in 1..=10 {
        if m.check(i * 1_000_000_000, &counters(100 * i, 5 * i, 0))
            .alert
        {
            alerts += 1;
        }
    }
    assert_eq!((alerts, m.n_detected, m.n_actions), (1, 10, 1));
    let mut m = monitor("log,exit", 0.0, 1.0, 1.0, Schema::Falco037);
    let o = m.check(1, &counters(10, 1, 0));
    assert!(o.exit && !o.alert);
    let mut m = monitor("ignore", 0.0, 1.0, 1.0, Schema::Falco037);
    assert_eq!(m.check(1, &counters(10, 1, 0)), Outcome::default());
}

#[test]
fn full_tables_raise_their_own_rate_limited_alert() {
    let mut m = monitor("alert", 0.1, 0.0001, 1.0, Schema::Falco037);
    assert!(!m.check_tables(1, 0, 0).alert);
    assert!(m.check_tables(2, 5, 1).alert);
    let v: serde_json::Value = serde_json::from_slice(m.line()).unwrap();
    assert_eq!(v["rule"], "Kestrel internal: state table full");
    assert_eq!(v["output_fields"]["n_drops_full_threadtable"], "5");
    assert_eq!(v["output_fields"]["n_drops_full_fdtable"], "1");
    assert!(!m.check_tables(3, 9, 1).alert, "rate-limited");
}
