//! Security headers on every response, the cross-site check on every
//! unsafe request, the caller's address, and ID validation.

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};

/// The Content-Security-Policy on every response: no scripts at all, styles
/// and images only from this server, forms only to this server, no framing.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Middleware: refuse cross-site unsafe requests, then add the security
/// headers to whatever the handler answered.
pub async fn layer(req: Request, next: Next) -> Response {
    let mut response = if is_unsafe(req.method()) && cross_site(req.headers()) {
        (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Cross-site request refused.\n",
        )
            .into_response()
    } else {
        next.run(req).await
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn is_unsafe(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// True when the browser tells us the request comes from another site:
/// `Sec-Fetch-Site` other than same-origin/none, or an `Origin` whose host
/// is not the `Host` the request was sent to.
pub fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("");
        return !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none"));
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Non-browser clients send neither; the CSRF token still applies.
        return false;
    };
    let origin = origin.to_str().unwrap_or("null");
    let Some(origin_host) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return true; // "null" or anything odd
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    !origin_host.eq_ignore_ascii_case(host)
}

/// Who is calling, for the audit log and the login rate limit: the peer's IP
/// address; when the peer is a loopback reverse proxy that sets
/// `X-Real-IP`, that address followed by ` via ` and the proxy.
pub fn remote(parts_ext: &axum::http::Extensions, headers: &HeaderMap) -> String {
    let peer = parts_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    let Some(peer) = peer else {
        return "unknown".into();
    };
    if peer.is_loopback()
        && let Some(real) = headers
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return format!("{real} via {peer}");
    }
    peer.to_string()
}

/// A quarantine id as the store makes them: digits and '-', at most 64
/// characters. Anything else (`..`, `/`, `%2e`) never reaches the file system.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cross_site_detection() {
        assert!(!cross_site(&headers(&[])));
        assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!cross_site(&headers(&[
            ("origin", "http://127.0.0.1:8025"),
            ("host", "127.0.0.1:8025")
        ])));
        assert!(cross_site(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:8025")
        ])));
        assert!(cross_site(&headers(&[("origin", "null")])));
    }

    #[test]
    fn ids() {
        assert!(valid_id("1764041234-123456-1"));
        assert!(!valid_id("../hallmonitor"));
        assert!(!valid_id("1/2"));
        assert!(!valid_id(""));
        assert!(!valid_id("1.eml"));
        assert!(!valid_id(&"1".repeat(65)));
    }

    #[test]
    fn remote_without_peer() {
        let ext = axum::http::Extensions::new();
        assert_eq!(remote(&ext, &HeaderMap::new()), "unknown");
        let mut ext = axum::http::Extensions::new();
        ext.insert(ConnectInfo::<SocketAddr>("127.0.0.1:5555".parse().unwrap()));
        assert_eq!(remote(&ext, &HeaderMap::new()), "127.0.0.1");
        let h = headers(&[("x-real-ip", "203.0.113.9")]);
        assert_eq!(remote(&ext, &h), "203.0.113.9 via 127.0.0.1");
        let mut ext = axum::http::Extensions::new();
        ext.insert(ConnectInfo::<SocketAddr>("192.0.2.1:5555".parse().unwrap()));
        assert_eq!(remote(&ext, &h), "192.0.2.1");
    }
}
