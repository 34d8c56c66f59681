// The dashboard's shell: who is signed in, the header and navigation, the history-API router
// that loads one page module at a time, and the live-event connection.

import { api, setCsrf, onAuthProblem, reportError } from "./js/api.js";
import * as events from "./js/events.js";
import { h, mount, loading, errorBox } from "./js/ui.js";
import { withBase, appPath } from "./js/base.js";

const ROUTES = [
  { path: "/", page: "home", title: "Home" },
  { path: "/discover", page: "discover", title: "Discover" },
  // Title pages: /movie/{tmdbId} and /tv/{tmdbId} (the page reads the id from the path).
  { path: "/movie", page: "title", title: "Movie", hidden: true, parent: "/discover" },
  { path: "/tv", page: "title", title: "Series", hidden: true, parent: "/discover" },
  { path: "/requests", page: "requests", title: "My requests" },
  { path: "/library", page: "library", title: "Library" },
  { path: "/downloads", page: "downloads", title: "Downloads" },
  { path: "/subscriptions", page: "subscriptions", title: "Subscriptions" },
  { path: "/notifications", page: "notifications", title: "Notifications", hidden: true },
  { path: "/settings/notifications", page: "notification-settings", title: "Notification settings", hidden: true },
  { path: "/admin", page: "admin", title: "Admin", admin: true },
  { path: "/signin", page: "signin", title: "Sign in", public: true, hidden: true },
  { path: "/password", page: "password", title: "Change password", hidden: true },
];

const app = {
  session: null,
  unread: 0,
  cleanups: [],
  /** Navigates within the app. */
  go(path, { replace = false } = {}) {
    if (replace) history.replaceState(null, "", withBase(path));
    else history.pushState(null, "", withBase(path));
    render();
  },
  /** Subscribes to a live event kind for as long as the current page is shown. */
  on(kind, fn) {
    app.cleanups.push(events.on(kind, fn));
  },
  /** Runs `fn` when the current page is left. */
  onLeave(fn) {
    app.cleanups.push(fn);
  },
  /** Stores a fresh session (after any sign-in) and reloads who we are. */
  async signedIn() {
    await loadSession();
    // Back to where the sign-in interrupted, if that was a page of this app.
    const next = new URLSearchParams(location.search).get("next");
    const target = next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/signin") ? next : "/";
    app.go(app.session && app.session.user.requiresPasswordChange ? "/password" : target, { replace: true });
  },
  async signOut() {
    try {
      await api("/auth/logout", { method: "POST", quietAuth: true });
    } catch {
      // The session is gone either way.
    }
    app.session = null;
    setCsrf(null);
    events.disconnect();
    app.go("/signin", { replace: true });
  },
  setUnread(count) {
    app.unread = Math.max(0, count || 0);
    const bell = document.getElementById("bell-count");
    if (bell) {
      bell.textContent = app.unread ? String(app.unread) : "";
      bell.hidden = !app.unread;
      bell.parentElement.setAttribute("aria-label", `Notifications, ${app.unread} unread`);
    }
  },
  isAdmin() {
    return !!(app.session && app.session.user.role === "admin");
  },
};

async function loadSession() {
  try {
    const { data } = await api("/auth/session", { quietAuth: true });
    app.session = data;
    setCsrf(data.csrfToken);
  } catch (e) {
    if (e.status === 401 || e.status === 403) {
      app.session = null;
      setCsrf(null);
      return;
    }
    throw e;
  }
}

async function refreshUnread() {
  try {
    const { meta } = await api("/notifications", { query: { unread: "true", limit: 1 } });
    app.setUnread(meta.unreadCount);
  } catch {
    // The bell just stays as it was.
  }
}

function header(current) {
  const top = document.getElementById("top");
  if (!app.session || app.session.user.requiresPasswordChange) {
    top.hidden = true;
    top.replaceChildren();
    return;
  }
  top.hidden = false;
  const user = app.session.user;
  const links = ROUTES.filter((r) => !r.hidden && (!r.admin || user.role === "admin")).map((r) =>
    h("a", { href: r.path, "data-link": "", "aria-current": r === current || (current && current.parent === r.path) ? "page" : null, class: "nav-link" }, r.title),
  );
  mount(
    top,
    h("a", { href: "/", "data-link": "", class: "brand", "aria-label": "MediaNest home" },
      h("img", { src: "/icon.svg", alt: "", width: 24, height: 24 }), h("span", { text: "MediaNest" })),
    h("nav", { class: "nav", "aria-label": "Main" }, links),
    h("div", { class: "who" },
      h("span", { id: "live", class: "live live-" + liveNow, title: "Live updates", role: "status" }),
      h("a", { href: "/notifications", "data-link": "", class: "bell", id: "bell", "aria-label": "Notifications",
        "aria-current": current && current.page === "notifications" ? "page" : null },
        bellIcon(), h("span", { id: "bell-count", class: "count", hidden: true })),
      h("span", { class: "username", text: user.name || user.username }),
      // Local accounts have a password to change; Plex accounts sign in with Plex.
      user.plexUsername ? null : h("a", { href: "/password", "data-link": "", class: "nav-aux" }, "Password"),
      h("button", { type: "button", class: "link", onclick: () => app.signOut() }, "Sign out"),
    ),
  );
  app.setUnread(app.unread);
  // On a phone the navigation scrolls sideways: keep the current page's link in view.
  const active = top.querySelector(".nav-link[aria-current='page']");
  if (active && active.scrollIntoView) active.scrollIntoView({ block: "nearest", inline: "nearest" });
}

function bellIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "20");
  svg.setAttribute("height", "20");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", "M12 22a2.5 2.5 0 0 0 2.5-2.5h-5A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5-6.7V3.5a2 2 0 0 0-4 0v.8A7 7 0 0 0 5 11v5l-2 2v1h18v-1z");
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

let renderSeq = 0;

async function render() {
  const seq = ++renderSeq;
  for (const fn of app.cleanups.splice(0)) {
    try {
      fn();
    } catch (e) {
      console.error(e);
    }
  }
  const path = appPath(location.pathname).replace(/\/+$/, "") || "/";
  let route = ROUTES.find((r) => r.path === path) || ROUTES.find((r) => r.path !== "/" && path.startsWith(r.path + "/"));
  if (!app.session && (!route || !route.public)) {
    history.replaceState(null, "", withBase("/signin?next=" + encodeURIComponent(appPath(location.pathname) + location.search)));
    route = ROUTES.find((r) => r.page === "signin");
  } else if (app.session && app.session.user.requiresPasswordChange && (!route || route.page !== "password")) {
    history.replaceState(null, "", withBase("/password"));
    route = ROUTES.find((r) => r.page === "password");
  } else if (app.session && route && route.page === "signin") {
    history.replaceState(null, "", withBase("/"));
    route = ROUTES[0];
  }
  const main = document.getElementById("main");
  ensureLive();
  header(route);
  if (!route || (route.admin && !app.isAdmin())) {
    document.title = "Not found · MediaNest";
    mount(main, h("section", { class: "page" }, h("h1", { text: "Page not found" }),
      h("p", {}, h("a", { href: "/", "data-link": "" }, "Back to the home page"))));
    return;
  }
  document.title = `${route.title} · MediaNest`;
  mount(main, loading());
  try {
    const module = await import(`./js/pages/${route.page}.js`);
    if (seq !== renderSeq) return;
    const section = h("section", { class: "page page-" + route.page, "aria-labelledby": "page-title" });
    mount(main, section);
    await module.render(section, app, path);
  } catch (e) {
    if (seq !== renderSeq) return;
    // The server already knows about its own errors; report only the page's.
    if (!(e && e.name === "ApiError")) {
      reportError(e && e.message, { stack: e && e.stack ? String(e.stack).slice(0, 4000) : undefined });
    }
    mount(main, h("section", { class: "page" }, h("h1", { text: route.title }), errorBox(e, () => render())));
  }
}

// Same-origin links marked data-link navigate without a reload.
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("a[data-link]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  // href is the address (under the base path); the router goes by the app's own path.
  const target = appPath(link.pathname) + link.search;
  if (target !== appPath(location.pathname) + location.search) app.go(target);
  document.getElementById("main").focus({ preventScroll: true });
});
window.addEventListener("popstate", () => render());

onAuthProblem((error) => {
  if (error.code === "PASSWORD_CHANGE_REQUIRED") {
    if (app.session) app.session.user.requiresPasswordChange = true;
    app.go("/password", { replace: true });
    return;
  }
  app.session = null;
  app.signedOutBy = error;
  setCsrf(null);
  events.disconnect();
  // Signed out under our feet (expired, revoked, suspended): sign in again, then come back here.
  render();
});

window.addEventListener("error", (event) => reportError(event.message, { stack: event.error && event.error.stack }));
window.addEventListener("unhandledrejection", (event) => {
  const reason = event.reason;
  if (reason && reason.name === "ApiError") return;
  reportError(reason && reason.message ? reason.message : String(reason));
});

let liveStarted = false;
/** Starts the live stream and the bell once a session that may use them exists. */
function ensureLive() {
  if (app.session && !app.session.user.requiresPasswordChange && !liveStarted) {
    liveStarted = true;
    events.connect(liveState);
    refreshUnread();
  } else if (!app.session && liveStarted) {
    liveStarted = false;
    events.disconnect();
  }
}

let liveNow = "";
function liveState(state) {
  liveNow = state;
  const dot = document.getElementById("live");
  if (!dot) return;
  dot.className = "live live-" + state;
  dot.title = state === "live" ? "Live updates on" : "Reconnecting live updates…";
  dot.setAttribute("aria-label", dot.title);
}

events.on("notification.created", () => app.setUnread(app.unread + 1));

/** What the app shows when the server cannot be reached (the service worker opened the cached
 * page offline, or the connection dropped): it reloads by itself when the browser is back online. */
function offline() {
  window.addEventListener("online", () => location.reload(), { once: true });
  mount(
    document.getElementById("main"),
    h(
      "section",
      { class: "page offline", id: "offline", role: "status" },
      h("h1", { text: "You are offline" }),
      h("p", { text: "MediaNest cannot be reached right now. This page opens again by itself when the connection is back." }),
      h("button", { type: "button", onclick: () => location.reload() }, "Try again"),
    ),
  );
}

async function boot() {
  try {
    await loadSession();
  } catch (e) {
    if (e.code === "NETWORK_ERROR") {
      offline();
      return;
    }
    mount(document.getElementById("main"), h("section", { class: "page" }, h("h1", { text: "MediaNest" }), errorBox(e, () => location.reload())));
    return;
  }
  await render();
}

/** The installable app's service worker (assets/sw.js), where the browser has them (a secure
 * context: HTTPS, or localhost). A click on a notification asks an open window to show a page. */
function registerWorker() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.register(withBase("/sw.js"), { scope: withBase("/") }).catch((e) => {
    reportError("service worker registration failed: " + ((e && e.message) || e));
  });
  navigator.serviceWorker.addEventListener("message", (event) => {
    const data = event.data || {};
    if (data.type !== "medianest.open" || typeof data.url !== "string") return;
    const url = new URL(data.url, location.origin);
    if (url.origin !== location.origin) return;
    app.go(appPath(url.pathname) + url.search + url.hash);
  });
  // Messages the worker sent before this listener existed are delivered now.
  navigator.serviceWorker.startMessages();
}

registerWorker();
boot();
