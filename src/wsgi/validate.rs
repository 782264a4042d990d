//! Pure checks of what an application hands to `start_response`.
#![forbid(unsafe_code)]

/// Parses `"200 OK"`: three digits, then a space (or nothing). Returns the code.
pub fn status_code(status: &str) -> Result<u16, String> {
    let b = status.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) || (b.len() > 3 && b[3] != b' ') {
        return Err(format!(
            "status line must start with a 3 digit status code followed by a space, got '{status}'"
        ));
    }
    if status.contains(['\r', '\n']) {
        return Err("embedded newline in response status line".to_string());
    }
    let code: u16 = status[..3]
        .parse()
        .map_err(|_| "invalid status code".to_string())?;
    if !(100..=999).contains(&code) {
        return Err(format!("status code {code} is out of range"));
    }
    Ok(code)
}

/// RFC 9110 token characters, the only ones allowed in a header name.
pub fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Checks one response header. Names must be tokens; neither part may hold
/// CR or LF (a header split into two is a response-splitting attack) or
/// anything outside latin-1.
pub fn header(name: &str, value: &str) -> Result<(), String> {
    if name.contains(['\r', '\n']) || value.contains(['\r', '\n']) {
        return Err(format!(
            "embedded newline in response header with name '{}' and value '{}'",
            name.escape_debug(),
            value.escape_debug()
        ));
    }
    if name.is_empty() || !name.bytes().all(is_token_char) {
        return Err(format!(
            "invalid character in response header name '{}'",
            name.escape_debug()
        ));
    }
    if value.chars().any(|c| (c as u32) > 0xff || c == '\0') {
        return Err(format!(
            "response header value for '{name}' holds a character outside latin-1 or a NUL"
        ));
    }
    Ok(())
}

/// A request header name mod_wsgi passes on: letters, digits and `-` only.
/// Others (`X_Forwarded_For`, names with dots) are dropped so that they
/// cannot spoof a CGI variable once `-` is mapped to `_`.
pub fn request_header_name_ok(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status_code("200 OK"), Ok(200));
        assert_eq!(status_code("404"), Ok(404));
        assert_eq!(status_code("599 Whatever else"), Ok(599));
        assert!(status_code("20 OK").is_err());
        assert!(status_code("200OK").is_err());
        assert!(status_code("abc OK").is_err());
        assert!(status_code("200 OK\r\nX: y").is_err());
        assert!(status_code("").is_err());
    }

    #[test]
    fn headers() {
        assert!(header("Content-Type", "text/plain").is_ok());
        assert!(header("X-Latin", "caf\u{e9}").is_ok());
        let e = header("X-Evil", "a\r\nSet-Cookie: x").unwrap_err();
        assert!(
            e.starts_with("embedded newline in response header with name 'X-Evil'"),
            "{e}"
        );
        assert!(header("X-Evil\n", "a").is_err());
        assert!(header("Bad Name", "a").is_err());
        assert!(header("", "a").is_err());
        assert!(header("X-Uni", "\u{263a}").is_err());
        assert!(header("X-Nul", "a\0b").is_err());
    }

    #[test]
    fn request_header_names() {
        assert!(request_header_name_ok(b"X-Forwarded-For"));
        assert!(request_header_name_ok(b"Accept"));
        assert!(!request_header_name_ok(b"X_Forwarded_For"));
        assert!(!request_header_name_ok(b"X.Dot"));
        assert!(!request_header_name_ok(b""));
    }
}
