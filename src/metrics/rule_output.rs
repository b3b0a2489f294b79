//! Falco's rule-output JSON line (falco_outputs::handle_msg), the envelope
//! both metrics snapshots and drop alerts are written in: keys in
//! nlohmann's sorted order, the output fields as the caller serialises them.

/// One rule-output line. Field order is the key order Falco prints.
#[derive(serde::Serialize)]
pub struct RuleOutput<'a, F> {
    pub hostname: &'a str,
    pub output: &'a str,
    pub output_fields: &'a F,
    pub priority: &'a str,
    pub rule: &'a str,
    pub source: &'a str,
    pub time: &'a str,
}

impl<F: serde::Serialize> RuleOutput<'_, F> {
    /// Writes the JSON and a newline into `buf`, returning the length; a
    /// line that does not fit leaves only the newline.
    pub fn write_line(&self, buf: &mut [u8]) -> usize {
        // Leave room for the newline every sink but syslog wants.
        let end = buf.len() - 1;
        let n = serde_json_core::to_slice(self, &mut buf[..end]).unwrap_or(0);
        buf[n] = b'\n';
        n + 1
    }
}
