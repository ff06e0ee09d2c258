//! HTTP facts both services share (they depend on this crate, never on each other).

#[cfg(feature = "http")]
pub mod json;
#[cfg(feature = "http")]
pub mod limit;
pub mod net;

pub use net::{rate_key, IpNet};

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
    harden_with(app, extra, body_limit, metrics, |app| app)
}

/// [`harden`], with `refusals` wrapped around the body limit and the NUL check, so a service can
/// turn their bare refusals (413, 422) into its own pages; the security headers, metrics and span
/// still cover whatever it answers.
#[cfg(feature = "http")]
pub fn harden_with(
    app: axum::Router,
    extra: &[(&'static str, &'static str)],
    body_limit: usize,
    metrics: &std::sync::Arc<crate::metrics::HttpMetrics>,
    refusals: impl FnOnce(axum::Router) -> axum::Router,
) -> axum::Router {
    use axum::extract::{MatchedPath, Request};
    use axum::http::{HeaderName, HeaderValue};
    use tower_http::trace::TraceLayer;

    // Layers are grouped with `ServiceBuilder` and added to the router as few times as possible:
    // every `Router::layer` call boxes the stack below it again, and each of those boxes is
    // cloned on every request (axum clones a route's service to call it), so 16 single layers
    // cost over a hundred allocations a request where these groups cost a few.
    let inner = tower::ServiceBuilder::new()
        // Outside the body limit, so its 413 is in the API's format too (under /api/ only).
        .layer(axum::middleware::from_fn(json::errors_as_json))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(body_limit))
        .map_request(|req: axum::http::Request<tower_http::body::Limited<axum::body::Body>>| {
            req.map(axum::body::Body::new)
        })
        .layer(axum::middleware::from_fn(refuse_nul_in_url));
    let app = refusals(app.layer(inner));
    // The headers' values are built once here; one layer sets them all where not already set.
    let headers: std::sync::Arc<[(HeaderName, HeaderValue)]> = SECURITY_HEADERS
        .iter()
        .chain(extra)
        .map(|(name, value)| (HeaderName::from_static(name), HeaderValue::from_static(value)))
        .collect();
    let outer = tower::ServiceBuilder::new()
        // Outermost, so refusals by the layers below (413) are counted and timed too.
        .layer(axum::middleware::from_fn_with_state(metrics.clone(), crate::metrics::track))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req.extensions().get::<MatchedPath>().map_or("-", MatchedPath::as_str);
            tracing::info_span!("request", method = %req.method(), route = %route)
        }))
        .map_response(move |mut response: axum::response::Response| {
            let h = response.headers_mut();
            // Room for all of them at once, not a regrowth of the map halfway.
            h.reserve(headers.len());
            for (name, value) in headers.iter() {
                if !h.contains_key(name) {
                    h.insert(name.clone(), value.clone());
                }
            }
            response
        });
    app.layer(outer)
}

/// A NUL (`%00`) in the URL is refused before any handler: PostgreSQL text cannot hold one, so
/// it would otherwise fail in the database (500). In the path it can only be part of an id,
/// and no id has one: 404, as SQLite answers. In the query it is bad input: 422.
#[cfg(feature = "http")]
async fn refuse_nul_in_url(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let uri = req.uri();
    let has_nul = |s: &str| s.as_bytes().windows(3).any(|w| w == b"%00");
    if has_nul(uri.path()) {
        return json::ApiError::from(crate::Error::NotFound).into_response();
    }
    if uri.query().is_some_and(has_nul) {
        let e = crate::Error::invalid(
            "query",
            "検索条件に使えない文字（NUL）が含まれています。",
            "The query string contains a NUL character.",
        );
        return json::ApiError::from(e).into_response();
    }
    next.run(req).await
}

/// Whether a browser marks a request as coming from our own pages: `Sec-Fetch-Site` is
/// same-origin (or absent), and `Origin`, when sent, is the service's configured origin (from
/// its base URL; never the request's own `Host`, which the sender controls).
/// Clients that are not browsers send neither and pass; browsers on other sites cannot.
#[cfg(feature = "http")]
pub fn is_same_origin(h: &axum::http::HeaderMap, origin: &str) -> bool {
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    h.get(axum::http::header::ORIGIN).is_none_or(|o| o.to_str().is_ok_and(|o| o.eq_ignore_ascii_case(origin)))
}

/// A base URL's origin: `scheme://host[:port]`, without path or trailing slash.
pub fn origin_of(base_url: &str) -> String {
    let (scheme, rest) = base_url.split_once("://").unwrap_or(("http", base_url));
    format!("{scheme}://{}", rest.split('/').next().unwrap_or_default())
}

/// Whether a request's `Host` is one the service answers to: its base URL's host and port (the
/// scheme's default port may be written or not). When the base URL is itself a loopback
/// address (development), any loopback host is accepted, so a rebinding name is still refused.
pub fn is_allowed_host(host: &str, base_url: &str) -> bool {
    let origin = origin_of(base_url);
    let (scheme, authority) = origin.split_once("://").unwrap_or(("http", &origin));
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let strip = |a: &str| a.strip_suffix(default_port).unwrap_or(a).to_ascii_lowercase();
    strip(host) == strip(authority) || is_loopback_authority(authority) && is_loopback_authority(host)
}

fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The client's address: the peer's, or, only when the peer is in a configured trusted proxy
/// network, the last address before the trusted proxies in `X-Forwarded-For` (what the proxy
/// saw). A client cannot make itself look like anyone else by sending the header directly.
/// IPv4-mapped IPv6 addresses come back as IPv4.
#[cfg(feature = "http")]
pub fn client_ip(peer: std::net::IpAddr, headers: &axum::http::HeaderMap, trusted: &[IpNet]) -> std::net::IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(*ip));
    if !is_trusted(&peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::{client_ip, is_allowed_host, origin_of, IpNet};

    #[test]
    fn hosts_and_origins_come_from_the_configured_base_url() {
        assert_eq!(origin_of("https://lending.clinic.example/staff"), "https://lending.clinic.example");
        assert!(is_allowed_host("lending.clinic.example", "https://lending.clinic.example"));
        assert!(is_allowed_host("Lending.Clinic.Example:443", "https://lending.clinic.example"));
        assert!(!is_allowed_host("evil.example", "https://lending.clinic.example"));
        assert!(!is_allowed_host("127.0.0.1:8080", "https://lending.clinic.example"));
        // Development on loopback: any loopback host and port, never another name.
        assert!(is_allowed_host("127.0.0.1:39123", "http://127.0.0.1:8080"));
        assert!(is_allowed_host("[::1]:8080", "http://127.0.0.1:8080"));
        assert!(!is_allowed_host("rebind.evil.example:8080", "http://127.0.0.1:8080"));
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxy: std::net::IpAddr = "10.0.0.2".parse().unwrap();
        let trusted = [IpNet::parse("10.0.0.0/24").unwrap()];
        let mut h = axum::http::HeaderMap::new();
        h.insert("x-forwarded-for", "198.51.100.9, 203.0.113.7, 10.0.0.5".parse().unwrap());
        // Behind the proxies: the last address they added (the first may be forged).
        assert_eq!(client_ip(proxy, &h, &trusted).to_string(), "203.0.113.7");
        // A proxy seen through an IPv4-mapped IPv6 socket is the same proxy.
        assert_eq!(client_ip("::ffff:10.0.0.2".parse().unwrap(), &h, &trusted).to_string(), "203.0.113.7");
        // Straight from a client, the header is ignored.
        let direct: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(client_ip(direct, &h, &trusted), direct);
        assert_eq!(client_ip(proxy, &axum::http::HeaderMap::new(), &trusted), proxy);
    }
}
