//! Real MQTT and syslog peers for the network-output tests: certificates
//! made with openssl in a temporary directory (removed on drop), Debian's
//! mosquitto with TLS and `require_certificate true`, a mosquitto_sub
//! subscriber writing what it receives to a file, and rsyslog with its
//! GnuTLS driver. Every process is owned by a guard that kills it on drop.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::{tmp, wait_until, written_lines, Guard};

/// A directory removed (with what is in it) when dropped.
pub struct TempDir(pub String);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let d = tmp(name);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    pub fn path(&self, f: &str) -> String {
        format!("{}/{f}", self.0)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl(dir: &str, args: &[&str]) {
    let st = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed");
    assert!(st.success(), "openssl {args:?}");
}

/// A P-256 key and a certificate for it signed by `ca` (None: the CA itself).
pub fn make_cert(dir: &str, name: &str, ca: Option<&str>, ext: &str, days: &str) {
    let key = format!("{name}.key");
    let pem = format!("{name}.pem");
    // Names differ per directory: two test CAs are never the same issuer.
    let base = dir.rsplit('/').next().unwrap_or(dir);
    let subj = format!("/CN={name}-{base}");
    match ca {
        None => openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &pem,
                "-days",
                days,
                "-subj",
                &subj,
            ],
        ),
        Some(ca) => {
            let csr = format!("{name}.csr");
            let extf = format!("{name}.ext");
            std::fs::write(format!("{dir}/{extf}"), ext).unwrap();
            openssl(
                dir,
                &[
                    "req",
                    "-new",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    &key,
                    "-out",
                    &csr,
                    "-subj",
                    &subj,
                ],
            );
            let (cakey, capem) = (format!("{ca}.key"), format!("{ca}.pem"));
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    &capem,
                    "-CAkey",
                    &cakey,
                    "-CAcreateserial",
                    "-out",
                    &pem,
                    "-days",
                    days,
                    "-extfile",
                    &extf,
                ],
            );
        }
    }
}

pub const SERVER_EXT: &str = "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
pub const CLIENT_EXT: &str = "extendedKeyUsage=clientAuth\n";

/// ca, server (localhost / 127.0.0.1) and client certificates in `dir`.
pub fn pki(dir: &str) {
    make_cert(dir, "ca", None, "", "2");
    make_cert(dir, "server", Some("ca"), SERVER_EXT, "2");
    make_cert(dir, "client", Some("ca"), CLIENT_EXT, "2");
}

/// A loopback TCP port nobody listens on right now.
pub fn free_tcp_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// mosquitto with TLS, client certificates required, persistence in `dir`.
pub struct Mosquitto {
    child: Option<Guard>,
    conf: String,
    pub port: u16,
}

impl Mosquitto {
    pub fn start(dir: &str, port: u16) -> Mosquitto {
        Self::start_with(dir, port, "")
    }

    /// With `extra` lines in its listener's configuration.
    pub fn start_with(dir: &str, port: u16, extra: &str) -> Mosquitto {
        let conf = format!("{dir}/mosquitto-{port}.conf");
        std::fs::write(
            &conf,
            format!(
                "user root\nallow_anonymous true\npersistence true\npersistence_location {dir}/\n\
                 listener {port} 127.0.0.1\ncafile {dir}/ca.pem\ncertfile {dir}/server.pem\n\
                 keyfile {dir}/server.key\nrequire_certificate true\n{extra}log_dest file {dir}/broker.log\n"
            ),
        )
        .unwrap();
        let mut m = Mosquitto {
            child: None,
            conf,
            port,
        };
        m.restart();
        m
    }

    pub fn restart(&mut self) {
        let c = Command::new("mosquitto")
            .args(["-c", &self.conf])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed (scripts/test.sh installs it)");
        self.child = Some(Guard(c));
        let port = self.port;
        let up = wait_until(Duration::from_secs(10), || listening(port));
        assert!(up.is_some(), "mosquitto did not listen on {port}");
    }

    /// SIGTERM (it saves its persistence file) and wait.
    pub fn stop(&mut self) {
        if let Some(g) = self.child.take() {
            g.term();
        }
    }
}

/// mosquitto_sub on `topic` (QoS 1, persistent session, a unique id), one
/// received payload per line in `out`.
pub struct Subscriber {
    _child: Guard,
    pub out: String,
}

impl Subscriber {
    pub fn start(dir: &str, port: u16, topic: &str, id: &str) -> Subscriber {
        let out = format!("{dir}/{id}.out");
        let f = std::fs::File::create(&out).unwrap();
        let c = Command::new("mosquitto_sub")
            .args([
                "-h",
                "localhost",
                "-p",
                &port.to_string(),
                "-q",
                "1",
                "-c",
                "-i",
                id,
            ])
            .args(["--cafile", &format!("{dir}/ca.pem")])
            .args([
                "--cert",
                &format!("{dir}/client.pem"),
                "--key",
                &format!("{dir}/client.key"),
            ])
            .args(["-t", topic, "-v"])
            .stdout(f)
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub is installed (mosquitto-clients)");
        let g = Guard(c);
        // Subscribed once the broker lists it: wait for its first line
        // (the retained status), published by whoever connects first.
        Subscriber { _child: g, out }
    }

    /// (topic, payload) per received message.
    pub fn messages(&self) -> Vec<(String, String)> {
        written_lines(&self.out)
            .into_iter()
            .filter_map(|l| {
                l.split_once(' ')
                    .map(|(t, p)| (t.to_string(), p.to_string()))
            })
            .collect()
    }

    /// The evt.time of every metrics message, first copies only (QoS 1 may
    /// deliver one twice after a reconnect), in arrival order.
    pub fn snapshot_times(&self) -> Vec<u64> {
        let mut seen = Vec::new();
        for (t, p) in self.messages() {
            if !t.ends_with("/metrics") {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&p).expect("a metrics payload is JSON");
            // A drop alert (the host was busy) shares the topic: snapshots only.
            if v["rule"] != super::agent::SNAPSHOT_RULE {
                continue;
            }
            let ts = v["output_fields"]["evt.time"].as_u64().unwrap();
            if !seen.contains(&ts) {
                seen.push(ts);
            }
        }
        seen
    }
}

/// rsyslogd receiving syslog over TLS (gtls, client certificates verified
/// against ca.pem: x509/certvalid) or plain TCP, one message per line in `out`.
pub struct RsyslogTls {
    _child: Guard,
    pub out: String,
}

impl RsyslogTls {
    pub fn start(dir: &str, port: u16, tls: bool) -> RsyslogTls {
        let out = format!("{dir}/received");
        let conf = format!("{dir}/rsyslog.conf");
        let (global, module) = if tls {
            (
                format!(
                    "DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=\"{dir}/ca.pem\" \
                     DefaultNetstreamDriverCertFile=\"{dir}/server.pem\" DefaultNetstreamDriverKeyFile=\"{dir}/server.key\""
                ),
                "module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"x509/certvalid\")",
            )
        } else {
            (String::new(), "module(load=\"imtcp\")")
        };
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{dir}\" maxMessageSize=\"64k\" {global})\n{module}\n\
                 template(name=\"fields\" type=\"string\" string=\"%APP-NAME%|%HOSTNAME%|%msgid%|%msg%\\n\")\n\
                 ruleset(name=\"kestrel\") {{ action(type=\"omfile\" file=\"{out}\" template=\"fields\") }}\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"kestrel\")\n"
            ),
        )
        .unwrap();
        let c = Command::new("/usr/sbin/rsyslogd")
            .args(["-n", "-f", &conf, "-i", &format!("{dir}/rsyslog.pid")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd is installed");
        let g = Guard(c);
        let up = wait_until(Duration::from_secs(10), || listening(port));
        assert!(up.is_some(), "rsyslogd did not listen on {port}");
        RsyslogTls { _child: g, out }
    }
}

/// The peak resident set (VmHWM) of a running process, kB.
pub fn vm_hwm_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}
