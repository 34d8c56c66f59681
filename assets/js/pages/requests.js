// My requests: the Plex watchlist switch (GET/PUT /me/watchlist), filters, a list that loads
// the next page (cursor) as it scrolls into view, each row with its poster and a link to its title
// page, status badges kept live by `request.updated`, and delete while pending. Requests the
// watchlist sync made say "from your watchlist". Below it, "My problem reports": what the user
// reported about titles on the server, their status and the replies, kept fresh by the
// `problem.*` notifications; an available request has a "Report a problem" button that opens
// the report dialog.

import { api } from "../api.js";
import { h, mount, loading, errorBox, badge, fmtDate, fmtAgo, confirmButton, toast, busy } from "../ui.js";
import { titlePath, posterThumb } from "../request.js";
import { openReportDialog } from "../report.js";

/** The watchlist panel: the switch and what the sync last did; nothing when the admin turned it off. */
async function watchlistPanel(panel) {
  let data;
  try {
    data = (await api("/me/watchlist")).data;
  } catch (e) {
    mount(panel, errorBox(e, () => watchlistPanel(panel)));
    return;
  }
  if (!data.available) {
    panel.replaceChildren();
    return;
  }
  if (!data.plexLinked) {
    mount(panel, h("p", { class: "muted", id: "watchlist-state", text: "Sign in with Plex to have what you add to your Plex watchlist requested for you." }));
    return;
  }
  const box = h("input", { type: "checkbox", id: "watchlist-enabled", checked: data.enabled });
  const state = h("small", { class: "muted", id: "watchlist-state", "aria-live": "polite" });
  if (data.paused) {
    state.textContent = data.pausedReason === "token_expired"
      ? "Paused: Plex no longer accepts your sign-in. Sign in with Plex again to resume."
      : "Paused: your account has no Plex sign-in. Sign in with Plex to resume.";
    state.classList.add("warn");
  } else if (data.enabled) {
    const parts = [data.lastSyncAt ? `Last checked ${fmtAgo(data.lastSyncAt)}` : "Checking soon"];
    if (data.lastResult === "failed") parts.push("Plex or Seerr did not answer; trying again later");
    if (data.waitingForQuota) parts.push("some titles wait for your request quota");
    state.textContent = parts.join(" · ") + ".";
  } else {
    state.textContent = "Off: new titles on your Plex watchlist are not requested.";
  }
  box.addEventListener("change", async () => {
    box.disabled = true;
    try {
      await api("/me/watchlist", { method: "PUT", body: { enabled: box.checked } });
      toast(box.checked ? "Titles you add to your Plex watchlist will be requested." : "Watchlist requests are off.");
    } catch (e) {
      box.checked = !box.checked;
      toast(e);
    } finally {
      box.disabled = false;
    }
    watchlistPanel(panel);
  });
  mount(panel, h("div", { class: "row" },
    h("label", { for: "watchlist-enabled", class: "check" }, box, " Request what I add to my Plex watchlist"),
    state));
}

const STATUSES = ["", "pending", "approved", "processing", "partially_available", "available", "declined", "failed"];

export async function render(root, app) {
  const status = h("select", { id: "filter-status", name: "status" }, STATUSES.map((s) => h("option", { value: s }, s ? s.replace(/_/g, " ") : "Any status")));
  const type = h("select", { id: "filter-type", name: "mediaType" },
    h("option", { value: "" }, "Movies and TV"), h("option", { value: "movie" }, "Movies"), h("option", { value: "tv" }, "TV"));
  const q = h("input", { id: "filter-q", type: "search", name: "q", placeholder: "Title contains", maxlength: 100 });
  const filters = h("form", { class: "filters", role: "search" },
    h("label", { for: "filter-status" }, "Status"), status,
    h("label", { for: "filter-type" }, "Type"), type,
    h("label", { for: "filter-q" }, "Title"), q);
  const list = h("ul", { class: "list requests", id: "request-list", "aria-live": "polite" });
  const footer = h("div", { class: "footer" });
  const watchPanel = h("section", { class: "watchlist-panel", id: "watchlist-panel", "aria-label": "Plex watchlist" });
  const problems = problemSection(app);
  mount(root, h("h1", { id: "page-title", text: "My requests" }), watchPanel, filters, list, footer, problems.section);
  watchlistPanel(watchPanel);

  const rows = new Map();
  let cursor = null;
  let loadingMore = false;
  let generation = 0;

  const row = (r) => {
    const badgeEl = badge(r.status);
    const actions = h("span", { class: "actions" });
    if (r.status === "pending") {
      actions.append(confirmButton("Delete", "Really delete?", async () => {
        try {
          await api(`/media/requests/${encodeURIComponent(r.id)}`, { method: "DELETE" });
          // The live event may have redrawn the row already: remove whichever is shown.
          const shown = rows.get(r.id);
          (shown ? shown.li : li).remove();
          rows.delete(r.id);
          toast(`Deleted the request for ${r.title}.`);
        } catch (e) {
          toast(e);
        }
      }, { "aria-label": `Delete the request for ${r.title}` }));
    }
    if (r.status === "available" || r.status === "partially_available") {
      const report = h("button", { type: "button", class: "report-problem", "aria-label": `Report a problem with ${r.title}` }, "Report a problem");
      report.addEventListener("click", async () => {
        report.disabled = true;
        try {
          let seasons = [];
          if (r.mediaType === "tv") {
            const { data } = await api(`/media/tv/${encodeURIComponent(r.tmdbId)}`);
            seasons = (data.seasons || []).map((x) => ({ seasonNumber: x.seasonNumber, episodeCount: x.episodeCount }));
          }
          report.disabled = false;
          if (await openReportDialog({ mediaType: r.mediaType, tmdbId: r.tmdbId, title: r.title, seasons })) problems.reload();
        } catch (e) {
          toast(e);
        } finally {
          report.disabled = false;
        }
      });
      actions.append(report);
    }
    const href = titlePath(r.mediaType, r.tmdbId);
    const li = h("li", { "data-request": r.id, "data-status": r.status, class: "request-row" },
      posterThumb(r.posterPath, href, r.title),
      h("a", { class: "title", href, "data-link": "", text: r.title }),
      h("small", { class: "muted", text: `${r.mediaType === "tv" ? "TV" : "Movie"} · ${fmtDate(r.createdAt)}${r.source === "watchlist" ? " · from your watchlist" : ""}` }),
      badgeEl, actions);
    rows.set(r.id, { li, badgeEl, request: r });
    return li;
  };

  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadMore();
  });
  app.onLeave(() => observer.disconnect());

  const loadMore = async (reset) => {
    if (loadingMore && !reset) return;
    const gen = reset ? ++generation : generation;
    if (!reset && cursor === null) return;
    loadingMore = true;
    mount(footer, loading("Loading requests…"));
    try {
      const { data, meta } = await api("/media/requests", {
        query: { status: status.value, mediaType: type.value, q: q.value.trim(), limit: 20, cursor: reset ? undefined : cursor },
      });
      if (gen !== generation) return;
      if (reset) {
        list.replaceChildren();
        rows.clear();
      }
      list.append(...data.map(row));
      cursor = meta.nextCursor || null;
      if (list.children.length === 0) mount(footer, h("p", { class: "muted" }, "No requests here. ", h("a", { href: "/discover", "data-link": "" }, "Discover something to request")));
      else if (cursor) {
        const button = h("button", { type: "button", class: "more", onclick: () => loadMore() }, "Load more");
        mount(footer, button);
        observer.disconnect();
        observer.observe(button);
      } else mount(footer, h("p", { class: "muted", text: "That's all." }));
    } catch (e) {
      if (gen === generation) mount(footer, errorBox(e, () => loadMore(reset)));
    } finally {
      loadingMore = false;
    }
  };

  let debounce = null;
  const refilter = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => loadMore(true), 250);
  };
  status.addEventListener("change", refilter);
  type.addEventListener("change", refilter);
  q.addEventListener("input", refilter);
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    loadMore(true);
  });

  app.on("request.updated", (event) => {
    // The event carries the whole request under `request`, and its id and status on top.
    const r = event && (event.request ? { ...event.request, status: event.status || event.request.status } : event);
    const current = r && rows.get(r.id);
    if (!current) {
      if (r && r.id && r.status !== "deleted") loadMore(true);
      return;
    }
    if (r.status === "deleted") {
      current.li.remove();
      rows.delete(r.id);
      return;
    }
    const merged = { ...current.request, ...r };
    current.li.replaceWith(row(merged));
  });
  app.on("lagged", () => {
    loadMore(true);
    problems.reload();
  });
  // The sync tells the user what it did (or that it paused): show its new state.
  app.on("notification.created", (n) => {
    if (n && typeof n.type === "string" && n.type.startsWith("watchlist.")) watchlistPanel(watchPanel);
  });

  await Promise.all([loadMore(true), problems.reload()]);
}

const PROBLEM_TYPES = { video: "Video", audio: "Audio", subtitles: "Subtitles", other: "Other" };

/** Where in a show a problem is ("S01E03", "season 2"), or "". */
export function problemWhere(p) {
  if (p.season && p.episode) return `S${String(p.season).padStart(2, "0")}E${String(p.episode).padStart(2, "0")}`;
  return p.season ? `season ${p.season}` : "";
}

/** The "My problem reports" list: newest first, a page at a time. */
function problemSection(app) {
  const list = h("ul", { class: "list problems", id: "problem-list", "aria-live": "polite" });
  const footer = h("div", { class: "footer" });
  const section = h("section", { "aria-labelledby": "problems-title" },
    h("h2", { id: "problems-title", text: "My problem reports" }), list, footer);
  let cursor = null;
  const row = (p) => {
    // The replies and a reply box, loaded when opened.
    const thread = h("ul", { class: "thread" });
    const reply = h("input", { "aria-label": `Reply about ${p.title}`, placeholder: "Add a reply", maxlength: 2000 });
    const send = h("button", { type: "submit" }, "Reply");
    const form = h("form", { class: "actions reply" }, reply, send);
    const showThread = (comments) => thread.replaceChildren(...comments.map((c) =>
      h("li", {}, h("strong", { text: `${c.author || "Seerr"}: ` }), h("span", { text: c.message }))));
    const details = h("details", { class: "comment" },
      h("summary", {}, p.commentCount ? `${p.commentCount} repl${p.commentCount === 1 ? "y" : "ies"}` : "Reply"),
      thread, form);
    details.addEventListener("toggle", async () => {
      if (!details.open) return;
      try {
        const { data } = await api(`/media/problems/${encodeURIComponent(p.id)}`);
        showThread(data.comments || []);
      } catch (e) {
        toast(e);
      }
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const message = reply.value.trim();
      if (!message) return;
      busy(send, async () => {
        const { data } = await api(`/media/problems/${encodeURIComponent(p.id)}/comments`, { method: "POST", body: { message } });
        reply.value = "";
        showThread(data.comments || []);
        toast("Reply sent.");
      });
    });
    return h("li", { "data-problem": p.id, "data-status": p.status },
      h("span", { class: "title", text: [p.title, problemWhere(p)].filter(Boolean).join(" · ") }),
      h("small", { class: "muted", text: `${PROBLEM_TYPES[p.type] || p.type} · ${fmtDate(p.createdAt)}` }),
      badge(p.status),
      h("span", { class: "comment", text: p.message }),
      details);
  };
  const load = async (reset) => {
    mount(footer, loading("Loading problem reports…"));
    try {
      const { data, meta } = await api("/media/problems", { query: { limit: 20, cursor: reset ? undefined : cursor } });
      if (reset) list.replaceChildren();
      list.append(...data.map(row));
      cursor = meta.nextCursor || null;
      if (!list.children.length) mount(footer, h("p", { class: "muted", text: "You have not reported any problem. An available title's \"Report a problem\" button does." }));
      else mount(footer, cursor ? h("button", { type: "button", class: "more", onclick: () => load(false) }, "Load more") : null);
    } catch (e) {
      mount(footer, errorBox(e, () => load(reset)));
    }
  };
  app.on("notification.created", (n) => {
    if (n && typeof n.type === "string" && n.type.startsWith("problem.")) load(true);
  });
  return { section, reload: () => load(true) };
}
