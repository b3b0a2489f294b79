//! The output set as a reload changes it (agent::reload): an output whose
//! spec is unchanged stays as it is (its queue, connection or MQTT session
//! untouched), new ones are opened, removed ones stop taking lines and get
//! LEAVE_NS on the drain tick to deliver what they hold, then close; what
//! they could not deliver counts as dropped, as at exit. Their counters
//! stay in the totals, so the snapshot's counters never go back. Falco has
//! no such thing: a changed falco.yaml restarts it (app actions'
//! restart handler), outputs and all.

use super::{
    file, mqtt, syslog, syslog_stream, OpenError, OpenOptions, Output, OutputSpec, Outputs, Sink,
};

/// How long a removed output may take to deliver its queue.
pub const LEAVE_NS: u64 = 2_000_000_000;

/// The network schemes with a drop counter of their own (Outputs::net_drops).
const NET_SCHEMES: [&str; 2] = ["mqtt", "syslog+"];

/// What removed outputs counted.
#[derive(Debug, Default)]
pub struct Retired {
    pub queue_drops: u64,
    pub write_errors: u64,
    net: [u64; NET_SCHEMES.len()],
}

impl Retired {
    pub fn net_drops(&self, scheme: &str) -> u64 {
        NET_SCHEMES
            .iter()
            .zip(self.net)
            .filter(|(s, _)| **s == scheme)
            .map(|(_, n)| n)
            .sum()
    }

    fn add(&mut self, o: &Output) {
        self.queue_drops += o.queue_drops;
        self.write_errors += o.write_errors;
        for (s, n) in NET_SCHEMES.iter().zip(self.net.iter_mut()) {
            if o.sink.name().starts_with(s) {
                *n += o.net_drops;
            }
        }
    }
}

/// One `--output` opened; None for what `Outputs` does not write
/// (prometheus-textfile).
pub fn open_one(
    s: &OutputSpec,
    hostname: &str,
    opts: OpenOptions,
) -> Result<Option<Output>, OpenError> {
    let sink: Box<dyn Sink> = match s {
        OutputSpec::Stdout => Box::new(file::StreamSink::stdout()),
        OutputSpec::File(p) => file::StreamSink::file(p, opts.allow_special)
            .map(Box::new)
            .map_err(|e| OpenError {
                msg: e.msg,
                bad_input: e.bad_input,
            })?,
        OutputSpec::Syslog(spec) => syslog::SyslogSink::open(spec, hostname)
            .map(Box::new)
            .map_err(|e| OpenError {
                msg: e.0,
                bad_input: false,
            })?,
        OutputSpec::SyslogStream(spec) => syslog_stream::StreamSink::open(spec, hostname)
            .map(Box::new)
            .map_err(|(msg, bad_input)| OpenError { msg, bad_input })?,
        OutputSpec::Mqtt(spec) => mqtt::MqttSink::open(spec, hostname)
            .map(Box::new)
            .map_err(|(msg, bad_input)| OpenError { msg, bad_input })?,
        OutputSpec::PrometheusTextfile(_) => return Ok(None),
    };
    let mut o = Output::new(sink);
    o.spec = Some(s.clone());
    Ok(Some(o))
}

/// What a reload did to the outputs, for its log line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changed {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl Outputs {
    /// Every output still counted: the running ones and those leaving.
    pub(super) fn all(&self) -> impl Iterator<Item = &Output> {
        self.list.iter().chain(self.leaving.iter().map(|(o, _)| o))
    }

    /// Makes the set `specs`. Every new output is opened first; one that
    /// fails leaves the running set as it was and its error names it.
    /// Outputs the agent added itself (no spec) stay.
    pub fn reconcile(
        &mut self,
        specs: &[OutputSpec],
        hostname: &str,
        opts: OpenOptions,
    ) -> Result<Changed, String> {
        // Which running output each spec keeps (each used once).
        let mut used = vec![false; self.list.len()];
        let mut keep: Vec<Option<usize>> = Vec::with_capacity(specs.len());
        for s in specs {
            let i =
                (0..self.list.len()).find(|&i| !used[i] && self.list[i].spec.as_ref() == Some(s));
            if let Some(i) = i {
                used[i] = true;
            }
            keep.push(i);
        }
        let mut opened: Vec<Option<Output>> = Vec::with_capacity(specs.len());
        for (s, k) in specs.iter().zip(&keep) {
            if k.is_some() {
                opened.push(None);
                continue;
            }
            match open_one(s, hostname, opts) {
                Ok(o) => opened.push(o),
                Err(e) => {
                    // The running set stays; what was made for it goes.
                    for o in opened.iter_mut().flatten() {
                        o.sink.remove_if_created();
                    }
                    return Err(e.msg);
                }
            }
        }
        let mut old: Vec<Option<Output>> = self.list.drain(..).map(Some).collect();
        let mut changed = Changed::default();
        for (k, o) in keep.into_iter().zip(opened) {
            match (k, o) {
                (Some(i), _) => self.list.extend(old[i].take()),
                (None, Some(o)) => {
                    changed.added.push(o.name().to_string());
                    self.list.push(o);
                }
                (None, None) => {}
            }
        }
        let now = crate::base::time::monotonic_ns();
        for o in old.into_iter().flatten() {
            if o.spec.is_none() {
                self.list.push(o);
                continue;
            }
            changed.removed.push(o.name().to_string());
            self.leaving.push((o, now + LEAVE_NS));
        }
        self.flush_leaving();
        Ok(changed)
    }

    /// Removed outputs: deliver, then close once empty or out of time.
    pub(super) fn flush_leaving(&mut self) {
        let now = crate::base::time::monotonic_ns();
        let mut i = 0;
        while i < self.leaving.len() {
            let (o, deadline) = &mut self.leaving[i];
            if !o.flush() && now < *deadline {
                i += 1;
                continue;
            }
            let (mut o, _) = self.leaving.swap_remove(i);
            while o.queue.pop() {
                o.queue_drops += 1;
            }
            o.sink.shutdown();
            o.count_net_drops();
            o.log_summary();
            self.retired.add(&o);
        }
    }

    /// Outputs still delivering after a reload removed them.
    pub fn leaving(&self) -> usize {
        self.leaving.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::scratch;

    fn file(name: &str) -> (OutputSpec, std::path::PathBuf) {
        let p = scratch(name);
        let _ = std::fs::remove_file(&p);
        (OutputSpec::File(p.clone()), p)
    }

    #[test]
    fn reconcile_keeps_opens_removes_and_counts() {
        let opts = OpenOptions::default();
        let (a, pa) = file("set-a.json");
        let (b, pb) = file("set-b.json");
        let mut o = Outputs::open(std::slice::from_ref(&a), "h", opts).unwrap();
        o.write(b"1\n", "t");
        o.list[0].queue_drops = 2;
        let c = o.reconcile(&[b.clone(), a.clone()], "h", opts).unwrap();
        assert_eq!((c.added.len(), c.removed.len()), (1, 0));
        // Kept, not reopened: its counter is still there.
        assert_eq!(o.list[1].queue_drops, 2);
        o.write(b"2\n", "t");
        let c = o.reconcile(std::slice::from_ref(&b), "h", opts).unwrap();
        assert_eq!(c.removed.len(), 1);
        assert_eq!(o.leaving(), 0, "a file delivers at once and closes");
        o.write(b"3\n", "t");
        assert_eq!(std::fs::read_to_string(&pa).unwrap(), "1\n2\n");
        assert_eq!(std::fs::read_to_string(&pb).unwrap(), "2\n3\n");
        assert_eq!(o.queue_drops(), 2, "a removed output's drops stay counted");
        // A new output that cannot open: the running set stays, nothing made.
        let (c2, pc) = file("set-c.json");
        let bad = OutputSpec::File(scratch("no-such-dir/x.json"));
        let e = o.reconcile(&[c2, bad], "h", opts).unwrap_err();
        assert!(e.contains("no-such-dir"), "{e}");
        assert!(!pc.exists(), "the new file was removed again");
        assert_eq!(o.outputs().len(), 1);
        assert_eq!(o.outputs()[0].spec.as_ref(), Some(&b));
    }
}
