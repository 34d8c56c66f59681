// Home: the service cards (status, response time, uptime, a 24 h sparkline, stale marker), my
// request counts and recent requests, recently added to Plex and active downloads, kept live by
// the event stream. One call (GET /dashboard) when the server has it, else the pieces.

import { api } from "../api.js";
import { h, mount, loading, errorBox, badge, sparkline, fmtPercent, fmtAgo, poster, progressBar } from "../ui.js";

const ACTIVE = new Set(["queued", "downloading", "running"]);

export async function render(root, app) {
  const cards = h("div", { class: "cards", id: "service-cards" }, loading("Loading services…"));
  const counts = h("div", { class: "counts", id: "request-counts" });
  const recent = h("ul", { class: "list", id: "recent-requests" });
  const added = h("div", { class: "posters", id: "recently-added" });
  const downloads = h("ul", { class: "list", id: "active-downloads" });
  const user = app.session.user;
  mount(
    root,
    h("h1", { id: "page-title", text: `Hello, ${user.name || user.username}` }),
    h("h2", { text: "Services" }),
    cards,
    h("div", { class: "columns" },
      h("div", {}, h("h2", { text: "My requests" }), counts, recent,
        h("p", {}, h("a", { href: "/requests", "data-link": "" }, "All my requests"))),
      h("div", {}, h("h2", { text: "Active downloads" }), downloads,
        h("p", {}, h("a", { href: "/downloads", "data-link": "" }, "All downloads")))),
    h("h2", { text: "Recently added to Plex" }),
    added,
  );

  const services = new Map();
  const drawCard = (svc) => {
    const old = services.get(svc.name);
    const spark = old ? old.spark : h("div", { class: "spark" });
    const card = h(
      "article",
      { class: ["card", "service", "status-" + svc.status], "data-service": svc.name, "aria-label": `${svc.displayName}: ${svc.status}` },
      h("header", {},
        h("span", { class: "dot", "aria-hidden": "true" }),
        svc.url && !svc.name.startsWith("kuma:")
          ? h("a", { href: svc.url, target: "_blank", rel: "noopener noreferrer", class: "name" }, svc.displayName)
          : h("span", { class: "name", text: svc.displayName }),
        badge(svc.status),
        svc.stale ? h("span", { class: "badge badge-stale", title: "This status is older than two check intervals." }, "stale") : null,
      ),
      h("dl", { class: "facts" },
        h("dt", { text: "Response" }), h("dd", { text: svc.responseTimeMs === null || svc.responseTimeMs === undefined ? "—" : `${svc.responseTimeMs} ms` }),
        h("dt", { text: "Uptime 24 h" }), h("dd", { text: fmtPercent(svc.uptime24h) }),
        h("dt", { text: "Checked" }), h("dd", { text: fmtAgo(svc.lastCheckAt) })),
      svc.message ? h("p", { class: "message", text: svc.message }) : null,
      svc.breaker && svc.breaker !== "closed" ? h("p", { class: "message warn", text: `Circuit breaker ${svc.breaker.replace("_", "-")}` }) : null,
      spark,
    );
    if (old) old.card.replaceWith(card);
    services.set(svc.name, { card, spark });
    return card;
  };
  const loadSpark = async (name, label) => {
    try {
      const { data } = await api(`/services/${encodeURIComponent(name)}/history`, { query: { window: "24h" } });
      const entry = services.get(name);
      if (entry) {
        mount(entry.spark, sparkline(data.buckets.map((b) => b.avgResponseMs), { label: `${label}: response time over 24 hours`, width: 200 }),
          h("span", { class: "spark-caption", text: "response time, last 24 h" }));
      }
    } catch {
      // A card without its sparkline is still useful.
    }
  };
  const drawServices = (list) => {
    if (!list || list.length === 0) {
      mount(cards, h("p", { class: "muted", text: "No services are set up yet." }));
      return;
    }
    cards.replaceChildren(...list.map(drawCard));
    for (const svc of list) loadSpark(svc.name, svc.displayName);
  };

  const drawRequests = (requests) => {
    if (!requests) {
      mount(counts, h("p", { class: "muted", text: "Requests are not available yet." }));
      recent.replaceChildren();
      return;
    }
    const byStatus = requests.byStatus || {};
    mount(counts,
      h("div", { class: "count" }, h("strong", { text: requests.total ?? 0 }), h("span", { text: "total" })),
      ...Object.entries(byStatus).filter(([, n]) => n > 0).map(([status, n]) =>
        h("div", { class: "count" }, h("strong", { text: n }), badge(status))));
    const items = requests.recent || [];
    if (items.length === 0) mount(recent, h("li", { class: "muted" }, "No requests yet. ", h("a", { href: "/discover", "data-link": "" }, "Discover something")));
    else mount(recent, items.map((r) => h("li", { "data-request": r.id }, h("span", { class: "title", text: r.title }),
      r.source === "watchlist" ? h("small", { class: "muted", text: "from your watchlist" }) : null, badge(r.status))));
  };

  const downloadRows = new Map();
  const drawDownloads = (list) => {
    downloadRows.clear();
    if (!list || list.length === 0) {
      mount(downloads, h("li", { class: "muted", text: "Nothing downloading." }));
      return;
    }
    mount(downloads, list.map((d) => {
      const bar = progressBar(d.progress, `${d.title || d.url} progress`);
      downloadRows.set(d.id, bar);
      return h("li", { "data-download": d.id }, h("span", { class: "title", text: d.title || d.url }), badge(d.status), bar);
    }));
  };

  const drawAdded = (items) => {
    if (!items || items.length === 0) {
      mount(added, h("p", { class: "muted", text: "Nothing new, or Plex is not reachable." }));
      return;
    }
    mount(added, items.map((item) => h("figure", { class: "poster-card" }, poster(item.thumb, item.title),
      h("figcaption", {}, h("span", { text: item.title }), item.year ? h("small", { text: ` ${item.year}` }) : null))));
  };

  const loadDownloads = async (counts) => {
    try {
      const { data } = await api("/youtube/downloads", { query: { limit: 50 } });
      drawDownloads(data.filter((d) => ACTIVE.has(d.status)));
    } catch (e) {
      if (counts && (counts.active || counts.queued)) {
        mount(downloads, h("li", { text: `${counts.active || 0} downloading, ${counts.queued || 0} queued` }));
      } else if (e.status === 404) {
        drawDownloads([]);
      } else {
        mount(downloads, h("li", {}, errorBox(e)));
      }
    }
  };

  const load = async () => {
    try {
      const { data } = await api("/dashboard");
      drawServices(data.services);
      drawRequests(data.requests);
      drawAdded(data.recentlyAdded);
      if (data.notifications) app.setUnread(data.notifications.unread);
      await loadDownloads(data.downloads);
      return;
    } catch (e) {
      if (e.status !== 404 || e.code !== "NOT_FOUND") {
        mount(cards, errorBox(e, load));
        return;
      }
    }
    // No GET /dashboard on this server: the same page from the separate endpoints.
    const [svc, reqs, plex] = await Promise.allSettled([
      api("/services"),
      api("/media/requests", { query: { limit: 5 } }),
      api("/plex/recently-added", { query: { limit: 10 } }),
    ]);
    if (svc.status === "fulfilled") drawServices(svc.value.data);
    else mount(cards, errorBox(svc.reason, load));
    drawRequests(reqs.status === "fulfilled" ? { total: reqs.value.data.length, byStatus: {}, recent: reqs.value.data } : null);
    drawAdded(plex.status === "fulfilled" ? plex.value.data : []);
    await loadDownloads(null);
  };
  await load();

  app.on("service.status", (svc) => {
    if (!svc || !svc.name) return;
    if (services.has(svc.name)) {
      const merged = { ...svc };
      drawCard(merged);
    } else {
      cards.append(drawCard(svc));
      loadSpark(svc.name, svc.displayName);
    }
  });
  app.on("download.progress", (d) => {
    const bar = d && downloadRows.get(d.id);
    if (bar) bar.value = Math.round(d.progress || 0);
  });
  app.on("request.updated", load);
  app.on("download.updated", () => loadDownloads(null));
  app.on("lagged", load);
}
