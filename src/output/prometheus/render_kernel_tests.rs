//! The kernel families: drop buckets from enum kestrel_category, per-CPU.

use super::tests::{families, host, test_inputs, text, text_kernel, value};
use super::*;
use crate::capture::KernelCounters;

/// Every drop the probe counts in n_drops_buffer_total is in one bucket of
/// enum kestrel_category (bpf/emit.h), Kestrel's own included: the
/// family's series add up to the JSON's scap.n_drops_buffer_total.
#[test]
fn drop_buckets_sum_to_the_buffer_total() {
    let mut k = KernelCounters::default();
    for (cat, dirs) in k.n_drops_buffer.iter_mut().enumerate() {
        let enter = crate::metrics::schema::has_enter_side(cat);
        *dirs = [if enter { 100 + cat as u64 } else { 0 }, 1 + cat as u64];
        k.n_drops_buffer_total += dirs[0] + dirs[1];
    }
    let t = text_kernel(&MetricsConfig::default(), None, false, k);
    let fam = "falcosecurity_scap_n_drops_buffer_total{";
    let sum: u64 = t
        .lines()
        .filter(|l| l.starts_with(fam))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(sum, k.n_drops_buffer_total, "{t}");
    for (drop, dir, v) in [
        ("dup", "exit", 9),
        ("socket", "enter", 109),
        ("other", "exit", 11),
    ] {
        let series = format!("{fam}dir=\"{dir}\",drop=\"{drop}\"}}");
        assert_eq!(value(&t, &series), v.to_string());
    }
    assert_eq!(
        value(&t, &format!("{fam}dir=\"enter\",drop=\"close\"}}")),
        "106"
    );
    assert!(
        !t.contains("n_drops_page_faults"),
        "modern_bpf has no page-fault family"
    );
    assert_eq!(value(&t, "kestrel_n_page_faults_total"), "0");
}

#[test]
fn per_cpu_counters_carry_a_cpu_label() {
    // falco_metrics.cpp: the digits of n_evts_cpu_N become cpu="N".
    let cfg = MetricsConfig {
        kernel_event_counters_per_cpu_enabled: true,
        ..Default::default()
    };
    let per_cpu = [(7, 0), (30, 4)];
    let h = host();
    let inputs = Inputs {
        per_cpu: &per_cpu,
        ..test_inputs(KernelCounters::default())
    };
    let mut out = Vec::new();
    render(
        &View {
            cfg: &cfg,
            host: &h,
            inputs: &inputs,
            resources: None,
            culprits: None,
            server: None,
            now_real_ns: h.start_ts_ns,
            strict_names: false,
        },
        &mut out,
    );
    let t = String::from_utf8(out).unwrap();
    families(&t);
    assert_eq!(
        value(&t, "falcosecurity_scap_n_evts_cpu_total{cpu=\"1\"}"),
        "30"
    );
    assert_eq!(
        value(&t, "falcosecurity_scap_n_drops_cpu_total{cpu=\"1\"}"),
        "4"
    );
    assert_eq!(
        value(&t, "falcosecurity_scap_n_evts_cpu_total{cpu=\"0\"}"),
        "7"
    );
    assert!(!text(&MetricsConfig::default(), None).contains("_cpu_total"));
}
