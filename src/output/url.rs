//! `HOST[:PORT][/PATH][?k=v&...]` as the network outputs take it (after the
//! scheme). IPv6 hosts go in brackets. Values are taken as written: no
//! percent-decoding (file paths and names rarely need it, and a decoder
//! would be one more thing to get wrong).

pub struct Url<'a> {
    pub host: &'a str,
    pub port: u16,
    pub path: &'a str,
    pub query: Vec<(&'a str, &'a str)>,
}

pub fn parse<'a>(what: &str, s: &'a str, default_port: Option<u16>) -> Result<Url<'a>, String> {
    let (rest, query) = s.split_once('?').unwrap_or((s, ""));
    let (addr, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = if let Some(r) = addr.strip_prefix('[') {
        let (h, p) = r
            .split_once(']')
            .ok_or_else(|| format!("{what} address '{addr}' has an unclosed ["))?;
        (h, p.strip_prefix(':'))
    } else {
        match addr.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (addr, None),
        }
    };
    let port = match (port, default_port) {
        (Some(p), _) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("{what} port '{p}' is not a port number"))?,
        (None, Some(d)) => d,
        (None, None) => return Err(format!("{what} address '{addr}' needs HOST:PORT")),
    };
    if host.is_empty() {
        return Err(format!("{what} address '{addr}' has no host"));
    }
    let mut q = Vec::new();
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("{what} option '{kv}' needs key=value"))?;
        q.push((k, v));
    }
    Ok(Url {
        host,
        port,
        path,
        query: q,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let u = parse("mqtt", "broker.lan:8883/fleet/a?qos=0&ca=/x", None).unwrap();
        assert_eq!((u.host, u.port, u.path), ("broker.lan", 8883, "fleet/a"));
        assert_eq!(u.query, vec![("qos", "0"), ("ca", "/x")]);
        let u = parse("mqtt", "[::1]/p", Some(1883)).unwrap();
        assert_eq!((u.host, u.port, u.path), ("::1", 1883, "p"));
        assert!(parse("mqtt", "h:0", None).is_err());
        assert!(parse("mqtt", ":5", None).is_err());
        assert!(parse("mqtt", "h:5?x", None).is_err());
        assert!(parse("syslog", "h", None).is_err());
    }
}
