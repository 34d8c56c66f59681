// MediaNest's service worker: the installable app's offline shell and its push notifications.
//
// The server fills in the placeholders when it serves this file (src/dashboard.rs): the base
// path, the build's version and the list of the shell's files (index.html and the current
// fingerprinted and module files). A new build changes the version, so the browser sees a new
// worker, installs it with a fresh cache and drops the old ones when it activates.
//
// - Navigations are network first: online, the page is always the server's current one; offline,
//   the cached index.html opens and the app shows its "offline" state.
// - /api/, /health and /metrics are never touched (network only, never cached).
// - Fingerprinted files (?v=) are cache first (immutable); the other files network first.
// - `push` shows a notification from `{title, body, url, icon, tag}`; a click focuses an open
//   dashboard window (and tells it to open `url`) or opens `url` in a new one. `url` and `icon`
//   must be same-origin paths under the base; anything else is replaced by the home page.

const BASE = "{{base}}";
const VERSION = "{{version}}";
const SHELL = {{shell}};
const PREFIX = "medianest-shell-";
const CACHE = PREFIX + VERSION;
const HOME = BASE + "/";

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith(PREFIX) && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

/** The path under the base of a same-origin URL ("/medianest/admin" -> "/admin"), else null. */
function ownPath(url) {
  if (url.origin !== self.location.origin) return null;
  if (BASE && url.pathname !== BASE && !url.pathname.startsWith(BASE + "/")) return null;
  return url.pathname.slice(BASE.length) || "/";
}

function isServerPath(path) {
  return path === "/api" || path.startsWith("/api/") || path === "/health" || path.startsWith("/health/") || path === "/metrics";
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  const path = ownPath(url);
  // Not ours, or the server's own answers: straight to the network, never cached.
  if (path === null || isServerPath(path)) return;
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(() => fromCache(HOME)));
  } else if (url.searchParams.has("v")) {
    event.respondWith(caches.match(request).then((hit) => hit || fetch(request)));
  } else {
    event.respondWith(fetch(request).catch(() => fromCache(request)));
  }
});

async function fromCache(request) {
  const hit = await caches.match(request);
  return hit || Response.error();
}

/** A same-origin path under the base (with its query), or null. */
function safePath(value) {
  if (typeof value !== "string" || !value) return null;
  let url;
  try {
    url = new URL(value, self.location.origin);
  } catch {
    return null;
  }
  if (ownPath(url) === null) return null;
  return url.pathname + url.search + url.hash;
}

function text(value) {
  return typeof value === "string" ? value : "";
}

self.addEventListener("push", (event) => {
  let data = {};
  if (event.data) {
    try {
      data = event.data.json() || {};
    } catch {
      data = { body: event.data.text() };
    }
  }
  const options = {
    body: text(data.body),
    icon: safePath(data.icon) || BASE + "/icons/icon-192.png",
    badge: BASE + "/icons/icon-192.png",
    data: { url: safePath(data.url) || HOME },
  };
  if (text(data.tag)) options.tag = data.tag;
  event.waitUntil(self.registration.showNotification(text(data.title) || "MediaNest", options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = safePath(event.notification.data && event.notification.data.url) || HOME;
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const open = windows.find((w) => ownPath(new URL(w.url)) !== null);
      if (open) {
        open.postMessage({ type: "medianest.open", url: target });
        return open.focus();
      }
      return self.clients.openWindow(target);
    }),
  );
});
