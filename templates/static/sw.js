// The offline app's service worker (SPEC §10): keeps the offline page, its scripts and styles so
// the nurse can open it without a signal. Network first (a fresh page when online), the kept copy
// when the network fails. Nothing else is cached: patient pages stay online-only, and the
// patients prepared for the visits live encrypted in IndexedDB, not here.
var CACHE = "lending-offline-v1";
var SHELL = ["/offline", "/static/offline.js", "/static/signature.js", "/static/staff.css", "/static/favicon.svg", "/manifest.webmanifest"];

function keep(path, response) {
  // Only a real answer: never a sign-in page reached by a redirect.
  if (response.ok && !response.redirected) {
    var copy = response.clone();
    return caches.open(CACHE).then(function (c) { return c.put(path, copy); });
  }
  return Promise.resolve();
}

self.addEventListener("install", function (e) {
  e.waitUntil(Promise.all(SHELL.map(function (path) {
    return fetch(path, { credentials: "same-origin" }).then(function (r) { return keep(path, r); }, function () {});
  })).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (e) {
  e.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n !== CACHE; }).map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (e) {
  var url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== self.location.origin || url.search || SHELL.indexOf(url.pathname) < 0) {
    return;
  }
  e.respondWith(fetch(e.request).then(function (r) {
    keep(url.pathname, r);
    return r;
  }, function () {
    return caches.match(url.pathname).then(function (r) { return r || Response.error(); });
  }));
});
