use super::*;

fn img<'a>(argv: &'a [&'a str], flags: u32) -> synth::Image<'a> {
    synth::Image {
        path: "/bin/sleep",
        argv,
        exepath: "/usr/bin/sleep",
        cwd: "/tmp",
        flags,
    }
}

#[test]
fn decodes_every_synthetic_record() {
    let open = synth::open_mode(10, 10, 3, 0o101, 0o755, "/etc/hosts");
    match decode(&open).unwrap() {
        Record::Open {
            path, hdr, mode, ..
        } => {
            assert_eq!(path, b"/etc/hosts");
            assert_eq!(hdr.ret, 3);
            assert_eq!(mode, 0o755);
        }
        r => panic!("wrong record {r:?}"),
    }
    match decode(&synth::exec(10, 10, 10, "/bin/true")).unwrap() {
        Record::Exec { path, task, .. } => {
            assert_eq!(path, b"/bin/true");
            assert!(task.is_some());
        }
        r => panic!("wrong record {r:?}"),
    }
    assert!(matches!(
        decode(&synth::clone(10, 10, 11, false, false)).unwrap(),
        Record::Clone {
            child_side: false,
            ..
        }
    ));
    assert!(matches!(
        decode(&synth::exit(10, 10, true)).unwrap(),
        Record::ProcExit { .. }
    ));
}

#[test]
fn exec_carries_args_exepath_cwd_and_flags() {
    let rec = synth::exec_image(7, 7, 7, &img(&["sleep", "0.2", ""], F::KF_EXE_MEMFD.0));
    let r = decode(&rec).unwrap();
    assert!(r.has_flag(F::KF_EXE_MEMFD));
    let Record::Exec {
        path,
        args,
        exepath,
        cwd,
        task,
        ..
    } = r
    else {
        panic!("wrong record {r:?}");
    };
    assert_eq!(path, b"/bin/sleep");
    // As in memory: every argument's NUL kept, an empty one too.
    assert_eq!(args, b"sleep\x000.2\x00\x00");
    assert_eq!(exepath, b"/usr/bin/sleep");
    assert_eq!(cwd, b"/tmp");
    assert_eq!(task.unwrap().loginuid, u32::MAX);
    // Empty argv, exepath and cwd are lengths of 0.
    let mut rec = synth::exec_image(7, 7, 7, &img(&[], 0));
    let f = offset_of!(kestrel_exec, exepath_len);
    rec[f..f + 4].copy_from_slice(&[0; 4]);
    let n = rec.len() - "/usr/bin/sleep\0/tmp\0".len();
    rec.truncate(n);
    rec[offset_of!(kestrel_hdr, len)..][..2].copy_from_slice(&(n as u16).to_ne_bytes());
    match decode(&rec).unwrap() {
        Record::Exec {
            args, exepath, cwd, ..
        } => assert!(args.is_empty() && exepath.is_empty() && cwd.is_empty()),
        r => panic!("wrong record {r:?}"),
    }
}

#[test]
fn failed_exec_has_no_task_and_empty_strings() {
    match decode(&synth::exec_failed(7, 7, 59, -2)).unwrap() {
        Record::Exec {
            task: None,
            path,
            args,
            exepath,
            cwd,
            hdr,
        } => {
            assert_eq!(hdr.ret, -2);
            assert!(path.is_empty() && args.is_empty() && exepath.is_empty() && cwd.is_empty());
        }
        r => panic!("wrong record {r:?}"),
    }
}

#[test]
fn syscall_records_carry_args_and_up_to_two_strings() {
    let a = [u64::MAX, 2, 3, 4, 5, 6];
    let rec = synth::syscall(5, 5, 82, 0, a, Some("/tmp/a"), Some("/tmp/b"));
    match decode(&rec).unwrap() {
        Record::Syscall { args, s0, s1, hdr } => {
            assert_eq!(args, a);
            assert_eq!((s0, s1), (&b"/tmp/a"[..], &b"/tmp/b"[..]));
            assert_eq!(hdr.nr, 82);
        }
        r => panic!("wrong record {r:?}"),
    }
    let rec = synth::syscall(5, 5, 101, 0, [16, 9, 0, 0, 0, 0], None, None);
    assert_eq!(rec.len(), offset_of!(kestrel_syscall, data));
    match decode(&rec).unwrap() {
        Record::Syscall { args, s0, s1, .. } => {
            assert_eq!(args[..2], [16, 9]);
            assert!(s0.is_empty() && s1.is_empty());
        }
        r => panic!("wrong record {r:?}"),
    }
    // An unreadable string is sent as a lone NUL.
    let rec = synth::syscall(5, 5, 87, -14, [0; 6], Some(""), None);
    assert!(matches!(
        decode(&rec).unwrap(),
        Record::Syscall { s0: b"", .. }
    ));
}

#[test]
fn connect_and_accept_carry_both_ends() {
    // 64 bytes before the local end was added; no padding the probe could
    // leave uninitialised.
    assert_eq!(size_of::<kestrel_sockaddr>(), 88);
    assert_eq!(offset_of!(kestrel_sockaddr, laddr), 72);
    let peer = "10.1.2.3:443".parse().unwrap();
    let local = "192.168.0.7:50123".parse().unwrap();
    let rec = synth::sockaddr_ends(T::KR_CONNECT, 9, 9, 5, -115, peer, Some(local));
    match decode(&rec).unwrap() {
        Record::Connect { hdr, addr } => {
            assert_eq!(hdr.ret, -115);
            assert_eq!((addr.fd, addr.family, addr.port), (5, 2, 443));
            assert_eq!(addr.addr[..4], [10, 1, 2, 3]);
            assert_eq!((addr.lfamily, addr.lport), (2, 50123));
            assert_eq!(addr.laddr[..4], [192, 168, 0, 7]);
            assert!(addr.laddr[4..].iter().all(|&b| b == 0));
        }
        r => panic!("wrong record {r:?}"),
    }
    let peer = "[2001:db8::1]:40000".parse().unwrap();
    let local = "[::ffff:127.0.0.1]:8080".parse().unwrap();
    let rec = synth::sockaddr_ends(T::KR_ACCEPT, 9, 9, 3, 7, peer, Some(local));
    match decode(&rec).unwrap() {
        Record::Accept { hdr, addr } => {
            assert_eq!(hdr.ret, 7);
            assert_eq!((addr.family, addr.port), (10, 40000));
            assert_eq!(addr.addr[..2], [0x20, 0x01]);
            assert_eq!((addr.lfamily, addr.lport), (10, 8080));
            assert_eq!(addr.laddr[10..], [0xff, 0xff, 127, 0, 0, 1]);
        }
        r => panic!("wrong record {r:?}"),
    }
    // A failed call: the local end unknown.
    let rec = synth::sockaddr(T::KR_CONNECT, 9, 9, 5, -111);
    match decode(&rec).unwrap() {
        Record::Connect { addr, .. } => assert_eq!((addr.lfamily, addr.lport), (0, 0)),
        r => panic!("wrong record {r:?}"),
    }
}

#[test]
fn rejects_truncated_records_at_every_length() {
    for rec in [
        synth::open(1, 1, 3, 0, "/tmp/x"),
        synth::exec(1, 1, 1, "/bin/sh"),
        synth::exec_image(1, 1, 1, &img(&["a", "b"], 0)),
        synth::exec_failed(1, 1, 59, -2),
        synth::syscall(1, 1, 82, 0, [1; 6], Some("/a"), Some("/b")),
        synth::syscall(1, 1, 101, 0, [1; 6], None, None),
        synth::clone(1, 1, 2, false, false),
        synth::fd(T::KR_CLOSE, 1, 1, 3, 0, false),
        synth::sockaddr(T::KR_CONNECT, 1, 1, 3, 0),
        synth::sockaddr(T::KR_ACCEPT, 1, 1, 3, 4),
        synth::exit(1, 1, false),
    ] {
        for cut in 0..rec.len() {
            // Every prefix is rejected: either too short or its hdr.len
            // no longer matches.
            assert!(decode(&rec[..cut]).is_err(), "prefix {cut} accepted");
        }
    }
}

/// Sets a u16 field of a record.
fn set16(rec: &mut [u8], at: usize, v: u16) {
    rec[at..at + 2].copy_from_slice(&v.to_ne_bytes());
}

#[test]
fn rejects_lying_lengths_and_types() {
    let mut rec = synth::open(1, 1, 3, 0, "/tmp/x");
    let pl = offset_of!(kestrel_open, path_len);
    set16(&mut rec, pl, 500);
    assert_eq!(decode(&rec).unwrap_err(), DecodeError::BadPathLength);
    set16(&mut rec, pl, 0);
    assert_eq!(decode(&rec).unwrap_err(), DecodeError::BadPathLength);

    // Each exec length in turn pointing past the record; path never 0.
    for (at, v) in [
        (offset_of!(kestrel_exec, path_len), 0),
        (offset_of!(kestrel_exec, path_len), 900),
        (offset_of!(kestrel_exec, args_len), 900),
        (offset_of!(kestrel_exec, exepath_len), 900),
        (offset_of!(kestrel_exec, cwd_len), 900),
        (offset_of!(kestrel_exec, cwd_len), u16::MAX),
    ] {
        let mut rec = synth::exec_image(1, 1, 1, &img(&["sleep"], 0));
        set16(&mut rec, at, v);
        assert_eq!(decode(&rec).unwrap_err(), DecodeError::BadPathLength);
    }
    for (at, v) in [
        (offset_of!(kestrel_syscall, s0_len), 600),
        (offset_of!(kestrel_syscall, s1_len), 600),
        (offset_of!(kestrel_syscall, s0_len), u16::MAX),
    ] {
        let mut rec = synth::syscall(1, 1, 82, 0, [0; 6], Some("/a"), Some("/b"));
        set16(&mut rec, at, v);
        assert_eq!(decode(&rec).unwrap_err(), DecodeError::BadPathLength);
    }

    let mut rec = synth::exit(1, 1, false);
    rec[offset_of!(kestrel_hdr, r#type)] = 200;
    assert_eq!(decode(&rec).unwrap_err(), DecodeError::UnknownType(200));

    let mut rec = synth::exit(1, 1, false);
    rec.push(0);
    assert_eq!(decode(&rec).unwrap_err(), DecodeError::LengthMismatch);
}

#[test]
fn garbage_never_panics() {
    // A deterministic xorshift stream of random bytes and lengths.
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut buf = [0u8; 1400];
    let len_at = offset_of!(kestrel_hdr, len);
    let type_at = offset_of!(kestrel_hdr, r#type);
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (x % buf.len() as u64) as usize;
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        // Make some samples agree on length and type so deeper checks run.
        if n >= 32 {
            buf[len_at..len_at + 2].copy_from_slice(&(n as u16).to_ne_bytes());
            buf[type_at] = (x % 15) as u8;
            buf[type_at + 1] = 0;
        }
        let _ = decode(&buf[..n]);
    }
}
