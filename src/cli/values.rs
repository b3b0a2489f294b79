//! The values of `run`'s flags: durations, sizes, counts, rates and the
//! enumerations, each one line of error naming what is wrong.

use crate::rules::Priority;

pub(super) fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(format!("'{s}' is not true or false")),
    }
}

/// Parses `500ms`, `15s`, `15m`, `1h` (and combinations such as `1m30s`) to ns.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("bad duration '{s}' (use e.g. 500ms, 15s, 15m, 1h)");
    let mut total: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

pub(super) fn parse_interval(s: &str) -> Result<u64, String> {
    let ns = parse_duration(s)?;
    if ns < 100_000_000 {
        return Err(format!("interval '{s}' is below the 100ms minimum"));
    }
    Ok(ns)
}

pub(crate) fn parse_size(s: &str) -> Result<u32, String> {
    let (num, mult) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (
            &s[..i],
            match &s[i..] {
                "K" | "k" | "KiB" => 1024,
                "M" | "m" | "MiB" => 1 << 20,
                _ => return Err(format!("bad size '{s}' (bytes, or with K or M)")),
            },
        ),
        None => (s, 1),
    };
    num.parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("bad size '{s}'"))
}

pub(super) fn parse_ring_size(s: &str) -> Result<u32, String> {
    let n = parse_size(s)?;
    if !n.is_power_of_two() || !(4096..=1 << 30).contains(&n) {
        return Err(format!(
            "ring buffer size '{s}' must be a power of two from 4K to 1024M"
        ));
    }
    Ok(n)
}

/// A whole number from 1 to `max`; `what` names it in the error.
pub(super) fn parse_count_to(s: &str, max: usize, what: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| format!("'{s}' is not {what} between 1 and {max}"))
}

pub(super) fn parse_top(s: &str) -> Result<usize, String> {
    parse_count_to(s, crate::metrics::culprits::MAX_TOP, "a list length")
}

pub(super) fn parse_culprit_capacity(s: &str) -> Result<usize, String> {
    parse_count_to(s, 65536, "a culprit capacity")
}

/// 0 (no sampling) or a power of two up to 65536: the probe masks with it.
pub(super) fn parse_sample_period(s: &str) -> Result<u32, String> {
    s.parse::<u32>()
        .ok()
        .filter(|&n| n == 0 || (n.is_power_of_two() && n <= 65536))
        .ok_or_else(|| format!("'{s}' is not 0 or a power of two up to 65536"))
}

/// A BTF file named on the command line or in the config must exist now:
/// a typo is bad input, not a failed start.
pub(super) fn parse_btf_file(s: &str) -> Result<String, String> {
    match std::fs::metadata(s) {
        Ok(m) if m.is_file() => Ok(s.to_string()),
        Ok(_) => Err(format!("BTF file '{s}' is not a regular file")),
        Err(e) => Err(format!("BTF file '{s}': {e}")),
    }
}

pub(super) fn parse_count(s: &str) -> Result<usize, String> {
    parse_count_to(s, 1 << 24, "a table size")
}

pub(super) fn parse_f64(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("'{s}' is not a number"))
}

pub(super) fn parse_threshold(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("threshold '{s}' must be between 0 and 1"));
    }
    Ok(v)
}

pub(super) fn parse_positive(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if v <= 0.0 {
        return Err(format!("rate '{s}' must be above 0"));
    }
    Ok(v)
}

/// Falco reads it as a double; beyond u32 it is no longer a count of tokens.
pub(super) fn parse_burst(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if !(1.0..=f64::from(u32::MAX)).contains(&v) {
        return Err(format!("max_burst '{s}' must be from 1 to {}", u32::MAX));
    }
    Ok(v)
}

pub(super) fn parse_priority(s: &str) -> Result<Priority, String> {
    Priority::parse(s).ok_or_else(|| {
        format!("'{s}' is not a priority (emergency, alert, critical, error, warning, notice, informational, debug)")
    })
}

pub(super) fn parse_rate(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if v < 0.0 {
        return Err(format!("'{s}' is negative"));
    }
    Ok(v)
}

/// true: all matching rules alert.
pub(super) fn parse_rule_matching(s: &str) -> Result<bool, String> {
    match s {
        "first" => Ok(false),
        "all" => Ok(true),
        _ => Err(format!("'{s}' is not first or all")),
    }
}
