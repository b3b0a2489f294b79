//! `--prometheus-web-config FILE`: the web configuration file Prometheus
//! exporters share (prometheus/exporter-toolkit, docs/web-configuration.md),
//! so the file a node_exporter on the same gateway uses works unchanged.
//! Read with the rule files' YAML subset parser; as in exporter-toolkit an
//! unknown key is an error and relative paths are taken from the file's
//! directory. Errors are one line: file, line, problem.

use std::path::{Path, PathBuf};

use crate::rules::yaml::{self, Node};

/// A web config larger than this is not one.
const MAX_BYTES: u64 = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

/// rustls speaks 1.2 and 1.3; Go's TLS10/TLS11 as a minimum mean 1.2 here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Tls12,
    Tls13,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
    pub client_auth: ClientAuth,
    pub min_version: Version,
    pub max_version: Version,
    /// Go names; empty: all of Kestrel's.
    pub cipher_suites: Vec<String>,
    pub curves: Vec<String>,
    pub prefer_server_cipher_suites: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebConfig {
    /// None: plain HTTP (exporter-toolkit's rule when no TLS key is set).
    pub tls: Option<TlsSettings>,
    /// (user, bcrypt hash) in file order; empty: no authentication.
    pub users: Vec<(String, String)>,
    /// Settings read but without effect here, for the start line.
    pub notes: Vec<String>,
}

impl WebConfig {
    /// The start line's account of it.
    pub fn describe(&self) -> String {
        let mut parts = vec![match &self.tls {
            Some(t) => format!("TLS ({:?})", t.client_auth),
            None => "no TLS".to_string(),
        }];
        parts.push(match self.users.len() {
            0 => "no Basic auth".to_string(),
            n if self.tls.is_none() => {
                format!("Basic auth ({n} users, bcrypt) over plain HTTP: passwords travel in clear")
            }
            n => format!("Basic auth ({n} users, bcrypt)"),
        });
        parts.extend(self.notes.iter().cloned());
        parts.join(", ")
    }
}

/// Reads and checks `path`; Err is the one line to print.
pub fn load(path: &Path) -> Result<WebConfig, String> {
    let shown = path.display();
    let text = read_bounded(path).map_err(|e| format!("web config {shown}: {e}"))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse(&text, dir).map_err(|(line, msg)| match line {
        0 => format!("web config {shown}: {msg}"),
        n => format!("web config {shown}: line {n}: {msg}"),
    })
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let meta = f.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let mut buf = Vec::new();
    f.take(MAX_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > MAX_BYTES {
        return Err(format!("larger than {MAX_BYTES} bytes"));
    }
    Ok(buf)
}

type Fail = (u32, String);

fn fail<T>(n: &Node, msg: impl Into<String>) -> Result<T, Fail> {
    Err((n.line, msg.into()))
}

/// A scalar's text; null is None.
fn text<'a>(n: &'a Node, key: &str) -> Result<Option<&'a str>, Fail> {
    if n.is_null() {
        return Ok(None);
    }
    match n.as_str() {
        Some(s) => Ok(Some(s)),
        None => fail(n, format!("{key}: expected a string, found a {}", n.kind())),
    }
}

fn texts(n: &Node, key: &str) -> Result<Vec<String>, Fail> {
    if n.is_null() {
        return Ok(Vec::new());
    }
    let Some(items) = n.as_seq() else {
        return fail(n, format!("{key}: expected a list, found a {}", n.kind()));
    };
    items
        .iter()
        .map(|i| {
            text(i, key)?
                .map(str::to_string)
                .ok_or((i.line, format!("{key}: empty item")))
        })
        .collect()
}

/// The map at `n` (null: empty).
fn map<'a>(n: &'a Node, key: &str) -> Result<&'a [(String, Node)], Fail> {
    if n.is_null() {
        return Ok(&[]);
    }
    n.as_map().ok_or_else(|| {
        (
            n.line,
            format!("{key}: expected a map, found a {}", n.kind()),
        )
    })
}

pub fn parse(bytes: &[u8], dir: &Path) -> Result<WebConfig, Fail> {
    let docs = yaml::parse_bytes(bytes).map_err(|e| (e.line, e.msg))?;
    let mut wc = WebConfig::default();
    let root = match docs.as_slice() {
        [] => return Ok(wc),
        [one] => one,
        [_, second, ..] => return fail(second, "more than one YAML document"),
    };
    for (key, v) in map(root, "the file")? {
        match key.as_str() {
            "tls_server_config" => wc.tls = tls(v, dir)?,
            "basic_auth_users" => wc.users = users(v)?,
            "http_server_config" => http_server(v, &mut wc)?,
            "rate_limit" => wc
                .notes
                .push("rate_limit ignored (bcrypt checks have their own limit)".into()),
            k => return fail(v, format!("unknown key '{}'", k.escape_debug())),
        }
    }
    Ok(wc)
}

fn users(v: &Node) -> Result<Vec<(String, String)>, Fail> {
    let mut out = Vec::new();
    for (user, h) in map(v, "basic_auth_users")? {
        let Some(hash) = text(h, "basic_auth_users")? else {
            return fail(
                h,
                format!("user '{}' has no password hash", user.escape_debug()),
            );
        };
        // Checked now: a bad hash would otherwise lock the user out silently.
        match hash.parse::<bcrypt::HashParts>() {
            Ok(_) if user.contains(':') => {
                return fail(
                    h,
                    "a user name cannot contain ':' (Basic auth splits there)",
                )
            }
            Ok(_) => out.push((user.clone(), hash.to_string())),
            Err(e) => {
                return fail(
                    h,
                    format!("user '{}': not a bcrypt hash ({e})", user.escape_debug()),
                )
            }
        }
    }
    Ok(out)
}

fn http_server(v: &Node, wc: &mut WebConfig) -> Result<(), Fail> {
    for (key, n) in map(v, "http_server_config")? {
        match key.as_str() {
            // /metrics speaks HTTP/1.1 only; Prometheus falls back to it.
            "http2" => wc
                .notes
                .push("http_server_config.http2 ignored (HTTP/1.1 only)".into()),
            "headers" => return fail(n, "http_server_config.headers is not supported by Kestrel"),
            k => {
                return fail(
                    n,
                    format!("http_server_config: unknown key '{}'", k.escape_debug()),
                )
            }
        }
    }
    Ok(())
}

fn client_auth(n: &Node) -> Result<ClientAuth, Fail> {
    Ok(match text(n, "client_auth_type")?.unwrap_or("") {
        "" | "NoClientCert" => ClientAuth::NoClientCert,
        "RequestClientCert" => ClientAuth::RequestClientCert,
        "RequireAnyClientCert" => ClientAuth::RequireAnyClientCert,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
        other => {
            return fail(
                n,
                format!("invalid client_auth_type '{}'", other.escape_debug()),
            )
        }
    })
}

fn version(n: &Node, key: &str) -> Result<Option<Version>, Fail> {
    Ok(match text(n, key)? {
        None | Some("") => None,
        Some("TLS10" | "TLS11" | "TLS12") => Some(Version::Tls12),
        Some("TLS13") => Some(Version::Tls13),
        Some(o) => {
            return fail(
                n,
                format!("{key}: unknown TLS version '{}'", o.escape_debug()),
            )
        }
    })
}

fn tls(v: &Node, dir: &Path) -> Result<Option<TlsSettings>, Fail> {
    let path = |n: &Node, key: &str| -> Result<Option<PathBuf>, Fail> {
        Ok(text(n, key)?.filter(|s| !s.is_empty()).map(|s| dir.join(s)))
    };
    let (mut cert, mut key, mut ca) = (None, None, None);
    let mut auth = ClientAuth::NoClientCert;
    let mut auth_set = false;
    let (mut min, mut max) = (Version::Tls12, Version::Tls13);
    let mut s = TlsSettings {
        cert_file: PathBuf::new(),
        key_file: PathBuf::new(),
        client_ca_file: None,
        client_auth: auth,
        min_version: min,
        max_version: max,
        cipher_suites: Vec::new(),
        curves: Vec::new(),
        prefer_server_cipher_suites: true,
    };
    for (k, n) in map(v, "tls_server_config")? {
        match k.as_str() {
            "cert_file" => cert = path(n, k)?,
            "key_file" => key = path(n, k)?,
            "client_ca_file" => ca = path(n, k)?,
            "client_auth_type" => {
                auth = client_auth(n)?;
                auth_set = !n.is_null();
            }
            "min_version" => min = version(n, k)?.unwrap_or(min),
            "max_version" => max = version(n, k)?.unwrap_or(max),
            "cipher_suites" => s.cipher_suites = texts(n, k)?,
            "curve_preferences" => s.curves = texts(n, k)?,
            "prefer_server_cipher_suites" => {
                s.prefer_server_cipher_suites = match n.as_bool() {
                    Some(b) => b,
                    None => return fail(n, "prefer_server_cipher_suites: expected true or false"),
                }
            }
            "cert" | "key" | "client_ca" | "client_allowed_sans" => {
                return fail(
                    n,
                    format!(
                        "tls_server_config.{k} is not supported by Kestrel (use the _file form)"
                    ),
                )
            }
            other => {
                return fail(
                    n,
                    format!("tls_server_config: unknown key '{}'", other.escape_debug()),
                )
            }
        }
    }
    // exporter-toolkit serves plain HTTP when none of these is set.
    if cert.is_none() && key.is_none() && !auth_set && ca.is_none() {
        return Ok(None);
    }
    let (Some(cert), Some(key)) = (cert, key) else {
        let missing = if v.get("cert_file").is_none() {
            "cert_file"
        } else {
            "key_file"
        };
        return fail(v, format!("tls_server_config: missing {missing}"));
    };
    let verifying = matches!(
        auth,
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
    );
    if verifying && ca.is_none() {
        return fail(v, "tls_server_config: client_auth_type verifies certificates but client_ca_file is not set");
    }
    if auth == ClientAuth::NoClientCert && ca.is_some() {
        return fail(
            v,
            "tls_server_config: client_ca_file is set without a client_auth_type",
        );
    }
    s.cert_file = cert;
    s.key_file = key;
    s.client_ca_file = ca;
    s.client_auth = auth;
    s.min_version = min;
    s.max_version = max;
    Ok(Some(s))
}

#[cfg(test)]
#[path = "webconfig_tests.rs"]
mod tests;
