//! HTTP facts both services share (they depend on this crate, never on each other).

#[cfg(feature = "http")]
pub mod json;

/// Headers on every response of both services (SPEC §6). The CSP allows no inline script;
/// pages work without JavaScript, and scripts, when used, come from the service itself.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    // `same-origin`, not `no-referrer`: with no-referrer Chrome sends `Origin: null` on our own
    // form posts, which the CSRF check must refuse. Nothing is sent to other sites either way.
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    ("permissions-policy", "geolocation=(), microphone=(), camera=(self)"),
    ("cross-origin-opener-policy", "same-origin"),
];

/// HSTS, sent only when the service is reached over TLS (configured base URL is https).
pub const HSTS: (&str, &str) = ("strict-transport-security", "max-age=31536000; includeSubDomains");

/// Both services' icon (a device with a pulse line), served at `/static/favicon.svg` and at
/// `/favicon.ico` for browsers that ask there without reading the page's `<link rel="icon">`.
pub const FAVICON_SVG: &str = include_str!("../../../templates/static/favicon.svg");

/// The icon's response headers.
pub const FAVICON_HEADERS: [(&str, &str); 2] =
    [("content-type", "image/svg+xml"), ("cache-control", "public, max-age=86400")];

/// Largest request body either service accepts (a signature drawing fits easily).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Resolves on Ctrl-C or SIGTERM, for graceful shutdown of either service.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// Wraps a service's router in the layers both services share: security headers (plus any
/// `extra` ones), a body limit (413 beyond), request metrics and a request span, both naming the
/// route pattern, never the raw path (which can hold ids or tokens).
#[cfg(feature = "http")]
pub fn harden(
    app: axum::Router,
    extra: &[(&'static str, &'static str)],
    body_limit: usize,
    metrics: &std::sync::Arc<crate::metrics::HttpMetrics>,
) -> axum::Router {
    use axum::extract::{MatchedPath, Request};
    use axum::http::{HeaderName, HeaderValue};
    use tower_http::set_header::SetResponseHeaderLayer;
    use tower_http::trace::TraceLayer;

    let mut app = app;
    for (name, value) in SECURITY_HEADERS.iter().chain(extra) {
        app = app.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    app.layer(tower_http::limit::RequestBodyLimitLayer::new(body_limit))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req.extensions().get::<MatchedPath>().map_or("-", MatchedPath::as_str);
            tracing::info_span!("request", method = %req.method(), route = %route)
        }))
        // Outermost, so refusals by the layers above (413) are counted and timed too.
        .layer(axum::middleware::from_fn_with_state(metrics.clone(), crate::metrics::track))
}

/// Whether a browser marks a request as coming from our own pages: `Sec-Fetch-Site` is
/// same-origin (or absent), and `Origin`, when sent, names the host the request went to.
/// Clients that are not browsers send neither and pass; browsers on other sites cannot.
#[cfg(feature = "http")]
pub fn is_same_origin(h: &axum::http::HeaderMap) -> bool {
    use axum::http::header;
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    match (h.get(header::ORIGIN).and_then(|v| v.to_str().ok()), h.get(header::HOST).and_then(|v| v.to_str().ok())) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin.split_once("://").is_some_and(|(_, authority)| authority == host),
        (Some(_), None) => false,
    }
}

/// The client's address: the peer's, or, only when the peer is a configured trusted proxy, the
/// last address before the trusted proxies in `X-Forwarded-For` (what the proxy saw). A client
/// cannot make itself look like anyone else by sending the header directly.
pub fn client_ip(
    peer: std::net::IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[std::net::IpAddr],
) -> std::net::IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<std::net::IpAddr>().ok())
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::client_ip;

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxy: std::net::IpAddr = "10.0.0.2".parse().unwrap();
        let mut h = axum::http::HeaderMap::new();
        h.insert("x-forwarded-for", "198.51.100.9, 203.0.113.7".parse().unwrap());
        // Behind the proxy: the last address the proxy added (the first may be forged).
        assert_eq!(client_ip(proxy, &h, &[proxy]).to_string(), "203.0.113.7");
        // Straight from a client, the header is ignored.
        let direct: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(client_ip(direct, &h, &[proxy]), direct);
        assert_eq!(client_ip(proxy, &axum::http::HeaderMap::new(), &[proxy]), proxy);
    }
}
