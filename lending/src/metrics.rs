//! Operational metrics in the Prometheus text format, hand-rolled: a handful of series does
//! not justify an exporter crate and its dependencies. Requests are counted by matched route
//! template (never the raw path, which can hold a label token or an id), method and status.
//! Each service adds its own gauges when scraped, through [`Text`].

// Counts reach f64's exact-integer limit (2^53) never in a service's lifetime.
#![allow(clippy::cast_precision_loss)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Histogram {
    /// Requests in each bucket (not cumulative; summed when rendered).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    seconds: f64,
}

#[derive(Default)]
struct Route {
    by_status: BTreeMap<(&'static str, u16), u64>,
    latency: BTreeMap<&'static str, Histogram>,
}

/// Request counts by route template, method and status; latency by route template and method.
///
/// Kept in a few shards, each thread recording into its own: with one lock, the runtime's
/// worker threads queued on it (and slept in the kernel) on every request of the public help
/// page, the hottest path of the product. A scrape adds the shards up.
pub struct HttpMetrics {
    shards: [Mutex<BTreeMap<String, Route>>; SHARDS],
}

const SHARDS: usize = 8;

impl Default for HttpMetrics {
    fn default() -> Self {
        Self { shards: std::array::from_fn(|_| Mutex::default()) }
    }
}

/// This thread's shard: threads are numbered as they first record, so the runtime's few worker
/// threads each get their own.
fn shard_of_this_thread() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

impl Route {
    fn add(&mut self, other: &Route) {
        for (&k, &n) in &other.by_status {
            *self.by_status.entry(k).or_default() += n;
        }
        for (&method, h) in &other.latency {
            let sum = self.latency.entry(method).or_default();
            sum.count += h.count;
            sum.seconds += h.seconds;
            for (a, b) in sum.buckets.iter_mut().zip(h.buckets) {
                *a += b;
            }
        }
    }
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl HttpMetrics {
    /// Records one answered request. `route` is a route template or `unmatched`.
    pub fn observe(&self, route: &str, method: &Method, status: u16, seconds: f64) {
        let mut routes = self.shards[shard_of_this_thread()].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let r = match routes.get_mut(route) {
            Some(r) => r,
            None => routes.entry(route.to_owned()).or_default(),
        };
        let method = method_label(method);
        *r.by_status.entry((method, status)).or_default() += 1;
        let h = r.latency.entry(method).or_default();
        h.count += 1;
        h.seconds += seconds;
        if let Some(i) = BUCKETS.iter().position(|&b| seconds <= b) {
            h.buckets[i] += 1;
        }
    }

    /// Writes `<prefix>_http_requests_total` and `<prefix>_http_request_duration_seconds`.
    pub fn render(&self, prefix: &str, out: &mut Text) {
        let mut routes: BTreeMap<String, Route> = BTreeMap::new();
        for shard in &self.shards {
            for (route, r) in shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
                match routes.get_mut(route) {
                    Some(sum) => sum.add(r),
                    None => routes.entry(route.clone()).or_default().add(r),
                }
            }
        }
        let total = format!("{prefix}_http_requests_total");
        out.header(&total, "counter", "Requests answered, by route template, method and status.");
        for (route, r) in &routes {
            for (&(method, status), &n) in &r.by_status {
                out.count(&total, &[("route", route), ("method", method), ("status", &status.to_string())], n);
            }
        }
        let duration = format!("{prefix}_http_request_duration_seconds");
        let (bucket, sum, count) =
            (format!("{duration}_bucket"), format!("{duration}_sum"), format!("{duration}_count"));
        out.header(&duration, "histogram", "Time to answer, by route template and method.");
        for (route, r) in &routes {
            for (&method, h) in &r.latency {
                let mut cumulative = 0;
                for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                    cumulative += n;
                    out.count(&bucket, &[("route", route), ("method", method), ("le", &bound.to_string())], cumulative);
                }
                out.count(&bucket, &[("route", route), ("method", method), ("le", "+Inf")], h.count);
                out.sample(&sum, &[("route", route), ("method", method)], h.seconds);
                out.count(&count, &[("route", route), ("method", method)], h.count);
            }
        }
    }
}

/// Middleware recording every request into the state's [`HttpMetrics`]; add it with
/// `Router::layer` so the matched route is known.
pub async fn track(State(metrics): State<std::sync::Arc<HttpMetrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let response = next.run(req).await;
    metrics.observe(
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// A Prometheus text exposition being written.
#[derive(Default)]
pub struct Text(String);

impl Text {
    /// `# HELP` and `# TYPE` for a metric family (before its samples).
    pub fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// One sample; label values are escaped as the format requires.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(self.0, "{k}=\"{v}\"");
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// One counter sample.
    pub fn count(&mut self, name: &str, labels: &[(&str, &str)], n: u64) {
        self.sample(name, labels, n as f64);
    }

    /// A gauge family with a single (whole-number) sample.
    pub fn gauge(&mut self, name: &str, help: &str, value: i64) {
        self.header(name, "gauge", help);
        self.sample(name, &[], value as f64);
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The response for a scrape.
pub fn response(text: Text) -> Response {
    use axum::response::IntoResponse as _;
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text.into_string())
        .into_response()
}

/// Binds the operators' metrics listener (`setting` names it in errors) and serves `router`
/// there until the process is asked to stop.
pub async fn serve(setting: &str, at: std::net::SocketAddr, router: axum::Router) -> anyhow::Result<()> {
    let listener =
        tokio::net::TcpListener::bind(at).await.map_err(|e| anyhow::anyhow!("{setting}={at}: cannot listen: {e}"))?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "metrics listener is not on loopback: let only the monitoring host reach it");
    }
    tracing::info!(%addr, "metrics listening");
    tokio::spawn(std::future::IntoFuture::into_future(
        axum::serve(listener, router).with_graceful_shutdown(crate::web::shutdown_signal()),
    ));
    Ok(())
}
