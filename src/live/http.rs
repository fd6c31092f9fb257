//! The little HTTP/1.1 both ends of a live health check need: a bounded reader of a message
//! head, a request parser for the backends, a status-line parser for the prober.
//!
//! Not a general HTTP implementation on purpose: a health check sends one request and reads one
//! status line, and the backends answer `url_path` and nothing else. Every read is bounded
//! ([`MAX_HEAD_BYTES`]), so a peer that never ends its head cannot grow memory.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Longest request or response head read (HAProxy's default `tune.bufsize` is 16 KiB).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Why a head could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The peer closed (or reset) before the head was complete.
    Closed,
    /// More than [`MAX_HEAD_BYTES`] without the blank line.
    TooLong,
}

/// Reads up to and including the blank line that ends a head. Bytes past it stay in `buf`
/// after the returned head length, for a body or the next request.
pub async fn read_head<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut Vec<u8>,
) -> Result<usize, HeadError> {
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(end) = find_head_end(buf) {
            return Ok(end);
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(HeadError::TooLong);
        }
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(HeadError::Closed),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Length of the head including its final CRLF CRLF (a bare LF LF is accepted too).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The parts of a request a backend looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent (`/healthz?x=1`).
    pub target: String,
    /// The Host header without a port, lower case.
    pub host: Option<String>,
    /// The client asked to close after the answer (`Connection: close`, or HTTP/1.0).
    pub close: bool,
    pub content_length: u64,
}

/// Parses a request head; `None` when it is not HTTP/1.x.
pub fn parse_request(head: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let mut first = lines.next()?.split(' ');
    let (method, target, version) = (first.next()?, first.next()?, first.next()?);
    if method.is_empty() || !version.starts_with("HTTP/1.") || first.next().is_some() {
        return None;
    }
    let mut req = Request {
        method: method.to_string(),
        target: target.to_string(),
        host: None,
        close: version == "HTTP/1.0",
        content_length: 0,
    };
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "host" => req.host = Some(strip_port(value).to_ascii_lowercase()),
            "connection" => req.close = value.eq_ignore_ascii_case("close"),
            "content-length" => req.content_length = value.parse().ok()?,
            _ => {}
        }
    }
    Some(req)
}

/// `example.com:8080` -> `example.com`; `[::1]:80` -> `[::1]`; a bare IPv6 address stays whole.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.find(']') {
            Some(i) => &host[..i + 2],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// What a status line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusLine {
    Status(u16),
    /// Bytes that are no `HTTP/1.x NNN ...` line.
    Malformed,
}

/// Parses the first line of `buf` once it is complete; `None` while it is not.
pub fn parse_status_line(buf: &[u8]) -> Option<StatusLine> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let line = &buf[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let ok = |s: &str| -> Option<u16> {
        let mut parts = s.splitn(3, ' ');
        let version = parts.next()?;
        let code = parts.next()?;
        if !version.starts_with("HTTP/1.") || code.len() != 3 {
            return None;
        }
        code.parse().ok().filter(|c| (100..=999).contains(c))
    };
    Some(match std::str::from_utf8(line).ok().and_then(ok) {
        Some(c) => StatusLine::Status(c),
        None => StatusLine::Malformed,
    })
}

/// A reason phrase for the codes a backend sends (any other code gets "Status").
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// A complete response with a short text body (none for HEAD).
pub fn response(code: u16, head_only: bool, close: bool) -> Vec<u8> {
    let body = format!("{code} {}\n", reason_phrase(code));
    let mut out = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nServer: elbsim-live\r\n{}\r\n",
        reason_phrase(code),
        body.len(),
        if close { "Connection: close\r\n" } else { "" },
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_host_and_connection() {
        let r = parse_request(
            b"GET /health?x=1 HTTP/1.1\r\nHost: WWW.Example.com:8080\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/health?x=1");
        assert_eq!(r.host.as_deref(), Some("www.example.com"));
        assert!(r.close);
        let r = parse_request(b"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\n").unwrap();
        assert!(r.close && r.content_length == 3 && r.host.is_none());
        assert!(parse_request(b"\x16\x03\x01garbage\r\n\r\n").is_none());
        assert!(parse_request(b"GET / HTTP/1.1\r\nno colon\r\n\r\n").is_none());
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("::1"), "::1");
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status_line(b"HTTP/1.1 200 OK\r\n"),
            Some(StatusLine::Status(200))
        );
        assert_eq!(
            parse_status_line(b"HTTP/1.0 404\r\nX"),
            Some(StatusLine::Status(404))
        );
        assert_eq!(parse_status_line(b"HTTP/1.1 20"), None);
        assert_eq!(
            parse_status_line(b"SSH-2.0-OpenSSH\r\n"),
            Some(StatusLine::Malformed)
        );
        assert_eq!(
            parse_status_line(b"HTTP/1.1 2000 x\n"),
            Some(StatusLine::Malformed)
        );
    }

    #[test]
    fn head_end_and_response() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n"), None);
        let r = response(404, true, true);
        let text = String::from_utf8(r).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.ends_with("Connection: close\r\n\r\n"));
    }
}
