//! Output sinks for snapshot lines: stdout, an append-only file, and remote
//! syslog over UDP. A sink never stops the agent: a failed write is counted
//! and reported in the next snapshot.

pub mod prometheus;
pub mod syslog;

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Where `--output` sends snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputSpec {
    Stdout,
    File(PathBuf),
    Syslog(syslog::SyslogSpec),
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
        Err(format!(
            "unknown output '{s}' (expected stdout, file:PATH, syslog://HOST:PORT or prometheus-textfile:PATH)"
        ))
    }
}

#[derive(Debug)]
pub struct OutputError(pub String);

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Opens for append, mode 0640 when created, refusing a symlink at the last
/// component (O_NOFOLLOW) so a planted link cannot redirect root's writes.
fn open_append(path: &PathBuf) -> Result<File, OutputError> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                OutputError(format!(
                    "output file {} is a symlink: refusing to follow it",
                    path.display()
                ))
            } else {
                OutputError(format!("cannot open output file {}: {e}", path.display()))
            }
        })
}

pub enum Sink {
    Stdout,
    File { path: PathBuf, file: Option<File> },
    Syslog(syslog::SyslogSink),
}

/// All sinks, with the counters the snapshot reports.
pub struct Outputs {
    sinks: Vec<Sink>,
    /// Snapshots a sink could not take (full disk, unsendable datagram ...).
    pub write_errors: u64,
    /// Datagrams that could not be sent (Falco's outputs_queue_num_drops).
    pub queue_drops: u64,
    last_error: Option<String>,
}

impl Outputs {
    pub fn open(specs: &[OutputSpec], hostname: &str) -> Result<Outputs, OutputError> {
        let mut sinks = Vec::new();
        for s in specs {
            sinks.push(match s {
                OutputSpec::Stdout => Sink::Stdout,
                OutputSpec::File(p) => Sink::File {
                    path: p.clone(),
                    file: Some(open_append(p)?),
                },
                OutputSpec::Syslog(spec) => Sink::Syslog(syslog::SyslogSink::open(spec, hostname)?),
                OutputSpec::PrometheusTextfile(_) => continue,
            });
        }
        Ok(Outputs {
            sinks,
            write_errors: 0,
            queue_drops: 0,
            last_error: None,
        })
    }

    /// Writes one newline-terminated snapshot line to every sink.
    pub fn write(&mut self, line: &[u8], time: &str) {
        for i in 0..self.sinks.len() {
            let r = match &mut self.sinks[i] {
                Sink::Stdout => {
                    let mut out = io::stdout().lock();
                    out.write_all(line).and_then(|_| out.flush())
                }
                // One write per line, so a concurrent reader never sees half of one.
                Sink::File { file: Some(f), .. } => f.write_all(line),
                Sink::File { file: None, path } => {
                    Err(io::Error::other(format!("{} is not open", path.display())))
                }
                Sink::Syslog(s) => match s.send(line.strip_suffix(b"\n").unwrap_or(line), time) {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        self.queue_drops += 1;
                        Err(e)
                    }
                },
            };
            if let Err(e) = r {
                self.write_errors += 1;
                let msg = e.to_string();
                if self.last_error.as_deref() != Some(msg.as_str()) {
                    eprintln!("kestrel: output error: {msg}");
                    self.last_error = Some(msg);
                }
            } else {
                self.last_error = None;
            }
        }
    }

    /// SIGHUP: reopen files (after logrotate or BusyBox rotation renamed them).
    pub fn reopen(&mut self) {
        for s in &mut self.sinks {
            if let Sink::File { path, file } = s {
                match open_append(path) {
                    Ok(f) => *file = Some(f),
                    Err(e) => {
                        self.write_errors += 1;
                        eprintln!("kestrel: {e}");
                        *file = None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(OutputSpec::parse("stdout").unwrap(), OutputSpec::Stdout);
        assert_eq!(
            OutputSpec::parse("file:/tmp/x").unwrap(),
            OutputSpec::File("/tmp/x".into())
        );
        assert!(OutputSpec::parse("file:").is_err());
        assert!(OutputSpec::parse("kafka://x").is_err());
    }

    #[test]
    fn file_sink_appends_lines_and_reopens_after_rename() {
        let dir = std::env::temp_dir().join(format!("kestrel-out-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.json");
        let mut o = Outputs::open(&[OutputSpec::File(p.clone())], "h").unwrap();
        o.write(b"{\"a\":1}\n", "");
        std::fs::rename(&p, dir.join("m.json.1")).unwrap();
        o.write(b"{\"a\":2}\n", "");
        o.reopen();
        o.write(b"{\"a\":3}\n", "");
        let old = std::fs::read_to_string(dir.join("m.json.1")).unwrap();
        let new = std::fs::read_to_string(&p).unwrap();
        assert_eq!(old, "{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(new, "{\"a\":3}\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(o.write_errors, 0);
    }

    #[test]
    fn symlink_at_output_path_is_refused() {
        let dir = std::env::temp_dir().join(format!("kestrel-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("m.json");
        std::os::unix::fs::symlink(dir.join("target"), &link).unwrap();
        let e = Outputs::open(&[OutputSpec::File(link)], "h").err().unwrap();
        assert!(e.0.contains("symlink"), "{e}");
        assert!(!dir.join("target").exists());
    }
}
