//! A strict parser for the one request the exporter answers: `GET /metrics`
//! (or HEAD) over HTTP/1.0 or 1.1. Pure and allocation-free so the loop can
//! call it on every read and a fuzz test can hammer it. Anything outside the
//! narrow grammar is refused with a status rather than guessed at: lenient
//! parsers are where request smuggling and slowloris tricks live.

/// Longest request line plus headers accepted; a scraper sends ~250 bytes.
pub const MAX_REQUEST: usize = 4096;
/// Most header lines accepted (Prometheus sends five).
pub const MAX_HEADERS: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    BadRequest,
    NotFound,
    MethodNotAllowed,
    TooLarge,
    Unauthorized,
    TooMany,
    Unavailable,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::TooLarge => 413,
            Status::Unauthorized => 401,
            Status::TooMany => 429,
            Status::Unavailable => 503,
        }
    }

    /// The whole response: the connection is closed after it.
    pub fn response(self) -> &'static [u8] {
        match self {
            Status::BadRequest => b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            Status::NotFound => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            Status::MethodNotAllowed => b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            Status::TooLarge => b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            Status::Unauthorized => b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"kestrel\", charset=\"UTF-8\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            // Credentials not checked now (the bcrypt budget is spent): try again.
            Status::TooMany => b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            Status::Unavailable => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// HEAD: headers only.
    pub head: bool,
    /// The client may send another request on this connection.
    pub keep_alive: bool,
    /// Bytes of the buffer this request used (the next one starts there).
    pub len: usize,
    /// Where the `Authorization` value sits in the buffer (start, end).
    pub auth: Option<(usize, usize)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Valid so far; wait for more bytes.
    Partial,
    Done(Request),
    Reject(Status),
}

/// RFC 9110 token characters (method and header names).
fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Field value bytes: visible ASCII, space, tab, obs-text.
fn vchar(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

/// Splits off one CRLF-terminated line; `None` when no full line is there.
/// A bare LF or CR inside the line is an error (`Some(Err)`).
fn line(buf: &[u8]) -> Option<Result<(&[u8], usize), ()>> {
    let nl = buf.iter().position(|&b| b == b'\n')?;
    if nl == 0 || buf[nl - 1] != b'\r' || buf[..nl - 1].contains(&b'\r') {
        return Some(Err(()));
    }
    Some(Ok((&buf[..nl - 1], nl + 1)))
}

fn request_line(l: &[u8]) -> Result<(bool, bool), Status> {
    let mut parts = l.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Status::BadRequest);
    };
    if method.is_empty() || !method.iter().all(|&b| tchar(b)) {
        return Err(Status::BadRequest);
    }
    if target.first() != Some(&b'/') || !target.iter().all(|&b| b > b' ' && b < 0x7f) {
        return Err(Status::BadRequest);
    }
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        _ => return Err(Status::BadRequest),
    };
    let head = match method {
        b"GET" => false,
        b"HEAD" => true,
        _ => return Err(Status::MethodNotAllowed),
    };
    let path = target.split(|&b| b == b'?').next().unwrap_or(target);
    if path != b"/metrics" {
        return Err(Status::NotFound);
    }
    Ok((head, http11))
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Parses the start of `buf`. Errors are reported as soon as the bytes seen
/// prove them, so garbage is refused without waiting for a blank line.
pub fn parse(buf: &[u8]) -> Parsed {
    let window = &buf[..buf.len().min(MAX_REQUEST)];
    let (first, mut pos) = match line(window) {
        None if window.len() >= MAX_REQUEST => return Parsed::Reject(Status::TooLarge),
        None => {
            // Even an unfinished request line must look like one.
            let ok = window
                .iter()
                .all(|&b| b == b'\r' || (b' '..=b'~').contains(&b));
            return if ok {
                Parsed::Partial
            } else {
                Parsed::Reject(Status::BadRequest)
            };
        }
        Some(Err(())) => return Parsed::Reject(Status::BadRequest),
        Some(Ok((l, n))) => (l, n),
    };
    let (head, http11) = match request_line(first) {
        Ok(v) => v,
        Err(s) => return Parsed::Reject(s),
    };
    let (mut headers, mut host, mut close) = (0usize, 0usize, false);
    let mut auth = None;
    loop {
        let (l, n) = match line(&window[pos..]) {
            None if window.len() >= MAX_REQUEST => return Parsed::Reject(Status::TooLarge),
            None => {
                let rest = &window[pos..];
                return if rest.iter().all(|&b| b == b'\r' || vchar(b)) {
                    Parsed::Partial
                } else {
                    Parsed::Reject(Status::BadRequest)
                };
            }
            Some(Err(())) => return Parsed::Reject(Status::BadRequest),
            Some(Ok(v)) => v,
        };
        pos += n;
        if l.is_empty() {
            break;
        }
        headers += 1;
        if headers > MAX_HEADERS {
            return Parsed::Reject(Status::TooLarge);
        }
        let Some(colon) = l.iter().position(|&b| b == b':') else {
            return Parsed::Reject(Status::BadRequest);
        };
        let (name, value) = (&l[..colon], &l[colon + 1..]);
        // An empty or space-containing name also rules out obs-fold lines.
        if name.is_empty() || !name.iter().all(|&b| tchar(b)) || !value.iter().all(|&b| vchar(b)) {
            return Parsed::Reject(Status::BadRequest);
        }
        let trimmed = value.trim_ascii();
        if name.eq_ignore_ascii_case(b"authorization") {
            // Two credentials: which one counts is ambiguous, so neither does.
            if auth.is_some() {
                return Parsed::Reject(Status::BadRequest);
            }
            let start = pos - n + colon + 1 + (value.len() - value.trim_ascii_start().len());
            auth = Some((start, start + trimmed.len()));
        }
        let value = trimmed;
        if name.eq_ignore_ascii_case(b"host") {
            host += 1;
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= has_token(value, b"close");
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // GET and HEAD carry no body here; one we cannot skip safely is refused.
            if value != b"0" {
                return Parsed::Reject(Status::TooLarge);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Parsed::Reject(Status::BadRequest);
        }
    }
    // RFC 9112 §3.2: a 1.1 request without exactly one Host is a 400.
    if (http11 && host != 1) || host > 1 {
        return Parsed::Reject(Status::BadRequest);
    }
    Parsed::Done(Request {
        head,
        // HTTP/1.0 keep-alive would need a header in the shared response: close instead.
        keep_alive: http11 && !close,
        len: pos,
        auth,
    })
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
