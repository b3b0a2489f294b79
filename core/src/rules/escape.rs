//! Quoted strings in conditions, unescaped as libsinsp's
//! filter/escaping.cpp `unescape_str`: `\b \f \n \r \t \\ \/`, the quote
//! that delimits the string, and nothing else.

pub fn unescape(raw: &[u8], quote: u8) -> Result<String, String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let Some(&e) = raw.get(i + 1) else {
            return Err("a quoted string ends in a backslash".into());
        };
        let c = match e {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'\\' => b'\\',
            b'/' => b'/',
            // escaping.cpp keeps a backslash before a blank.
            b' ' => {
                out.extend_from_slice(b"\\ ");
                i += 2;
                continue;
            }
            q if q == quote => q,
            _ => return Err(format!("invalid escape '\\{}'", e as char)),
        };
        out.push(c);
        i += 2;
    }
    String::from_utf8(out).map_err(|_| "a quoted string is not valid UTF-8".into())
}
