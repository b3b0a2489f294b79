//! `--output` values: what each kind of output is given.

use std::path::PathBuf;

use super::{mqtt, syslog, syslog_stream};

/// Where `--output` sends snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputSpec {
    Stdout,
    File(PathBuf),
    Syslog(syslog::SyslogSpec),
    /// syslog+tcp:// and syslog+tls://.
    SyslogStream(syslog_stream::StreamSpec),
    /// mqtt:// and mqtts://.
    Mqtt(mqtt::MqttSpec),
    /// Written by `prometheus::Prometheus`, not by `Outputs`.
    PrometheusTextfile(PathBuf),
}

impl OutputSpec {
    pub fn parse(s: &str) -> Result<OutputSpec, String> {
        if s == "stdout" || s == "-" {
            return Ok(OutputSpec::Stdout);
        }
        if let Some(p) = s.strip_prefix("file:") {
            if p.is_empty() {
                return Err("file: output needs a path".into());
            }
            return Ok(OutputSpec::File(PathBuf::from(p)));
        }
        if let Some(p) = s.strip_prefix("prometheus-textfile:") {
            if p.is_empty() {
                return Err("prometheus-textfile: output needs a path".into());
            }
            return Ok(OutputSpec::PrometheusTextfile(PathBuf::from(p)));
        }
        if let Some(rest) = s.strip_prefix("syslog://") {
            return syslog::SyslogSpec::parse(rest).map(OutputSpec::Syslog);
        }
        for (scheme, tls) in [("syslog+tcp://", false), ("syslog+tls://", true)] {
            if let Some(rest) = s.strip_prefix(scheme) {
                return syslog_stream::StreamSpec::parse(rest, tls).map(OutputSpec::SyslogStream);
            }
        }
        for (scheme, tls) in [("mqtt://", false), ("mqtts://", true)] {
            if let Some(rest) = s.strip_prefix(scheme) {
                return mqtt::MqttSpec::parse(rest, tls).map(OutputSpec::Mqtt);
            }
        }
        Err(format!(
            "unknown output '{s}' (expected stdout, file:PATH, syslog://HOST:PORT, syslog+tcp://HOST:PORT, \
             syslog+tls://HOST:PORT, mqtt://HOST:PORT/PREFIX, mqtts://HOST:PORT/PREFIX or prometheus-textfile:PATH)"
        ))
    }
}
