//! The newer Falco fields and the event unit: 0.37's enter-and-exit events,
//! schema names, per-CPU counters (0.39+), host_netinfo (0.39+).
use super::tests::{all_on, host, inputs, parse};
use super::*;
use crate::capture::KernelCounters;

#[test]
fn falco_037_counts_enter_and_exit_events_and_the_newer_schema_records() {
    // 100 records tried, 10 of them thread exits or fork children; 20
    // dropped (2 of those exits); 80 delivered.
    let mut k = KernelCounters {
        n_evts: 100,
        n_drops_buffer_total: 20,
        n_evts_no_enter: 10,
        n_drops_no_enter: 2,
        ..Default::default()
    };
    k.n_drops_buffer[3][1] = 18;
    k.n_drops_buffer[7][1] = 2;
    let i = Inputs {
        num_evts_no_enter: 8,
        ..inputs(&[], 80, k)
    };
    let snap = |schema| {
        let cfg = MetricsConfig { schema, ..all_on() };
        let mut s = Snapshotter::new(cfg, host(), resources::Resources::new("/"));
        parse(s.render(&i))["output_fields"].clone()
    };
    let f = snap(Schema::Falco037);
    assert_eq!(f["scap.n_evts"], 190);
    assert_eq!(f["falco.num_evts"], 152);
    assert_eq!(f["scap.n_drops"], 38);
    assert_eq!(f["scap.n_drops_buffer_open_enter"], 18);
    assert_eq!(f["scap.n_drops_buffer_proc_exit"], 2);
    assert_eq!(
        (&f["kestrel.n_evts"], &f["kestrel.num_evts"]),
        (&100.into(), &80.into())
    );
    assert_eq!(f["kestrel.n_drops"], 20);
    let f = snap(Schema::Falco042);
    assert_eq!(
        (&f["scap.n_evts"], &f["falco.num_evts"]),
        (&100.into(), &80.into())
    );
    assert!(f.get("kestrel.n_evts").is_none());
    let e = Inputs {
        enter_events: true,
        ..i
    };
    let cfg = all_on();
    let mut s = Snapshotter::new(cfg, host(), resources::Resources::new("/"));
    let f = parse(s.render(&e))["output_fields"].clone();
    assert_eq!(
        f["scap.n_evts"], 100,
        "enter records captured: already events"
    );
}

#[test]
fn schemas_are_named_by_the_falco_they_match_and_the_old_name_stays() {
    assert_eq!(Schema::parse("falco-0.42"), Ok(Schema::Falco042));
    assert_eq!(Schema::parse("falco-0.38"), Ok(Schema::Falco042));
    assert_eq!(Schema::Falco042.name(), "falco-0.42");
    assert_eq!(Schema::parse("falco-0.37"), Ok(Schema::Falco037));
    assert!(Schema::parse("falco-0.39").is_err());
}

#[test]
fn per_cpu_counters_are_falco_039s_fields_in_the_newer_schema() {
    // libpman collect_kernel_counter_stats: n_evts_cpu_N, n_drops_cpu_N.
    let per_cpu = [(7, 0), (0, 0), (30, 4)];
    let render = |schema, on| {
        let cfg = MetricsConfig {
            schema,
            include_empty_values: false,
            kernel_event_counters_per_cpu_enabled: on,
            ..all_on()
        };
        let mut s = Snapshotter::new(cfg, host(), resources::Resources::new("/"));
        let k = KernelCounters {
            n_evts: 37,
            n_drops_buffer_total: 4,
            ..Default::default()
        };
        let i = Inputs {
            per_cpu: &per_cpu,
            ..inputs(&[], 33, k)
        };
        parse(s.render(&i))["output_fields"].clone()
    };
    let f = render(Schema::Falco042, true);
    assert_eq!(f["scap.n_evts_cpu_0"], 7);
    assert_eq!(f["scap.n_evts_cpu_2"], 30);
    assert_eq!(f["scap.n_drops_cpu_2"], 4);
    assert!(f.get("scap.n_evts_cpu_1").is_none(), "zeros left out");
    let f = render(Schema::Falco037, true);
    assert!(f.get("scap.n_evts_cpu_0").is_none(), "0.37 had none");
    assert_eq!(f["kestrel.n_evts_cpu_2"], 30, "records");
    let f = render(Schema::Falco042, false);
    assert!(f.get("scap.n_evts_cpu_0").is_none(), "off by default");
    assert!(!MetricsConfig::default().kernel_event_counters_per_cpu_enabled);
}

#[test]
fn host_netinfo_is_a_falco_039_field() {
    let key = "falco.host_netinfo.interfaces.eth0.protocols.ipv4.addresses";
    let snap = |schema| {
        let h = HostInfo {
            netinfo: vec![(key.to_string(), "192.168.1.10,10.0.0.5".to_string())],
            ..host()
        };
        let cfg = MetricsConfig { schema, ..all_on() };
        let mut s = Snapshotter::new(cfg, h, resources::Resources::new("/"));
        parse(s.render(&inputs(&[], 0, KernelCounters::default())))["output_fields"].clone()
    };
    assert_eq!(snap(Schema::Falco042)[key], "192.168.1.10,10.0.0.5");
    assert!(snap(Schema::Falco037).get(key).is_none(), "0.37 had none");
}
