// Admin: users (role, suspend, delete), services (edit, test connection, circuit breaker),
// requests (approve, decline) and problem reports (resolve or reopen with a comment), stats and performance (inline-SVG charts), the error log by
// correlation id, yt-dlp's cookies and extra options, the doctor's checks (what is broken and how to fix it), the
// database backups, and notifications (channel settings with a test send and a health line, the
// delivery log, announcements). Each tab has its own address (/admin/users, /admin/services, ...).

import { api } from "../api.js";
import { h, mount, loading, errorBox, badge, fmtDate, fmtAgo, fmtBytes, barChart, confirmButton, toast, busy } from "../ui.js";
import { titlePath, posterThumb } from "../request.js";

const TABS = [
  ["users", "Users"],
  ["services", "Services"],
  ["requests", "Requests"],
  ["stats", "Stats"],
  ["performance", "Performance"],
  ["errors", "Error log"],
  ["youtube", "YouTube"],
  ["doctor", "Doctor"],
  ["backups", "Backups"],
  ["notifications", "Notifications"],
];

export async function render(root, app, path) {
  const tab = (path.split("/")[2] || "users").toLowerCase();
  const current = TABS.find(([key]) => key === tab) ? tab : "users";
  const panel = h("div", { class: "panel", id: "admin-panel" });
  mount(root,
    h("h1", { id: "page-title", text: "Admin" }),
    h("nav", { class: "tabs", "aria-label": "Admin sections" }, TABS.map(([key, label]) =>
      h("a", { href: `/admin/${key}`, "data-link": "", class: "tab", "aria-current": key === current ? "page" : null }, label))),
    panel);
  mount(panel, loading());
  await PANELS[current](panel, app);
}

const PANELS = { users, services, requests, stats, performance, errors, youtube, doctor, backups, notifications };

async function users(panel, app) {
  const q = h("input", { id: "user-q", type: "search", placeholder: "Username or email", maxlength: 100 });
  const body = h("tbody", {});
  const footer = h("div", {});
  mount(panel,
    h("form", { class: "filters", role: "search", onsubmit: (e) => { e.preventDefault(); load(true); } },
      h("label", { for: "user-q" }, "Find"), q, h("button", { type: "submit" }, "Search")),
    h("div", { class: "table-wrap" }, h("table", { class: "table stack-mobile", id: "users-table" },
      h("thead", {}, h("tr", {}, ["User", "Role", "Status", "Requests", "Downloads", "Last sign-in", ""].map((t) => h("th", { scope: "col", text: t })))),
      body)),
    footer);
  let cursor = null;
  const row = (u) => {
    const self = u.id === app.session.user.id;
    const role = h("select", { "aria-label": `Role of ${u.username}`, "data-user-role": u.username, disabled: self },
      ["user", "admin"].map((r) => h("option", { value: r, selected: u.role === r }, r)));
    const status = h("select", { "aria-label": `Status of ${u.username}`, "data-user-status": u.username, disabled: self },
      ["active", "suspended"].map((s) => h("option", { value: s, selected: u.status === s }, s)));
    const patch = async (field, select, previous) => {
      select.disabled = true;
      try {
        const { data } = await api(`/admin/users/${encodeURIComponent(u.id)}`, { method: "PATCH", body: { [field]: select.value } });
        Object.assign(u, data || { [field]: select.value });
        toast(`${u.username}: ${field} is now ${select.value}.`);
      } catch (e) {
        select.value = previous;
        toast(e);
      } finally {
        select.disabled = false;
      }
    };
    role.addEventListener("change", () => patch("role", role, u.role));
    status.addEventListener("change", () => patch("status", status, u.status));
    const tr = h("tr", { "data-user": u.username },
      h("td", {}, h("strong", { text: u.name || u.username }), h("br"), h("small", { class: "muted", text: [u.username, u.email, u.plexUsername ? `Plex: ${u.plexUsername}` : null].filter(Boolean).join(" · ") })),
      h("td", { "data-label": "Role" }, role), h("td", { "data-label": "Status" }, status),
      h("td", { "data-label": "Requests", text: u.requestCount ?? "—" }), h("td", { "data-label": "Downloads", text: u.downloadCount ?? "—" }),
      h("td", { "data-label": "Last sign-in", text: fmtAgo(u.lastLoginAt) }),
      h("td", {}, self ? h("small", { class: "muted", text: "you" }) : confirmButton("Delete", "Delete for good?", async () => {
        try {
          await api(`/admin/users/${encodeURIComponent(u.id)}`, { method: "DELETE" });
          tr.remove();
          toast(`Deleted ${u.username}.`);
        } catch (e) {
          toast(e);
        }
      }, { "aria-label": `Delete ${u.username}` })));
    return tr;
  };
  const load = async (reset) => {
    mount(footer, loading());
    try {
      const { data, meta } = await api("/admin/users", { query: { q: q.value.trim(), cursor: reset ? undefined : cursor } });
      if (reset) body.replaceChildren();
      body.append(...data.map(row));
      cursor = meta.nextCursor || null;
      mount(footer, cursor ? h("button", { type: "button", onclick: () => load(false) }, "More users") : null);
    } catch (e) {
      mount(footer, errorBox(e, () => load(reset)));
    }
  };
  await load(true);
}

async function services(panel) {
  let configs;
  let breakers;
  try {
    [{ data: configs }, { data: breakers }] = await Promise.all([api("/admin/services"), api("/admin/integrations")]);
  } catch (e) {
    mount(panel, errorBox(e, () => services(panel)));
    return;
  }
  const breakerBox = (name) => {
    const b = breakers.find((x) => x.service === name);
    if (!b) return null;
    const box = h("div", { class: "breaker", "data-breaker": name },
      h("span", { text: configs.some((c) => c.name === name) ? "Circuit breaker: " : `${b.displayName || name}: ` }), badge(b.state === "closed" ? "up" : b.state === "open" ? "down" : "degraded", b.state.replace("_", "-")),
      b.consecutiveFailures ? h("small", { class: "muted", text: ` ${b.consecutiveFailures} failures in a row` }) : null,
      b.retryAt ? h("small", { class: "muted", text: ` · retry ${fmtDate(b.retryAt)}` }) : null);
    if (b.state !== "closed") {
      const reset = h("button", { type: "button" }, "Reset");
      reset.addEventListener("click", () => busy(reset, async () => {
        await api(`/admin/integrations/${encodeURIComponent(name)}/reset`, { method: "POST" });
        toast(`${b.displayName}: breaker closed.`);
        services(panel);
      }));
      box.append(" ", reset);
    }
    return box;
  };
  const form = (c) => {
    const id = (f) => `svc-${c.name}-${f}`;
    const url = h("input", { id: id("url"), type: "url", value: c.url || "", maxlength: 2048, placeholder: "http://127.0.0.1:…" });
    const key = h("input", { id: id("key"), type: "password", autocomplete: "off", placeholder: c.apiKey ? `${c.apiKey} (leave empty to keep)` : "none" });
    const enabled = h("input", { id: id("enabled"), type: "checkbox", checked: !!c.enabled });
    const timeout = h("input", { id: id("timeout"), type: "number", min: 100, max: 60000, step: 100, value: c.timeoutMs ?? 5000 });
    const slug = c.name === "uptime_kuma" ? h("input", { id: id("slug"), value: (c.options && c.options.slug) || "", maxlength: 200 }) : null;
    const result = h("div", { class: "result", "aria-live": "polite" });
    const settings = () => {
      const body = { url: url.value.trim(), enabled: enabled.checked, timeoutMs: Number(timeout.value) || undefined };
      if (key.value) body.apiKey = key.value;
      if (slug) body.options = { ...(c.options || {}), slug: slug.value.trim() };
      else if (c.options) body.options = c.options;
      return body;
    };
    const save = h("button", { type: "submit", class: "primary" }, "Save");
    const test = h("button", { type: "button" }, "Test connection");
    test.addEventListener("click", () => busy(test, async () => {
      mount(result, loading("Testing…"));
      try {
        const { data } = await api(`/admin/services/${c.name}/test`, { method: "POST", body: settings() });
        mount(result, data.ok
          ? h("p", { class: "ok", text: `Connected in ${data.latencyMs} ms${data.version ? ` (version ${data.version})` : ""}.` })
          : h("p", { class: "message warn", text: `Failed: ${data.error || "no answer"}` }));
      } catch (e) {
        mount(result, errorBox(e));
      }
    }));
    const f = h("form", { class: "card stack service-form", "data-service-form": c.name },
      h("h3", { text: c.displayName }),
      h("label", { for: id("url") }, "URL"), url,
      h("label", { for: id("key") }, c.name === "plex" ? "Token" : c.name === "uptime_kuma" ? "API key (optional: reads every monitor from /metrics)" : "API key"),
      key,
      slug ? h("label", { for: id("slug") }, "Status page slug") : null, slug,
      h("label", { for: id("timeout") }, "Timeout (ms)"), timeout,
      h("label", { class: "check", for: id("enabled") }, enabled, " Enabled"),
      h("div", { class: "row" }, save, test),
      c.webhookUrl ? h("p", { class: "muted" }, "Webhook URL for Seerr's webhook agent: ", h("code", { id: id("webhook"), text: c.webhookUrl })) : null,
      result, breakerBox(c.name),
      h("small", { class: "muted", text: `Saved ${fmtDate(c.updatedAt)}` }));
    f.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(save, async () => {
        const { data } = await api(`/admin/services/${c.name}`, { method: "PUT", body: settings() });
        Object.assign(c, data || {});
        key.value = "";
        mount(result, h("p", { class: "ok", text: "Saved. A check is running now." }));
        toast(`${c.displayName} saved.`);
      });
    });
    return f;
  };
  const others = breakers.filter((b) => !configs.some((c) => c.name === b.service));
  mount(panel, h("div", { class: "forms" }, configs.map(form)),
    others.length ? h("div", { class: "card" }, h("h3", { text: "Other integrations" }), others.map((b) => breakerBox(b.service))) : null);
}

async function requests(panel) {
  const status = h("select", { id: "admin-request-status" },
    ["pending", "approved", "available", "declined", "failed", ""].map((s) => h("option", { value: s }, s || "any status")));
  const list = h("ul", { class: "list", id: "admin-requests" });
  const footer = h("div", {});
  const problems = h("section", { "aria-labelledby": "admin-problems-title" });
  mount(panel, h("div", { class: "filters" }, h("label", { for: "admin-request-status" }, "Status"), status), list, footer, problems);
  let cursor = null;
  const row = (r) => {
    const actions = h("span", { class: "actions" });
    if (r.status === "pending") {
      const approve = h("button", { type: "button", class: "primary" }, "Approve");
      approve.addEventListener("click", () => busy(approve, async () => {
        const { data } = await api(`/admin/requests/${encodeURIComponent(r.id)}/approve`, { method: "POST" });
        li.replaceWith(row(data && data.id ? { ...r, ...data, requestedBy: data.requestedBy || r.requestedBy } : { ...r, status: "approved" }));
      }));
      const reason = h("input", { "aria-label": `Reason for declining ${r.title}`, placeholder: "Reason (optional)", maxlength: 500 });
      const decline = h("button", { type: "button", class: "danger" }, "Decline");
      decline.addEventListener("click", () => busy(decline, async () => {
        const { data } = await api(`/admin/requests/${encodeURIComponent(r.id)}/decline`, { method: "POST", body: { reason: reason.value.trim() || undefined } });
        li.replaceWith(row(data && data.id ? { ...r, ...data, requestedBy: data.requestedBy || r.requestedBy } : { ...r, status: "declined" }));
      }));
      actions.append(approve, reason, decline);
    }
    const href = titlePath(r.mediaType, r.tmdbId);
    const li = h("li", { "data-request": r.id, "data-status": r.status, class: "request-row" },
      posterThumb(r.posterPath, href, r.title),
      h("a", { class: "title", href, "data-link": "", text: r.title }),
      h("small", { class: "muted", text: `${r.mediaType === "tv" ? "TV" : "Movie"} · ${(r.requestedBy && r.requestedBy.username) || r.userId} · ${fmtDate(r.createdAt)}${r.source === "watchlist" ? " · from their Plex watchlist" : ""}` }),
      badge(r.status), actions);
    return li;
  };
  const load = async (reset) => {
    mount(footer, loading());
    try {
      const { data, meta } = await api("/admin/requests", { query: { status: status.value, cursor: reset ? undefined : cursor } });
      if (reset) list.replaceChildren();
      list.append(...data.map(row));
      cursor = meta.nextCursor || null;
      if (!list.children.length) mount(footer, h("p", { class: "muted", text: "No requests." }));
      else mount(footer, cursor ? h("button", { type: "button", onclick: () => load(false) }, "More") : null);
    } catch (e) {
      mount(footer, errorBox(e, () => load(reset)));
    }
  };
  status.addEventListener("change", () => load(true));
  await Promise.all([load(true), problemReports(problems)]);
}

const PROBLEM_TYPES = { video: "Video", audio: "Audio", subtitles: "Subtitles", other: "Other" };

/** Problem reports: open ones first; resolve (or reopen) with an optional comment that goes to
 *  Seerr and to the reporter. */
async function problemReports(section) {
  const status = h("select", { id: "admin-problem-status" },
    [["open", "open"], ["resolved", "resolved"], ["all", "any status"]].map(([v, label]) => h("option", { value: v }, label)));
  const list = h("ul", { class: "list problems", id: "admin-problems" });
  const footer = h("div", {});
  mount(section,
    h("h2", { id: "admin-problems-title", text: "Problem reports" }),
    h("div", { class: "filters" }, h("label", { for: "admin-problem-status" }, "Status"), status),
    list, footer);
  let cursor = null;
  const row = (p) => {
    const where = p.season && p.episode
      ? `S${String(p.season).padStart(2, "0")}E${String(p.episode).padStart(2, "0")}`
      : p.season ? `season ${p.season}` : "";
    const comment = h("input", { "aria-label": `Comment for ${p.username || "the reporter"} about ${p.title}`, placeholder: "Comment (optional)", maxlength: 2000 });
    const resolving = p.status === "open";
    const act = h("button", { type: "button", class: resolving ? "primary resolve-problem" : "reopen-problem" }, resolving ? "Resolve" : "Reopen");
    act.addEventListener("click", () => busy(act, async () => {
      const { data } = await api(`/admin/problems/${encodeURIComponent(p.id)}/${resolving ? "resolve" : "reopen"}`, {
        method: "POST", body: { comment: comment.value.trim() || undefined },
      });
      toast(resolving ? `Resolved the problem with ${p.title}.` : `Reopened the problem with ${p.title}.`);
      const shown = status.value === "all" || status.value === data.status;
      if (shown) li.replaceWith(row({ ...p, ...data, username: p.username }));
      else li.remove();
      if (!list.children.length) mount(footer, h("p", { class: "muted", text: "No problem reports." }));
    }));
    const li = h("li", { "data-problem": p.id, "data-status": p.status },
      h("span", { class: "title", text: [p.title, where].filter(Boolean).join(" · ") }),
      h("small", { class: "muted", text: `${PROBLEM_TYPES[p.type] || p.type} · ${p.username || p.userId} · ${fmtDate(p.createdAt)}` }),
      badge(p.status),
      h("span", { class: "comment", text: p.message }),
      h("span", { class: "actions" }, comment, act));
    return li;
  };
  const load = async (reset) => {
    mount(footer, loading());
    try {
      const { data, meta } = await api("/admin/problems", { query: { status: status.value, cursor: reset ? undefined : cursor } });
      if (reset) list.replaceChildren();
      list.append(...data.map(row));
      cursor = meta.nextCursor || null;
      if (!list.children.length) mount(footer, h("p", { class: "muted", text: "No problem reports." }));
      else mount(footer, cursor ? h("button", { type: "button", onclick: () => load(false) }, "More") : null);
    } catch (e) {
      mount(footer, errorBox(e, () => load(reset)));
    }
  };
  status.addEventListener("change", () => load(true));
  await load(true);
}

function fmtUptime(seconds) {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : `${m} min`;
}

function tiles(pairs) {
  return h("div", { class: "tiles" }, pairs.map(([label, value]) =>
    h("div", { class: "tile" }, h("strong", { text: value ?? "—" }), h("span", { text: label }))));
}

async function stats(panel) {
  try {
    const { data } = await api("/admin/stats");
    const r = data.requests || {};
    const d = data.downloads || {};
    mount(panel,
      tiles([
        ["users", data.users && data.users.total], ["active", data.users && data.users.active], ["admins", data.users && data.users.admins],
        ["requests", r.total], ["errors in 24 h", data.errors24h ?? (data.errors && data.errors.last24h)],
        ["database", data.database ? fmtBytes(data.database.sizeBytes) : null],
        ["WAL", data.database ? fmtBytes(data.database.walBytes) : null],
        ["downloaded", d.bytes !== undefined ? fmtBytes(d.bytes) : null],
        ["up for", data.uptimeSeconds !== undefined ? fmtUptime(data.uptimeSeconds) : null],
        ["version", data.version],
      ]),
      h("h2", { text: "Requests per day (30 days)" }),
      barChart((r.perDay || []).map((p) => ({ label: p.date, value: p.count })), { label: "Requests per day over 30 days" }),
      h("h2", { text: "Requests by status" }),
      tiles(Object.entries(r.byStatus || {}).map(([k, v]) => [k.replace(/_/g, " "), v])),
      r.byType ? tiles(Object.entries(r.byType).map(([k, v]) => [k === "tv" ? "TV requests" : `${k} requests`, v])) : null,
      data.cache ? [h("h2", { text: "Cache hit rates" }),
        tiles(Object.entries(data.cache).map(([name, c]) => [name.replace(/_/g, " "), `${Math.round((c.hitRate || 0) * 100)}%`]))] : null,
      d.byStatus ? [h("h2", { text: "Downloads" }), tiles(Object.entries(d.byStatus).map(([k, v]) => [k, v]))] : null,
      h("details", {}, h("summary", { text: "Everything" }), h("pre", { class: "raw", text: JSON.stringify(data, null, 2) })));
  } catch (e) {
    mount(panel, errorBox(e, () => stats(panel)));
  }
}

async function performance(panel, app) {
  const windowSelect = h("select", { id: "perf-window" }, [1, 5, 15, 60].map((m) => h("option", { value: m, selected: m === 5 }, `${m} min`)));
  const body = h("div", {});
  mount(panel, h("div", { class: "filters" }, h("label", { for: "perf-window" }, "Window"), windowSelect), body);
  const load = async () => {
    try {
      const { data } = await api("/admin/performance", { query: { window: windowSelect.value } });
      mount(body,
        tiles([
          ["requests", data.totalRequests], ["per second", data.requestsPerSecond], ["average ms", data.averageMs],
          ["p95 ms", data.p95Ms], ["slow", data.slowRequests], ["error rate", `${((data.errorRate || 0) * 100).toFixed(1)}%`],
          ["memory", fmtBytes(data.memory && data.memory.rssBytes)],
        ]),
        h("h2", { text: "Latency (ms)" }),
        barChart([["p50", data.p50Ms], ["average", data.averageMs], ["p95", data.p95Ms], ["p99", data.p99Ms]].map(([label, value]) => ({ label, value: Math.round((value || 0) * 100) / 100 })),
          { label: "Latency percentiles in milliseconds", unit: " ms", height: 120 }),
        h("h2", { text: "Slowest routes" }),
        h("div", { class: "table-wrap" }, h("table", { class: "table" },
          h("thead", {}, h("tr", {}, ["Route", "Count", "Average ms", "p95 ms"].map((t) => h("th", { scope: "col", text: t })))),
          h("tbody", {}, (data.topSlowPaths || []).map((p) => h("tr", {}, h("td", {}, h("code", { text: p.route })), h("td", { text: p.count }), h("td", { text: p.averageMs }), h("td", { text: p.p95Ms })))))),
        h("h2", { text: "Caches" }),
        tiles(Object.entries(data.cache || {}).map(([name, c]) => [`${name} hit rate`, `${Math.round((c.hitRate || 0) * 100)}%`])));
    } catch (e) {
      mount(body, errorBox(e, load));
    }
  };
  windowSelect.addEventListener("change", load);
  const timer = setInterval(load, 10000);
  app.onLeave(() => clearInterval(timer));
  await load();
}

async function errors(panel) {
  const cid = h("input", { id: "error-cid", placeholder: "Correlation id", maxlength: 64 });
  const code = h("input", { id: "error-code", placeholder: "Code, e.g. INTERNAL_ERROR", maxlength: 64 });
  const list = h("div", { id: "error-list" });
  const form = h("form", { class: "filters", role: "search" },
    h("label", { for: "error-cid" }, "Correlation id"), cid,
    h("label", { for: "error-code" }, "Code"), code,
    h("button", { type: "submit" }, "Show"));
  mount(panel, form, list);
  const table = (rows) => rows.length
    ? h("div", { class: "table-wrap" }, h("table", { class: "table" },
      h("thead", {}, h("tr", {}, ["When", "Code", "Status", "Request", "Message", "Correlation id"].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, rows.map((e) => h("tr", {},
        h("td", { text: fmtDate(e.createdAt) }), h("td", {}, h("code", { text: e.code })), h("td", { text: e.statusCode ?? e.status ?? "" }),
        h("td", { text: [e.method, e.path].filter(Boolean).join(" ") }), h("td", { text: e.message || "" }),
        h("td", {}, h("button", { type: "button", class: "link", onclick: () => { cid.value = e.correlationId; load(); } }, e.correlationId)))))))
    : h("p", { class: "muted", text: "No errors logged." });
  const load = async () => {
    mount(list, loading());
    try {
      if (cid.value.trim()) {
        const { data } = await api(`/admin/errors/${encodeURIComponent(cid.value.trim())}`);
        mount(list, table(Array.isArray(data) ? data : data.entries || data.errors || [data]));
      } else {
        const { data } = await api("/admin/errors", { query: { code: code.value.trim() } });
        mount(list, table(data));
      }
    } catch (e) {
      mount(list, errorBox(e));
    }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    load();
  });
  await load();
}

// What every yt-dlp run gets (GET /admin/youtube/settings): a cookies file (uploaded here, kept
// 0600 in the data dir and never shown again) and the extra options, one per line, checked by the
// server against the options that would break the worker.
async function youtube(panel) {
  const SOURCES = { uploaded: "an uploaded file", config: "youtube.cookies_file" };
  const status = h("p", { id: "yt-cookies-source" });
  const file = h("input", { type: "file", id: "yt-cookies-file", accept: ".txt,text/plain" });
  const remove = h("button", { type: "button", id: "yt-cookies-remove" }, "Remove uploaded file");
  const args = h("textarea", { id: "yt-extra-args", rows: "4", spellcheck: "false", "aria-describedby": "yt-extra-args-help" });
  const argsSource = h("p", { class: "muted", id: "yt-extra-args-source" });
  const save = h("button", { type: "submit", class: "primary" }, "Save options");
  const reset = h("button", { type: "button", id: "yt-extra-args-reset" }, "Use the configuration's");
  const result = h("p", { class: "result", "aria-live": "polite" });
  const show = (data) => {
    status.textContent = data.cookiesSource ? `Cookies: ${SOURCES[data.cookiesSource] || data.cookiesSource}.` : "Cookies: none.";
    status.dataset.source = data.cookiesSource || "none";
    remove.hidden = data.cookiesSource !== "uploaded";
    args.value = data.extraArgs.join("\n");
    argsSource.textContent = data.extraArgsSource === "admin" ? "Set here (over youtube.extra_args)." : "From the configuration (youtube.extra_args).";
    argsSource.dataset.source = data.extraArgsSource;
  };
  const fail = (e) => {
    const fields = e && e.details && e.details.fields;
    mount(result, errorBox(fields ? Object.assign(e, { message: Object.values(fields).join(" ") }) : e));
  };
  file.addEventListener("change", async () => {
    const chosen = file.files && file.files[0];
    if (!chosen) return;
    try {
      const { data } = await api("/admin/youtube/cookies", { method: "PUT", body: { content: await chosen.text() } });
      show(data);
      mount(result, h("span", { text: "Cookies file saved." }));
    } catch (e) {
      fail(e);
    }
    file.value = "";
  });
  remove.addEventListener("click", () => busy(remove, async () => {
    try {
      show((await api("/admin/youtube/cookies", { method: "DELETE" })).data);
      mount(result, h("span", { text: "Uploaded cookies file removed." }));
    } catch (e) {
      fail(e);
    }
  }));
  const form = h("form", { id: "yt-extra-args-form", class: "stack" },
    h("label", { for: "yt-extra-args" }, "Extra yt-dlp options, one per line"),
    args,
    h("p", { class: "muted", id: "yt-extra-args-help", text: "For example --js-runtimes and node on two lines. Options that would break downloads (output, paths, exec, print, progress, config files) are refused." }),
    argsSource,
    h("div", { class: "row" }, save, reset));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    busy(save, async () => {
      const list = args.value.split("\n").map((l) => l.trim()).filter((l) => l !== "");
      try {
        show((await api("/admin/youtube/extra-args", { method: "PUT", body: { args: list } })).data);
        mount(result, h("span", { text: "Options saved." }));
      } catch (err) {
        fail(err);
      }
    });
  });
  reset.addEventListener("click", () => busy(reset, async () => {
    try {
      show((await api("/admin/youtube/extra-args", { method: "PUT", body: { args: null } })).data);
      mount(result, h("span", { text: "Options from the configuration again." }));
    } catch (e) {
      fail(e);
    }
  }));
  mount(panel, loading());
  try {
    const { data } = await api("/admin/youtube/settings");
    mount(panel,
      h("section", { class: "card stack" },
        h("h2", { text: "Cookies for yt-dlp" }),
        h("p", { class: "muted", text: "Some videos (age-restricted, members-only) and many servers need YouTube cookies: export cookies.txt (Netscape format) from a browser signed in to YouTube. The file is stored readable by MediaNest only and never shown again." }),
        status,
        h("label", { for: "yt-cookies-file" }, "Upload cookies.txt"),
        file,
        h("div", { class: "row" }, remove)),
      h("section", { class: "card stack" }, h("h2", { text: "yt-dlp options" }), form),
      result);
    show(data);
  } catch (e) {
    mount(panel, errorBox(e, () => youtube(panel)));
  }
}

// The doctor's checks (GET /admin/doctor): one row per check with its result and, for a warning
// or a failure, the fix. A run starts programs and calls every service, so it runs on demand.
async function doctor(panel) {
  const BADGE = { ok: "up", warn: "degraded", fail: "down", skip: "unknown" };
  const LABEL = { ok: "ok", warn: "warning", fail: "FAIL", skip: "skipped" };
  const result = h("div", { id: "doctor-result", "aria-live": "polite" });
  const run = h("button", { type: "button", class: "primary", id: "doctor-run" }, "Run checks");
  const check = () => busy(run, async () => {
    mount(result, loading("Checking…"));
    try {
      const { data } = await api("/admin/doctor");
      const failed = data.checks.filter((c) => c.status === "fail").length;
      mount(result,
        h("p", { class: data.passed ? "ok" : "message warn", text: data.passed ? "Everything the portal needs works." : `${failed} check${failed === 1 ? "" : "s"} failed: each says how to fix it.` }),
        h("div", { class: "table-wrap" }, h("table", { class: "table stack-mobile", id: "doctor-table" },
          h("thead", {}, h("tr", {}, ["Check", "Result", "Details"].map((t) => h("th", { scope: "col", text: t })))),
          h("tbody", {}, data.checks.map((c) => h("tr", { "data-check": c.name, "data-status": c.status },
            h("th", { scope: "row", text: c.name }),
            h("td", {}, badge(BADGE[c.status] || "unknown", LABEL[c.status] || c.status)),
            h("td", {}, h("span", { text: c.detail }),
              c.fix ? h("p", { class: "fix" }, h("strong", { text: "Fix: " }), c.fix) : null)))))));
    } catch (e) {
      mount(result, errorBox(e, check));
    }
  });
  run.addEventListener("click", check);
  mount(panel,
    h("p", { class: "muted", text: "Checks yt-dlp, a JavaScript runtime, ffmpeg, the download and data folders, each service with the saved settings, and the webhook secret. The same checks run from the command line: medianest doctor." }),
    h("div", { class: "row" }, run),
    result);
  check();
}

// Backups (GET/POST /admin/backups): the files in backup.dir with size and time, the schedule,
// the last failure, "Back up now", and a download link per file (a plain GET with the session
// cookie; the server sends it as an attachment).
async function backups(panel) {
  const SCHEDULE = { off: "off", hourly: "every hour", daily: "every day", weekly: "every week" };
  const body = h("div", { id: "backups-body", "aria-live": "polite" });
  const now = h("button", { type: "button", class: "primary", id: "backup-now" }, "Back up now");
  const load = async () => {
    try {
      const { data } = await api("/admin/backups");
      mount(body,
        h("p", { class: "muted", text: `Scheduled: ${SCHEDULE[data.schedule] || data.schedule}, keeping the newest ${data.keep || "all"}, in ${data.dir}.` }),
        data.lastError ? h("p", { class: "message warn", id: "backup-error", role: "alert", text: `The last backup failed (${fmtDate(data.lastError.at)}): ${data.lastError.message}. It is tried again at the next slot.` }) : null,
        data.backups.length
          ? h("div", { class: "table-wrap" }, h("table", { class: "table stack-mobile", id: "backups-table" },
            h("thead", {}, h("tr", {}, ["Backup", "Taken", "Size", ""].map((t) => h("th", { scope: "col", text: t })))),
            h("tbody", {}, data.backups.map((b) => h("tr", { "data-name": b.name },
              h("th", { scope: "row" }, h("code", { text: b.name }), b.kind === "pre-migration" ? h("span", { class: "muted", text: " (before a migration)" }) : null),
              h("td", { text: fmtDate(b.createdAt) }),
              h("td", { text: fmtBytes(b.size) }),
              h("td", {}, h("a", { href: `/api/v1/admin/backups/${encodeURIComponent(b.name)}`, download: b.name, class: "button" }, "Download")))))))
          : h("p", { class: "muted", id: "backups-empty", text: "No backups yet." }));
    } catch (e) {
      mount(body, errorBox(e, load));
    }
  };
  now.addEventListener("click", () => busy(now, async () => {
    try {
      const { data } = await api("/admin/backups", { method: "POST" });
      toast(`Backed up: ${data.name}`);
    } catch (e) {
      toast(e);
    }
    await load();
  }));
  mount(panel,
    h("p", { class: "muted", text: "Copies of the database, checked before they are kept. Restore one with the server stopped: medianest restore FILE (see the README)." }),
    h("div", { class: "row" }, now),
    body);
  await load();
}

// Notifications (GET /admin/notifications/channels): one card per channel with its settings
// (secrets are write-only: the server only says whether one is set, and one is sent only when
// typed), Save, "Send test" and the health line from the delivery log; then an announcement to
// every active user, and the delivery log itself.
const CHANNELS = {
  email: {
    title: "Email",
    fields: [["host", "SMTP host"], ["port", "Port", "number"], ["security", "Security", ["none", "starttls", "tls"]],
      ["username", "Username"], ["password", "Password", "secret"], ["from", "From address"]],
    to: "Send a test to (email address)",
  },
  ntfy: { title: "ntfy", fields: [["url", "Server URL", "url"], ["token", "Access token (optional)", "secret"]], to: "Topic" },
  gotify: { title: "Gotify", fields: [["url", "Server URL", "url"]], to: "Application token" },
  discord: { title: "Discord", fields: [], to: "Discord webhook URL" },
  webhook: { title: "Webhook", fields: [["allowedHosts", "Allowed hosts, one per line (none: webhooks are off)", "lines"]], to: "Webhook URL" },
  webpush: { title: "Web Push", fields: [["subject", "Subject (mailto: or https:// URL)"]], to: null },
};
const DELIVERY_BADGE = { pending: "pending", sending: "processing", delivered: "completed", failed: "failed", skipped: "unknown" };

function clock(iso) {
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** "12 delivered in 24 h · 1 retrying · last error 10:42: HTTP 500". */
function healthText(health) {
  if (!health) return "";
  const parts = [`${health.delivered24h} delivered in 24 h`];
  if (health.failed24h) parts.push(`${health.failed24h} failed`);
  if (health.retrying) parts.push(`${health.retrying} retrying`);
  const waiting = health.pending - health.retrying;
  if (waiting > 0) parts.push(`${waiting} waiting`);
  if (health.lastError) parts.push(`last error ${clock(health.lastErrorAt)}: ${health.lastError}`);
  else if (health.lastDeliveredAt) parts.push(`last delivered ${fmtAgo(health.lastDeliveredAt)}`);
  return parts.join(" · ");
}

/** Shows an envelope's field errors next to their inputs (`errors`: field -> element); returns
 * the ones that have no place, as text. */
function showFieldErrors(errors, e) {
  for (const el of Object.values(errors)) el.textContent = "";
  const fields = (e && e.details && e.details.fields) || {};
  const rest = [];
  for (const [key, reason] of Object.entries(fields)) {
    const el = errors[key.replace(/\[\d+\]$/, "")];
    if (el) el.textContent = el.textContent ? `${el.textContent} ${reason}` : `${key.replace(/^\w+/, "")} ${reason}`.trim();
    else rest.push(`${key} ${reason}`);
  }
  return rest.join("; ");
}

/** The failed test's story: the upstream's status or SMTP code and its message. */
function upstreamText(e) {
  const d = (e && e.details) || {};
  const code = d.upstreamStatus ? `HTTP ${d.upstreamStatus}` : d.smtpCode ? `SMTP ${d.smtpCode}` : null;
  const detail = [code, d.upstreamMessage || (d.reason ? d.reason : null)].filter(Boolean).join(": ");
  return detail ? `${e.message} ${detail}` : e.message;
}

function channelCard(c) {
  const spec = CHANNELS[c.kind];
  const id = (f) => `nc-${c.kind}-${f}`;
  const errors = {};
  const inputs = {};
  const errorFor = (field) => (errors[field] = h("small", { class: "field-error", id: id(`${field}-error`), "aria-live": "polite" }));
  const enabled = h("input", { id: id("enabled"), type: "checkbox", checked: !!c.enabled });
  const controls = [];
  let clearSecret = null;
  for (const [field, label, type] of spec.fields) {
    let input;
    if (Array.isArray(type)) {
      input = h("select", { id: id(field) }, type.map((v) => h("option", { value: v, selected: c[field] === v }, v)));
    } else if (type === "lines") {
      input = h("textarea", { id: id(field), rows: "3", spellcheck: "false" });
      input.value = (c[field] || []).join("\n");
    } else if (type === "secret") {
      const set = !!c[`${field}Set`];
      input = h("input", { id: id(field), type: "password", autocomplete: "new-password", placeholder: set ? "set (leave empty to keep)" : "not set" });
      if (set) clearSecret = [field, h("input", { id: id(`${field}-clear`), type: "checkbox" })];
    } else {
      input = h("input", { id: id(field), type: type === "number" ? "number" : type === "url" ? "url" : "text", value: c[field] ?? "", maxlength: 2048 });
    }
    inputs[field] = [input, type];
    controls.push(h("label", { for: id(field) }, label), input, errorFor(field));
    if (clearSecret && clearSecret[0] === field) controls.push(h("label", { class: "check", for: id(`${field}-clear`) }, clearSecret[1], ` Remove the stored ${field}`));
  }
  errorFor("enabled");
  const settings = () => {
    const body = { enabled: enabled.checked };
    for (const [field, [input, type]] of Object.entries(inputs)) {
      if (type === "secret") {
        if (input.value) body[field] = input.value;
        else if (clearSecret && clearSecret[0] === field && clearSecret[1].checked) body[field] = null;
      } else if (type === "number") body[field] = input.value === "" ? null : Number(input.value);
      else if (type === "lines") body[field] = input.value.split("\n").map((l) => l.trim()).filter(Boolean);
      else body[field] = input.value.trim();
    }
    return body;
  };
  const result = h("div", { class: "result", "aria-live": "polite", id: id("result") });
  const health = h("p", { class: "muted", id: id("health"), "data-health": c.kind, text: healthText(c.health) });
  const save = h("button", { type: "submit", class: "primary", id: id("save") }, "Save");
  const form = h("form", { class: "stack", id: id("form") },
    h("label", { class: "check", for: id("enabled") }, enabled, " Enabled"), errors.enabled,
    controls,
    h("div", { class: "row" }, save),
    result);
  const card = h("section", { class: "card stack", "data-channel": c.kind }, h("h3", { text: spec.title }), form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(save, async () => {
      try {
        const { data } = await api(`/admin/notifications/channels/${c.kind}`, { method: "PUT", body: settings() });
        showFieldErrors(errors, null);
        for (const [field, [input, type]] of Object.entries(inputs)) {
          if (type === "secret") {
            input.value = "";
            input.placeholder = data[`${field}Set`] ? "set (leave empty to keep)" : "not set";
          }
        }
        mount(result, h("p", { class: "ok", text: "Saved." }));
      } catch (e) {
        const rest = showFieldErrors(errors, e);
        mount(result, errorBox(rest ? Object.assign(e, { message: `${e.message} ${rest}` }) : e));
      }
    });
  });
  let test = null;
  if (spec.to) {
    const to = h("input", { id: id("to"), maxlength: 2048 });
    const send = h("button", { type: "submit", id: id("test") }, "Send test");
    const outcome = h("div", { class: "result", "aria-live": "polite", id: id("test-result") });
    test = h("form", { class: "row", "data-channel-test": c.kind },
      h("label", { for: id("to") }, spec.to), to, send);
    test.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(send, async () => {
        mount(outcome, loading("Sending…"));
        try {
          await api(`/admin/notifications/channels/${c.kind}/test`, { method: "POST", body: { to: to.value.trim() } });
          mount(outcome, h("p", { class: "ok", text: "Delivered." }));
        } catch (e) {
          const fields = e.details && e.details.fields;
          mount(outcome, errorBox(fields ? Object.assign(e, { message: Object.entries(fields).map(([k, v]) => `${k} ${v}`).join("; ") }) : Object.assign(e, { message: upstreamText(e) })));
        }
      });
    });
    card.append(test, outcome);
  } else {
    card.append(h("p", { class: "muted", text: "Each person subscribes a browser or phone from their notification settings." }));
  }
  card.append(health);
  return card;
}

function announcementForm() {
  const errors = {};
  const title = h("input", { id: "announce-title", maxlength: 120, required: true });
  const message = h("textarea", { id: "announce-message", rows: "4", maxlength: 2000, required: true });
  const send = h("button", { type: "submit", class: "primary", id: "announce-send" }, "Send to everyone");
  const result = h("div", { class: "result", id: "announce-result", "aria-live": "polite" });
  errors.title = h("small", { class: "field-error", id: "announce-title-error" });
  errors.message = h("small", { class: "field-error", id: "announce-message-error" });
  const form = h("form", { class: "card stack", id: "announce-form" },
    h("p", { class: "muted", text: "Every active user gets it in the bell, and on the channels they chose for announcements." }),
    h("label", { for: "announce-title" }, "Title"), title, errors.title,
    h("label", { for: "announce-message" }, "Message"), message, errors.message,
    h("div", { class: "row" }, send), result);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(send, async () => {
      try {
        const { data } = await api("/admin/announcements", { method: "POST", body: { title: title.value, message: message.value } });
        showFieldErrors(errors, null);
        title.value = "";
        message.value = "";
        mount(result, h("p", { class: "ok", "data-recipients": data.recipients, text: `Sent to ${data.recipients} ${data.recipients === 1 ? "person" : "people"}.` }));
      } catch (e) {
        const rest = showFieldErrors(errors, e);
        mount(result, errorBox(rest ? Object.assign(e, { message: `${e.message} ${rest}` }) : e));
      }
    });
  });
  return form;
}

function deliveryLog() {
  const status = h("select", { id: "delivery-status" },
    ["", "pending", "sending", "delivered", "failed", "skipped"].map((s) => h("option", { value: s }, s || "any status")));
  const channel = h("select", { id: "delivery-channel" },
    ["", ...Object.keys(CHANNELS)].map((k) => h("option", { value: k }, k ? CHANNELS[k].title : "any channel")));
  const body = h("tbody", {});
  const footer = h("div", {});
  let cursor = null;
  const row = (d) => h("tr", { "data-delivery": d.id, "data-status": d.status },
    h("td", { "data-label": "When", text: fmtDate(d.createdAt) }),
    h("td", { "data-label": "User", text: d.username }),
    h("td", { "data-label": "Channel", text: (CHANNELS[d.channel] && CHANNELS[d.channel].title) || d.channel }),
    h("td", { "data-label": "Event" }, h("code", { text: d.event })),
    h("td", { "data-label": "Title", text: d.title }),
    h("td", { "data-label": "Status" }, badge(DELIVERY_BADGE[d.status] || "unknown", d.status),
      d.collapsed ? h("small", { class: "muted", text: ` +${d.collapsed} folded` }) : null),
    h("td", { "data-label": "Attempts", text: d.attempts }),
    h("td", { "data-label": "Details", text: d.lastError || (d.deliveredAt ? `delivered ${fmtDate(d.deliveredAt)}` : d.nextAttemptAt ? `next try ${fmtDate(d.nextAttemptAt)}` : "") }));
  const load = async (reset) => {
    mount(footer, loading());
    try {
      const { data, meta } = await api("/admin/notifications/deliveries", { query: { status: status.value, channel: channel.value, cursor: reset ? undefined : cursor } });
      if (reset) body.replaceChildren();
      body.append(...data.map(row));
      cursor = meta.nextCursor || null;
      if (!body.children.length) mount(footer, h("p", { class: "muted", id: "deliveries-empty", text: "No deliveries." }));
      else mount(footer, cursor ? h("button", { type: "button", id: "deliveries-more", onclick: () => load(false) }, "Load more") : null);
    } catch (e) {
      mount(footer, errorBox(e, () => load(reset)));
    }
  };
  status.addEventListener("change", () => load(true));
  channel.addEventListener("change", () => load(true));
  load(true);
  return h("section", { id: "delivery-log" },
    h("div", { class: "filters" },
      h("label", { for: "delivery-status" }, "Status"), status,
      h("label", { for: "delivery-channel" }, "Channel"), channel),
    h("div", { class: "table-wrap" }, h("table", { class: "table stack-mobile", id: "deliveries-table" },
      h("thead", {}, h("tr", {}, ["When", "User", "Channel", "Event", "Title", "Status", "Attempts", "Details"].map((t) => h("th", { scope: "col", text: t })))),
      body)),
    footer);
}

async function notifications(panel) {
  let channels;
  try {
    ({ data: channels } = await api("/admin/notifications/channels"));
  } catch (e) {
    mount(panel, errorBox(e, () => notifications(panel)));
    return;
  }
  mount(panel,
    h("h2", { text: "Channels" }),
    h("p", { class: "muted", text: "Set up how notifications leave MediaNest; each person then picks their own channels and events. \"Send test\" sends one message now with the saved settings." }),
    h("div", { class: "forms", id: "notification-channels" }, channels.filter((c) => CHANNELS[c.kind]).map(channelCard)),
    h("h2", { text: "Announcement" }),
    announcementForm(),
    h("h2", { text: "Delivery log" }),
    deliveryLog());
}
