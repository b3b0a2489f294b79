use super::*;
use crate::procfs::{
    parse_cpu_line, parse_meminfo_used, parse_proc_stat, parse_smaps_rollup_pss, parse_status,
    parse_u64,
};

fn fx(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/proc")
        .join(name)
}

fn fx_bytes(case: &str, rel: &str) -> Vec<u8> {
    std::fs::read(fx(case).join(rel)).unwrap()
}

#[test]
fn rounding_and_mb_conversion() {
    assert_eq!(round1(12.25), 12.3);
    assert_eq!(round1(2.44), 2.4);
    assert_eq!(round1(0.05), 0.1);
    assert_eq!(round1(-0.25), -0.3);
    assert_eq!(kb_to_mb(1023), 0);
    assert_eq!(kb_to_mb(174_000), 169);
    assert_eq!(bytes_to_mb(1024 * 1024 - 1), 0);
    assert_eq!(bytes_to_mb(73_170_944), 69);
    assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
    for bad in [&b"18446744073709551616"[..], b"-1", b""] {
        assert_eq!(parse_u64(bad), None, "{bad:?}");
    }
}

#[test]
fn status_real_missing_truncated() {
    let want = StatusMem {
        rss_kb: Some(1652),
        vsz_kb: Some(4488),
    };
    assert_eq!(parse_status(&fx_bytes("real", "proc/self/status")), want);
    assert_eq!(Resources::new(fx("real")).read_status(), Some(want));
    // No VmRSS line (as for a kernel thread): VmSize alone, VmPeak not mistaken for it.
    let m = Resources::new(fx("missing")).read_status().unwrap();
    assert_eq!((m.rss_kb, m.vsz_kb), (None, Some(8000)));
    // "VmRSS:\t    1" cut before its unit is rejected rather than read as 1 kB.
    let t = Resources::new(fx("truncated")).read_status().unwrap();
    assert_eq!((t.rss_kb, t.vsz_kb), (None, Some(4488)));
    assert_eq!(Resources::new(fx("edge_comm")).read_status(), None);
}

#[test]
fn smaps_rollup_pss() {
    assert_eq!(
        parse_smaps_rollup_pss(&fx_bytes("real", "proc/self/smaps_rollup")),
        Some(332)
    );
    assert_eq!(Resources::new(fx("real")).read_pss_kb(), Some(332));
    // Only SwapPss / Pss_* lines: none of them is "Pss:".
    assert_eq!(Resources::new(fx("missing")).read_pss_kb(), None);
    assert_eq!(
        parse_smaps_rollup_pss(b"Pss_Anon: 5 kB\nPss: 7 kB\n"),
        Some(7)
    );
    assert_eq!(Resources::new(fx("truncated")).read_pss_kb(), None);
    assert_eq!(Resources::new(fx("edge_comm")).read_pss_kb(), None);
}

#[test]
fn self_stat_real_and_lifetime_cpu() {
    let want = SelfStat {
        utime: 81,
        stime: 0,
        starttime: 56695,
    };
    assert_eq!(
        parse_self_stat(&fx_bytes("real", "proc/self/stat")),
        Some(want)
    );
    let mut r = Resources::new(fx("real"));
    assert_eq!(r.read_self_stat(), Some(want));
    assert_eq!(r.read_uptime_secs(), Some(568.47));
    // 0.81 s of CPU over 568.47 − 566.95 = 1.52 s of life.
    assert_eq!(lifetime_cpu_perc(&want, 568.47, 100), 53.3);
    // Started "after" uptime (clock skew / bad data): 0, not negative or infinite.
    assert_eq!(lifetime_cpu_perc(&want, 500.0, 100), 0.0);
    assert_eq!(lifetime_cpu_perc(&want, 568.47, 0), 0.0);
}

#[test]
fn self_stat_comm_with_parens_spaces_newline() {
    let mut r = Resources::new(fx("edge_comm"));
    let st = r.read_self_stat().unwrap();
    assert_eq!(
        st,
        SelfStat {
            utime: 250,
            stime: 150,
            starttime: 1000
        }
    );
    // 4 s of CPU over 100 − 10 = 90 s.
    assert_eq!(
        lifetime_cpu_perc(&st, r.read_uptime_secs().unwrap(), 100),
        4.4
    );
    let nl = b"7 (a\n) (b) R 1 1 1 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 77 0 0\n";
    assert_eq!(
        parse_self_stat(nl),
        Some(SelfStat {
            utime: 5,
            stime: 6,
            starttime: 77
        })
    );
}

#[test]
fn self_stat_missing_truncated_malformed() {
    assert_eq!(Resources::new(fx("missing")).read_self_stat(), None);
    assert_eq!(Resources::new(fx("truncated")).read_self_stat(), None);
    assert_eq!(Resources::new(fx("cgroup_v2")).read_self_stat(), None);
    let utime_not_a_number = b"1 (x) R 1 1 1 0 -1 0 0 0 0 0 u 6 0 0 20 0 1 0 77";
    for bad in [&b"12 (x R 1 2"[..], b"", b")", utime_not_a_number] {
        assert_eq!(parse_self_stat(bad), None, "{bad:?}");
    }
}

#[test]
fn uptime_parsing() {
    assert_eq!(parse_uptime(b"568.47 976.44\n"), Some(568.47));
    assert_eq!(Resources::new(fx("missing")).read_uptime_secs(), None);
    assert_eq!(
        Resources::new(fx("truncated")).read_uptime_secs(),
        Some(568.0)
    );
    for bad in [&b"NaN 1"[..], b"-3 1", b""] {
        assert_eq!(parse_uptime(bad), None, "{bad:?}");
    }
}

#[test]
fn proc_stat_real() {
    let want = ProcStat {
        cpu: Some(CpuTimes {
            user: 8026,
            nice: 0,
            system: 4194,
            idle: 97634,
            iowait: 1364,
            irq: 0,
            softirq: 55,
        }),
        btime: Some(1_795_464_319),
        procs_running: Some(3),
    };
    assert_eq!(parse_proc_stat(&fx_bytes("real", "proc/stat")), want);
    assert_eq!(Resources::new(fx("real")).read_proc_stat(), want);
    // 100 − 97634×100/111273
    assert_eq!(host_cpu_perc(&want.cpu.unwrap()), 12.3);
}

#[test]
fn proc_stat_many_cpus_streams_past_long_intr_line() {
    let bytes = fx_bytes("many_cpus", "proc/stat");
    assert!(bytes.len() > 4 * BUF_SIZE);
    let mut r = Resources::new(fx("many_cpus"));
    let ps = r.read_proc_stat();
    assert_eq!(ps, parse_proc_stat(&bytes));
    assert_eq!(ps.btime, Some(1_700_000_000));
    assert_eq!(ps.procs_running, Some(37));
    assert_eq!(host_cpu_perc(&ps.cpu.unwrap()), 15.6);
    let s = r.sample();
    assert_eq!(s.host_boot_ts_ns, 1_700_000_000_000_000_000);
    assert_eq!(s.procs_running_host, 37);
}

#[test]
fn proc_stat_missing_truncated() {
    let m = Resources::new(fx("missing")).read_proc_stat();
    assert!(m.cpu.is_some());
    assert_eq!((m.btime, m.procs_running), (None, None));
    // "cpu  8026 0 4194 97634 13": fewer than seven columns.
    let t = Resources::new(fx("truncated")).read_proc_stat();
    assert_eq!(t, ProcStat::default());
    assert_eq!(
        Resources::new(fx("edge_comm")).read_proc_stat(),
        ProcStat::default()
    );
    // cpuN is never taken for the aggregate line; prefixes must match whole keys.
    assert_eq!(parse_cpu_line(b"cpu0 1 2 3 4 5 6 7"), None);
    let p = parse_proc_stat(b"btimex 5\nbtime 6\nprocs_running_x 1\nprocs_running 2\n");
    assert_eq!((p.btime, p.procs_running), (Some(6), Some(2)));
    assert_eq!(host_cpu_perc(&CpuTimes::default()), 0.0);
}

#[test]
fn scan_lines_small_buffer_skips_long_lines() {
    let path = cpath(&fx("real").join("proc/stat"));
    let mut buf = [0u8; 64]; // the real intr line is far longer than this
    let mut acc = ProcStat::default();
    let mut seen = 0;
    scan_lines(&path, &mut buf, |l| {
        seen += 1;
        assert!(!l.starts_with(b"intr") && !l.contains(&b'\n'));
        acc.feed(l)
    })
    .unwrap();
    assert_eq!(acc, parse_proc_stat(&fx_bytes("real", "proc/stat")));
    assert!(scan_lines(&cpath(&fx("nonexistent")), &mut buf, |_| true).is_none());
}

#[test]
fn meminfo_used() {
    // 24684096 − 22928580 − 19200 − 1371488
    assert_eq!(
        parse_meminfo_used(&fx_bytes("real", "proc/meminfo")),
        Some(364_828)
    );
    assert_eq!(
        Resources::new(fx("real")).read_memory_used_host_kb(),
        Some(364_828)
    );
    // No MemFree; and a file cut inside "Cached:".
    assert_eq!(
        Resources::new(fx("missing")).read_memory_used_host_kb(),
        None
    );
    assert_eq!(
        Resources::new(fx("truncated")).read_memory_used_host_kb(),
        None
    );
    // SwapCached must not be read as Cached.
    let b = b"MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\nSwapCached: 1 kB\nCached: 20 kB\n";
    assert_eq!(parse_meminfo_used(b), Some(65));
}

#[test]
fn file_nr() {
    assert_eq!(Resources::new(fx("real")).read_open_fds_host(), Some(629));
    assert_eq!(parse_file_nr(b"629\t0\t2466183\n"), Some(629));
    assert_eq!(Resources::new(fx("missing")).read_open_fds_host(), None);
    assert_eq!(
        Resources::new(fx("truncated")).read_open_fds_host(),
        Some(62)
    );
    assert_eq!(Resources::new(fx("edge_comm")).read_open_fds_host(), None);
}

#[test]
fn cgroup_parsing() {
    let v2 = parse_cgroup(b"0::/system.slice/a:b.service\n");
    assert_eq!(
        v2,
        Some((CgroupMode::V2, &b"/system.slice/a:b.service"[..]))
    );
    // Hybrid: the v1 memory line wins even after the 0:: line.
    let hy = parse_cgroup(b"0::/user.slice\n3:cpu,memory:/k/x\n");
    assert_eq!(hy, Some((CgroupMode::V1, &b"/k/x"[..])));
    assert_eq!(parse_cgroup(b"1:name=systemd:/\n2:memoryx:/a\n"), None);
    assert_eq!(parse_cgroup(b"garbage\n\n::\n"), None);
}

fn cgroup_case(name: &str) -> (CgroupMode, Option<u64>) {
    let mut r = Resources::new(fx(name));
    (r.cgroup_mode(), r.read_own_cgroup_memory_bytes())
}

#[test]
fn cgroup_memory_layouts() {
    // This machine: hybrid (v1 memory + "0::/"), per-cgroup v1 file present.
    assert_eq!(cgroup_case("real"), (CgroupMode::V1, Some(17_993_728)));
    assert_eq!(cgroup_case("cgroup_v1"), (CgroupMode::V1, Some(73_170_944)));
    assert_eq!(
        cgroup_case("cgroup_v1_fallback"),
        (CgroupMode::V1, Some(52_428_800))
    );
    assert_eq!(cgroup_case("cgroup_v2"), (CgroupMode::V2, Some(18_874_368)));
    assert_eq!(
        cgroup_case("cgroup_v2_ns"),
        (CgroupMode::V2, Some(31_457_280))
    );
    assert_eq!(
        cgroup_case("cgroup_v2_escape"),
        (CgroupMode::V2, Some(4_194_304))
    );
    assert_eq!(cgroup_case("cgroup_v2_hostroot"), (CgroupMode::None, None));
    assert_eq!(cgroup_case("edge_comm"), (CgroupMode::None, None));
    let f = fx("cgroup_v2").join("sys/fs/cgroup/system.slice/kestrel.service/memory.current");
    let mut r = Resources::new(fx("edge_comm")).with_container_memory_file(&f);
    assert_eq!(r.read_container_memory_bytes(), Some(18_874_368));
    // Falco's file: the v1 root's (9999999999 here), none on v2; ".." refused.
    let mut v1 = Resources::new(fx("cgroup_v1")).with_container_memory_file("/x/../y");
    assert_eq!(v1.read_container_memory_bytes(), Some(9_999_999_999));
    assert_eq!(
        Resources::new(fx("cgroup_v2")).read_container_memory_bytes(),
        None
    );
    assert_eq!(parse_single_u64(b"12 13"), None);
}

#[test]
fn sample_real_fixture() {
    let mut r = Resources::new(fx("real"));
    let s = r.sample();
    // USER_HZ is 100 on every Linux arch Kestrel builds for.
    assert_eq!(r.clock_ticks_per_second(), 100);
    let want = ResourceSample {
        // 0.81 s of CPU over 1.52 s of life (see self_stat_real_and_lifetime_cpu).
        cpu_usage_perc: 53.3,
        // Files don't change between construction and sample: no activity.
        kestrel_cpu_usage_perc_interval: 0.0,
        memory_rss_kb: 1652,
        memory_vsz_kb: 4488,
        memory_pss_kb: 332,
        container_memory_used_bytes: 1_599_660_032,
        kestrel_cgroup_memory_used_bytes: 17_993_728,
        cpu_usage_perc_total_host: 12.3,
        host_cpu_usage_perc_interval: 0.0,
        memory_used_host_kb: 364_828,
        procs_running_host: 3,
        open_fds_host: 629,
        host_boot_ts_ns: 1_795_464_319_000_000_000,
    };
    assert_eq!(s, want);
}

#[test]
fn sample_missing_root_is_all_zero() {
    let mut r = Resources::new(fx("does-not-exist"));
    assert_eq!(r.cgroup_mode(), CgroupMode::None);
    assert_eq!(r.sample(), ResourceSample::default());
    // Partial/garbage trees never panic either.
    for case in ["missing", "truncated", "edge_comm", "cgroup_v2"] {
        let _ = Resources::new(fx(case)).sample();
    }
}

#[test]
fn interval_figures_from_deltas() {
    assert_eq!(interval_cpu_perc(100, 200, 2_000_000_000, 100), 50.0);
    assert_eq!(interval_cpu_perc(100, 90, 1_000_000_000, 100), 0.0);
    assert_eq!(interval_cpu_perc(0, 5, 0, 100), 0.0);
    let a = CpuTimes {
        user: 100,
        idle: 1000,
        ..Default::default()
    };
    let b = CpuTimes {
        user: 150,
        idle: 1150,
        ..Default::default()
    };
    assert_eq!(host_cpu_perc_between(&a, &b), 25.0);
    assert_eq!(host_cpu_perc_between(&b, &a), 0.0);

    // End to end through the reader, with the files changing between samples.
    let dir = crate::testing::scratch("resources");
    let stat = |u: u64, s: u64| {
        format!("9 (k) S 1 9 9 0 -1 0 0 0 0 0 {u} {s} 0 0 20 0 3 0 500 1000 10 0\n")
    };
    std::fs::create_dir_all(dir.join("proc/self")).unwrap();
    std::fs::write(dir.join("proc/self/stat"), stat(100, 50)).unwrap();
    std::fs::write(dir.join("proc/stat"), "cpu  100 0 0 1000 0 0 0\n").unwrap();
    let mut r = Resources::new(&dir);
    let (_, t0) = r.prev_proc.unwrap();
    let hz = r.clock_ticks_per_second();
    std::fs::write(dir.join("proc/self/stat"), stat(100 + hz, 50)).unwrap();
    std::fs::write(dir.join("proc/stat"), "cpu  150 0 0 1150 0 0 0\n").unwrap();
    let s1 = r.sample_at(t0 + 2_000_000_000);
    // Second sample with nothing new: the baseline moved.
    let s2 = r.sample_at(t0 + 3_000_000_000);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(s1.kestrel_cpu_usage_perc_interval, 50.0);
    assert_eq!(s1.host_cpu_usage_perc_interval, 25.0);
    // Cumulative: 100 − 1150×100/1300.
    assert_eq!(s1.cpu_usage_perc_total_host, 11.5);
    assert_eq!(s2.kestrel_cpu_usage_perc_interval, 0.0);
    assert_eq!(s2.host_cpu_usage_perc_interval, 0.0);
}

#[test]
fn sample_live_system() {
    let mut r = Resources::default();
    // Burn a little CPU so the interval figure has something to see.
    let t = std::time::Instant::now();
    let mut x = 0u64;
    while t.elapsed().as_millis() < 60 {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
    }
    let s = r.sample();
    assert!(s.memory_rss_kb > 0 && s.memory_vsz_kb >= s.memory_rss_kb);
    assert!(s.memory_used_host_kb > 0);
    assert!(s.procs_running_host >= 1, "we are running");
    assert!(s.open_fds_host > 0);
    assert!(s.host_boot_ts_ns > 1_000_000_000 * 1_000_000_000);
    assert!((0.0..=100.0).contains(&s.cpu_usage_perc_total_host));
    assert!(s.cpu_usage_perc >= 0.0 && s.kestrel_cpu_usage_perc_interval >= 0.0);
    assert!((0.0..=100.0).contains(&s.host_cpu_usage_perc_interval));
    if Path::new("/proc/self/smaps_rollup").exists() {
        assert!(s.memory_pss_kb > 0);
    }
    if r.cgroup_mode() != CgroupMode::None {
        assert!(s.kestrel_cgroup_memory_used_bytes > 0);
    }
    let st = r.read_self_stat().unwrap();
    assert!(st.starttime > 0);
}
