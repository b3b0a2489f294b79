//! `mqtt://HOST:PORT/PREFIX?...` and `mqtts://...`: what the URL says.
//! Files (CA, certificate, key, password) are read when the output opens.

use std::path::PathBuf;

use crate::output::tls::TlsOptions;
use crate::output::url;

/// Default spool bound (spool_max=).
pub const SPOOL_MAX: u64 = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttSpec {
    pub host: String,
    pub port: u16,
    pub tls: Option<TlsOptions>,
    pub prefix: String,
    pub qos: u8,
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub keepalive_s: u16,
    pub spool: Option<PathBuf>,
    pub spool_max: u64,
    /// As given, for logs and counters (no query: it may name secrets).
    pub shown: String,
}

impl MqttSpec {
    /// `rest` follows `mqtt://` (tls false) or `mqtts://` (tls true).
    pub fn parse(rest: &str, tls: bool) -> Result<MqttSpec, String> {
        let scheme = if tls { "mqtts" } else { "mqtt" };
        let u = url::parse(scheme, rest, Some(if tls { 8883 } else { 1883 }))?;
        let prefix = u.path.trim_end_matches('/');
        if prefix.is_empty() || prefix.contains(['+', '#', '\0']) {
            return Err(format!(
                "{scheme}:// output needs a topic prefix without + or # (e.g. {scheme}://HOST:PORT/fleet)"
            ));
        }
        let mut s = MqttSpec {
            host: u.host.to_string(),
            port: u.port,
            tls: None,
            prefix: prefix.to_string(),
            qos: 1,
            client_id: None,
            username: None,
            password_file: None,
            keepalive_s: 30,
            spool: None,
            spool_max: SPOOL_MAX,
            shown: format!("{scheme}://{}:{}/{prefix}", u.host, u.port),
        };
        let mut t = TlsOptions::default();
        for (k, v) in u.query {
            if t.take(k, v).map_err(|e| format!("{scheme} option {e}"))? {
                continue;
            }
            match k {
                "qos" => {
                    s.qos = match v {
                        "0" => 0,
                        "1" => 1,
                        _ => return Err(format!("{scheme} qos '{v}' must be 0 or 1")),
                    }
                }
                "client_id"
                    if (1..=23).contains(&v.len())
                        && v.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
                {
                    s.client_id = Some(v.to_string())
                }
                "client_id" => {
                    return Err(format!(
                        "{scheme} client_id '{v}' must be 1 to 23 letters, digits, - or _"
                    ))
                }
                "username" if !v.is_empty() => s.username = Some(v.to_string()),
                "password_file" if !v.is_empty() => s.password_file = Some(v.into()),
                "keepalive" => {
                    s.keepalive_s = v
                        .parse()
                        .ok()
                        .filter(|k| (5..=3600).contains(k))
                        .ok_or_else(|| {
                            format!("{scheme} keepalive '{v}' must be 5 to 3600 seconds")
                        })?
                }
                "spool" if !v.is_empty() => s.spool = Some(v.into()),
                "spool_max" => {
                    s.spool_max = crate::cli::values::parse_size(v)
                        .ok()
                        .map(u64::from)
                        .filter(|n| *n >= 16 * 1024)
                        .ok_or_else(|| {
                            format!("{scheme} spool_max '{v}' must be a size of at least 16K")
                        })?
                }
                _ => return Err(format!("unknown or empty {scheme} option '{k}'")),
            }
        }
        if tls {
            s.tls = Some(t);
        } else if t.is_set() {
            return Err("ca=, cert=, key= and insecure= need mqtts://".into());
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options_and_refuses_bad_ones() {
        let s = MqttSpec::parse(
            "b:8884/fleet/gw?ca=/c&cert=/x&key=/k&qos=0&client_id=gw-1&keepalive=10&spool=/var/spool/k&spool_max=64K",
            true,
        )
        .unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.prefix.as_str()),
            ("b", 8884, "fleet/gw")
        );
        assert_eq!((s.qos, s.keepalive_s, s.spool_max), (0, 10, 65536));
        assert_eq!(s.tls.unwrap().ca, Some("/c".into()));
        assert_eq!(MqttSpec::parse("b/p", false).unwrap().port, 1883);
        for bad in [
            "b:1/",
            "b:1/p?qos=2",
            "b:1/p?x=1",
            "b:1/a/#",
            "b:1/p?keepalive=1",
            "b:1/p?ca=/x",
            "b:1/p?spool_max=1K",
        ] {
            assert!(MqttSpec::parse(bad, false).is_err(), "{bad}");
        }
    }
}
