//! Remote syslog against a real receiver: rsyslog (Debian's package, installed
//! by scripts/test.sh) on a loopback UDP port, writing the RFC 5424 fields it
//! parsed to a file. Also a port nobody listens on: the agent keeps running
//! and counts what it could not send.

mod common;
use common::SpawnGuarded;
use common::{
    agent, bin, field, free_udp_port, probe_lock, snapshots, tmp, wait_until, written_lines, Guard,
};

use std::process::{Command, Stdio};
use std::time::Duration;

/// rsyslogd on a loopback UDP port, killed when dropped; `out` is the file
/// it writes each received message's parsed fields to.
struct Rsyslog {
    _child: Guard,
    out: String,
}

fn start_rsyslog(port: u16) -> Rsyslog {
    let Ok(bin) = which("rsyslogd") else {
        panic!("rsyslogd is missing: scripts/test.sh installs Debian's rsyslog");
    };
    let dir = tmp("rsyslog");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = format!("{dir}/received");
    let conf = format!("{dir}/rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{dir}" maxMessageSize="64k")
module(load="imudp")
template(name="fields" type="string"
         string="%APP-NAME%|%HOSTNAME%|%syslogseverity-text%|%syslogfacility-text%|%msg%\n")
ruleset(name="kestrel") {{ action(type="omfile" file="{out}" template="fields") }}
input(type="imudp" address="127.0.0.1" port="{port}" ruleset="kestrel")
"#
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .args(["-n", "-f", &conf, "-i", &format!("{dir}/pid")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_guarded();
    // Ready once the UDP port is taken.
    let bound = wait_until(Duration::from_secs(10), || {
        std::net::UdpSocket::bind(("127.0.0.1", port)).is_err()
    });
    assert!(bound.is_some(), "rsyslogd did not bind");
    Rsyslog { _child: child, out }
}

fn which(name: &str) -> Result<String, ()> {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = format!("{dir}/{name}");
        if std::path::Path::new(&p).exists() {
            return Ok(p);
        }
    }
    Err(())
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root and rsyslogd")]
fn rsyslog_receives_rfc5424_snapshots() {
    let _g = probe_lock();
    let port = free_udp_port();
    let rs = start_rsyslog(port);
    let url = format!(
        "syslog://127.0.0.1:{port}?hostname=gw-test&app=kestrel-t&severity=notice&facility=local3"
    );
    let st = Command::new(bin())
        .args([
            "run",
            "--output",
            &url,
            "--interval",
            "200ms",
            "--duration",
            "1s",
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    wait_until(Duration::from_secs(10), || {
        written_lines(&rs.out).len() >= 4
    });
    let received = std::fs::read_to_string(&rs.out).unwrap_or_default();
    let lines: Vec<&str> = received.lines().collect();
    assert!(
        lines.len() >= 4,
        "rsyslog got {} messages: {received}",
        lines.len()
    );
    for l in &lines {
        let parts: Vec<&str> = l.splitn(5, '|').collect();
        assert_eq!(
            parts[..4],
            ["kestrel-t", "gw-test", "notice", "local3"],
            "{l}"
        );
        let v: serde_json::Value =
            serde_json::from_str(parts[4].trim_start()).expect("message parses back into JSON");
        assert_eq!(v["rule"], "Falco internal: metrics snapshot");
        assert!(v["output_fields"]["scap.n_evts"].is_u64());
    }
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root and rsyslogd")]
fn unreachable_collector_is_counted_and_the_agent_keeps_running() {
    let _g = probe_lock();
    let port = free_udp_port();
    let out = tmp("unreach.json");
    let st = agent(&out, &["--output", &format!("syslog://127.0.0.1:{port}")])
        // The end falls between two ticks: at 2 s the final snapshot would
        // follow the tenth tick's by microseconds, before the ICMP for the
        // tick's datagram is back on a loaded host (CI: 10 of 12 counted).
        .args(["--interval", "200ms", "--duration", "2100ms"])
        .status()
        .unwrap();
    assert!(st.success(), "the agent ran to its end");
    let snaps = snapshots(&out);
    assert!(snaps.len() >= 10, "snapshots kept flowing: {}", snaps.len());
    let last = snaps.last().unwrap();
    let lost = field(last, "kestrel.output_write_errors");
    // Every datagram before the final snapshot was refused: all counted.
    assert!(
        lost as usize + 1 >= snaps.len(),
        "refused datagrams are counted: {lost} of {}",
        snaps.len()
    );
    assert_eq!(field(last, "falco.outputs_queue_num_drops"), 0);
}
