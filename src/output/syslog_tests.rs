//! Unit tests of the syslog sink: framing, header validation, and loss
//! accounting against a real loopback port with nothing behind it.

use super::*;

#[test]
fn parses_addresses_and_options() {
    let s = SyslogSpec::parse("127.0.0.1:514").unwrap();
    assert_eq!((s.port, s.facility, s.severity), (514, 16, 6));
    let s =
        SyslogSpec::parse("[::1]:5514?format=3164&facility=daemon&severity=warning&app=k").unwrap();
    assert_eq!(s.host, "::1");
    assert_eq!(s.format, Format::Rfc3164);
    assert_eq!((s.facility, s.severity), (3, 4));
    assert!(SyslogSpec::parse("host").is_err());
    assert!(SyslogSpec::parse("host:99999").is_err());
    assert!(SyslogSpec::parse("h:514?facility=nope").is_err());
    assert!(SyslogSpec::parse("h:514?color=red").is_err());
}

#[test]
fn frames_both_formats() {
    let spec = SyslogSpec::parse("127.0.0.1:9?hostname=gw1").unwrap();
    let mut s = SyslogSink::open(&spec, "x").unwrap();
    let f = String::from_utf8(s.frame(b"{}", "2024-01-23T21:04:07.488647460Z").to_vec()).unwrap();
    assert!(
        f.starts_with("<134>1 2024-01-23T21:04:07.488647460Z gw1 kestrel "),
        "{f}"
    );
    assert!(f.ends_with(" metrics - {}"));
    let spec = SyslogSpec::parse("127.0.0.1:9?format=3164").unwrap();
    let mut s = SyslogSink::open(&spec, "gw2").unwrap();
    let f = String::from_utf8(s.frame(b"{}", "2024-01-03T01:02:03.0Z").to_vec()).unwrap();
    assert!(f.starts_with("<134>Jan  3 01:02:03 gw2 kestrel["), "{f}");
}

#[test]
fn oversized_snapshot_is_refused() {
    let spec = SyslogSpec::parse("127.0.0.1:9?max_bytes=480").unwrap();
    let mut s = SyslogSink::open(&spec, "h").unwrap();
    assert!(s.encode(&[b'x'; 600], "2024-01-01T00:00:00Z").is_err());
    assert!(s.encode(&[b'x'; 300], "2024-01-01T00:00:00Z").is_ok());
}

#[test]
fn header_fields_are_printusascii() {
    for bad in ["gw 1", "", "a\nb", "\u{e9}t\u{e9}"] {
        let e = SyslogSpec::parse(&format!("h:514?hostname={bad}")).unwrap_err();
        assert!(e.contains("printable ASCII") && !e.contains('\n'), "{e}");
    }
    assert!(SyslogSpec::parse(&format!("h:514?hostname={}", "a".repeat(256))).is_err());
    assert!(SyslogSpec::parse(&format!("h:514?app={}", "a".repeat(49))).is_err());
    assert_eq!(sanitize_hostname("my host\n"), "my_host_");
    assert_eq!(sanitize_hostname(""), "-");
    assert_eq!(sanitize_hostname(&"x".repeat(300)).len(), 255);
}

#[test]
fn every_refused_datagram_is_counted() {
    // A port with nothing behind it: each datagram earns one ICMP error.
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let spec = SyslogSpec::parse(&format!("127.0.0.1:{port}")).unwrap();
    let mut s = SyslogSink::open(&spec, "h").unwrap();
    let mut lost = 0;
    for _ in 0..10 {
        lost += s.take_lost();
        let d = s.encode(b"{}", "2024-01-01T00:00:00Z").unwrap().to_vec();
        assert!(matches!(s.write(&d, 0), Wrote::All));
    }
    // Loopback ICMP is queued before send returns; allow a moment anyway.
    for _ in 0..50 {
        if lost == 10 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        lost += s.take_lost();
    }
    assert_eq!(lost, 10, "one loss per refused datagram");
}
