//! Pure checks of what an application hands to `start_response`.
#![forbid(unsafe_code)]

/// Parses `"200 OK"` as mod_wsgi validates a status line: three digits,
/// a space, then a reason phrase (possibly empty) without control
/// characters. Returns the code; the errors are mod_wsgi's.
pub fn status_code(status: &str) -> Result<u16, String> {
    let b = status.as_bytes();
    if b.len() < 3
        || !b[..3].iter().all(u8::is_ascii_digit)
        || b.get(3).is_some_and(u8::is_ascii_digit)
    {
        return Err("status code is not a 3 digit integer".to_string());
    }
    if b.get(3) != Some(&b' ') {
        return Err("no space following status code".to_string());
    }
    if status.chars().any(char::is_control) {
        return Err("control character present in reason phrase".to_string());
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
        assert_eq!(status_code("599 Whatever else"), Ok(599));
        // An empty reason phrase is allowed, a missing space is not.
        assert_eq!(status_code("204 "), Ok(204));
        assert_eq!(
            status_code("404"),
            Err("no space following status code".to_string())
        );
        assert_eq!(
            status_code("200OK"),
            Err("no space following status code".to_string())
        );
        let not3 = Err("status code is not a 3 digit integer".to_string());
        assert_eq!(status_code("20 OK"), not3);
        assert_eq!(status_code("2000 OK"), not3);
        assert_eq!(status_code("abc OK"), not3);
        assert_eq!(status_code(""), not3);
        assert_eq!(
            status_code("200 OK\r\nX: y"),
            Err("control character present in reason phrase".to_string())
        );
        assert!(status_code("200 O\tK").is_err());
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
