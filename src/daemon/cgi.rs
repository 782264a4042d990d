//! How mod_wsgi's Apache child reads a daemon's response head: the way
//! mod_cgi reads a CGI script's, not the way embedded mode sets headers.
//!
//! mod_wsgi's daemon sends its head as text lines that the Apache child
//! scans like CGI output, so in daemon mode (and only there) an
//! application's headers come out changed: a `Status` header sets the
//! status, repeated headers are merged into one with ", " (except
//! `Set-Cookie` and `WWW-Authenticate`), leading white space of a value is
//! dropped, the media type of `Content-Type` is lower-cased and
//! `Last-Modified` is rewritten by httpd (not in the future, RFC 1123 form),
//! in a different order. Users porting from mod_wsgi see exactly what
//! they saw; this is that scan as a pure function over the head the
//! daemon sent (already validated by `start_response`).
#![forbid(unsafe_code)]

/// What the Apache child applies to the request.
#[derive(Debug, Default, PartialEq)]
pub struct CgiHead {
    pub status: u16,
    pub status_line: String,
    /// `r->headers_out`, in httpd's order, `Last-Modified` in its place
    /// with the application's text (the caller has httpd rewrite it).
    pub headers: Vec<(String, String)>,
    /// `r->err_headers_out`: `WWW-Authenticate`, kept apart.
    pub err_headers: Vec<(String, String)>,
    /// `Content-Type`, media type lower-cased, trailing white space cut.
    pub content_type: Option<String>,
}

/// `apr_isspace`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

/// `ap_content_type_tolower`: the part before ';' in lower case.
fn content_type_tolower(v: &str) -> String {
    match v.find(';') {
        Some(i) => format!("{}{}", v[..i].to_ascii_lowercase(), &v[i..]),
        None => v.to_ascii_lowercase(),
    }
}

/// `atoi`: leading digits (after white space), 0 without any.
fn atoi(v: &str) -> u16 {
    let digits: String = v
        .trim_start_matches(is_space)
        .chars()
        .take_while(char::is_ascii_digit)
        .take(5)
        .collect();
    digits.parse::<u32>().map_or(0, |n| n.min(999) as u16)
}

/// `apr_table_set`: replaces the first entry named `name` (case-blind)
/// in place and drops the others, or appends.
fn table_set(t: &mut Vec<(String, String)>, name: &str, value: &str) {
    match t.iter().position(|(k, _)| k.eq_ignore_ascii_case(name)) {
        Some(i) => {
            t[i].1 = value.to_string();
            let mut j = i + 1;
            while j < t.len() {
                if t[j].0.eq_ignore_ascii_case(name) {
                    t.remove(j);
                } else {
                    j += 1;
                }
            }
        }
        None => t.push((name.to_string(), value.to_string())),
    }
}

/// The daemon's status and headers as the Apache child applies them.
pub fn scan(status: u16, status_line: &str, headers: &[(String, String)]) -> CgiHead {
    let mut out = CgiHead {
        status,
        status_line: status_line.to_string(),
        ..CgiHead::default()
    };
    let mut merge: Vec<(String, String)> = Vec::new();
    let mut cookies: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let value = value.trim_start_matches(is_space);
        if name.eq_ignore_ascii_case("Content-Type") {
            out.content_type = Some(content_type_tolower(value.trim_end_matches(is_space)));
        } else if name.eq_ignore_ascii_case("Status") {
            out.status = atoi(value);
            out.status_line = value.to_string();
        } else if [
            "Location",
            "Content-Length",
            "Content-Range",
            "Transfer-Encoding",
        ]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
            || name.eq_ignore_ascii_case("Last-Modified")
        {
            table_set(&mut out.headers, name, value);
        } else if name.eq_ignore_ascii_case("Set-Cookie") {
            cookies.push((name.clone(), value.to_string()));
        } else if name.eq_ignore_ascii_case("WWW-Authenticate") {
            out.err_headers.push((name.clone(), value.to_string()));
        } else {
            merge.push((name.clone(), value.to_string()));
        }
    }
    // apr_table_overlap(headers_out, merge, APR_OVERLAP_TABLES_MERGE): one
    // entry per name, where the name first appears, values joined by ", ".
    for (name, value) in merge {
        match out
            .headers
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(&name))
        {
            Some((_, v)) => {
                v.push_str(", ");
                v.push_str(&value);
            }
            None => out.headers.push((name, value)),
        }
    }
    out.headers.extend(cookies);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plain_headers_pass_in_order() {
        let c = scan(200, "200 OK", &h(&[("X-A", "1"), ("X-B", "2")]));
        assert_eq!(c.status, 200);
        assert_eq!(c.status_line, "200 OK");
        assert_eq!(c.headers, h(&[("X-A", "1"), ("X-B", "2")]));
        assert!(c.err_headers.is_empty());
        assert_eq!(c.content_type, None);
    }

    #[test]
    fn repeats_merge_but_cookies_and_authenticate_stay_apart() {
        let c = scan(
            200,
            "200 OK",
            &h(&[
                ("Set-Cookie", "a=1"),
                ("X-Dup", "one"),
                ("Set-Cookie", "b=2"),
                ("x-dup", "two"),
                ("WWW-Authenticate", "Basic realm=\"x\""),
                ("WWW-Authenticate", "Digest realm=\"y\""),
            ]),
        );
        assert_eq!(
            c.headers,
            h(&[
                ("X-Dup", "one, two"),
                ("Set-Cookie", "a=1"),
                ("Set-Cookie", "b=2")
            ])
        );
        assert_eq!(
            c.err_headers,
            h(&[
                ("WWW-Authenticate", "Basic realm=\"x\""),
                ("WWW-Authenticate", "Digest realm=\"y\"")
            ])
        );
    }

    #[test]
    fn set_headers_come_first_and_replace() {
        let c = scan(
            200,
            "200 OK",
            &h(&[
                ("ETag", "\"v1\""),
                ("Last-Modified", "Sat, 01 Jan 2000 00:00:00 GMT"),
                ("Location", "/a"),
                ("Location", "/b"),
            ]),
        );
        assert_eq!(
            c.headers,
            h(&[
                ("Last-Modified", "Sat, 01 Jan 2000 00:00:00 GMT"),
                ("Location", "/b"),
                ("ETag", "\"v1\"")
            ])
        );
    }

    #[test]
    fn status_header_sets_the_status() {
        let c = scan(200, "200 OK", &h(&[("Status", "404"), ("X-A", "1")]));
        assert_eq!(c.status, 404);
        assert_eq!(c.status_line, "404");
        assert_eq!(c.headers, h(&[("X-A", "1")]));
        let c = scan(200, "200 OK", &h(&[("status", "  302 Moved")]));
        assert_eq!((c.status, c.status_line.as_str()), (302, "302 Moved"));
        assert_eq!(scan(200, "200 OK", &h(&[("Status", "abc")])).status, 0);
    }

    #[test]
    fn values_lose_leading_space_and_content_type_its_case() {
        let c = scan(
            200,
            "200 OK",
            &h(&[
                ("X-Spaces", "  padded  "),
                ("Content-Type", " Text/HTML; Charset=UTF-8  "),
            ]),
        );
        assert_eq!(c.headers, h(&[("X-Spaces", "padded  ")]));
        assert_eq!(c.content_type.as_deref(), Some("text/html; Charset=UTF-8"));
        assert_eq!(content_type_tolower("TEXT/Plain"), "text/plain");
    }
}
