//! A router that remembers its routes (both services use it), so tests can enumerate every route and method and check
//! each against every role (the route × role matrix).

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{self, MethodRouter};
use axum::Router;

pub struct Routes<S> {
    router: Router<S>,
    list: Vec<(Method, String)>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self { router: Router::new(), list: Vec::new() }
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(mut self, method: Method, path: &str, handler: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, handler);
        self.list.push((method, path.to_owned()));
        self
    }

    #[must_use]
    pub fn get<H: Handler<T, S>, T: 'static>(self, path: &str, h: H) -> Self {
        self.add(Method::GET, path, routing::get(h))
    }

    #[must_use]
    pub fn post<H: Handler<T, S>, T: 'static>(self, path: &str, h: H) -> Self {
        self.add(Method::POST, path, routing::post(h))
    }

    #[must_use]
    pub fn merge(mut self, other: Self) -> Self {
        self.router = self.router.merge(other.router);
        self.list.extend(other.list);
        self
    }

    #[must_use]
    pub fn nest(mut self, prefix: &str, other: Self) -> Self {
        self.router = self.router.nest(prefix, other.router);
        self.list.extend(other.list.into_iter().map(|(m, p)| (m, format!("{prefix}{p}"))));
        self
    }

    #[must_use]
    pub fn fallback<H: Handler<T, S>, T: 'static>(mut self, h: H) -> Self {
        self.router = self.router.fallback(h);
        self
    }

    /// What a route listed so far answers to a method it does not take (405).
    #[must_use]
    pub fn method_not_allowed_fallback<H: Handler<T, S>, T: 'static>(mut self, h: H) -> Self {
        self.router = self.router.method_not_allowed_fallback(h);
        self
    }

    /// Every (method, path pattern) served.
    pub fn list(&self) -> &[(Method, String)] {
        &self.list
    }

    pub fn into_router(self) -> Router<S> {
        self.router
    }
}
