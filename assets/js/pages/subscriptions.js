// Subscriptions: YouTube channels and playlists that are checked on a schedule. Each one is a
// card (avatar, status, next and last check, last result, items, disk used, settings in short)
// that expands to its videos; admins check, pause, resume, edit and delete, and decide on the
// proposals users send; a user's new subscription is a proposal an admin reviews.

import { api } from "../api.js";
import { h, mount, loading, errorBox, badge, busy, confirmButton, fmtAgo, fmtBytes, fmtDate, toast } from "../ui.js";

const SUBS = "/youtube/subscriptions";
/** How often a card asks for its subscription while a check it waits for has not ended. */
const WATCH_MS = 3000;
/** How many times it asks before giving up (the Refresh button still works). */
const WATCH_TRIES = 40;

/** `in 5 h` / `3 min ago`, like `fmtAgo` but for both directions. */
function when(iso) {
  if (!iso) return "—";
  const seconds = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  if (!isFinite(seconds)) return String(iso);
  if (seconds <= 0) return seconds > -60 ? "now" : fmtAgo(iso);
  if (seconds < 60) return "in under a minute";
  if (seconds < 3600) return `in ${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `in ${Math.floor(seconds / 3600)} h`;
  return `in ${Math.floor(seconds / 86400)} d`;
}

function every(hours) {
  if (hours < 1) return `every ${Math.round(hours * 60)} min`;
  if (hours >= 48 && hours % 24 === 0) return `every ${hours / 24} d`;
  return `every ${Number(hours.toFixed(2))} h`;
}

/** The settings in one line: "every 6 h · keep newest 20 · skip Shorts". */
function settingsText(s, profiles) {
  const profile = s.profileId && profiles.get(s.profileId);
  return [
    every(s.intervalHours),
    s.keepLatest ? `keep newest ${s.keepLatest}` : null,
    s.keepDays ? `keep ${s.keepDays} days` : null,
    s.after ? `after ${s.after}` : null,
    s.include ? `only /${s.include}/` : null,
    s.exclude ? `not /${s.exclude}/` : null,
    s.skipShorts ? "skip Shorts" : null,
    s.skipLive ? "skip live" : null,
    s.profileId ? `profile ${profile ? profile.name : s.profileId}` : null,
  ].filter(Boolean).join(" · ");
}

function initials(text) {
  return String(text || "?")
    .replace(/^https?:\/\/(www\.)?youtube\.com\/?/, "")
    .split(/[\s/@]+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0].toUpperCase())
    .join("") || "?";
}

/** The channel's avatar through our own origin, or its initials when there is none (yet). */
function avatar(s) {
  const placeholder = () => h("div", { class: "avatar placeholder", "aria-hidden": "true", text: initials(s.title || s.sourceId || s.url) });
  if (!s.title) return placeholder();
  const img = h("img", { class: "avatar", src: `/api/v1${SUBS}/${encodeURIComponent(s.id)}/avatar`, alt: "", width: 64, height: 64, loading: "lazy" });
  img.addEventListener("error", () => img.replaceWith(placeholder()), { once: true });
  return img;
}

/** The last check's outcome, with YouTube's or yt-dlp's error (it carries the admin's hint). */
function lastResult(s) {
  if (!s.lastResult) return h("span", { class: "muted", text: "not checked yet" });
  if (s.lastResult === "ok") return h("span", { class: "ok", text: `OK, ${s.lastNewItems} new` });
  const label = s.lastResult === "blocked" ? "Blocked by YouTube" : "Failed";
  const tries = s.consecutiveFailures > 1 ? ` (${s.consecutiveFailures} in a row)` : "";
  return h("span", { class: "warn", text: `${label}${tries}` });
}

/**
 * The settings inputs of the add and edit forms. `values` prefills them (a subscription), `url`
 * adds the URL field. Returns the elements, `body(partial)` (partial: empty fields are left out;
 * otherwise they are sent as null, which clears them) and `showErrors(e)`.
 */
function settingsForm(prefix, values, { url = false, profiles = null } = {}) {
  const id = (f) => `${prefix}-${f}`;
  const errors = {};
  const inputs = {};
  const rows = [];
  const errorFor = (field) => (errors[field] = h("small", { class: "field-error", id: id(`${field}-error`), "aria-live": "polite" }));
  const field = (name, label, input, hint) => {
    inputs[name] = input;
    input.setAttribute("aria-describedby", id(`${name}-error`));
    rows.push(h("div", { class: "field", "data-field": name }, h("label", { for: input.id }, label), input,
      hint ? h("small", { class: "muted", text: hint }) : null, errorFor(name)));
  };
  if (url) {
    field("url", "Channel or playlist URL", h("input", { id: id("url"), type: "url", required: true, maxlength: 2048, autocomplete: "off", placeholder: "https://www.youtube.com/@channel" }));
  }
  const v = values || {};
  field("intervalHours", "Check every (hours)", h("input", { id: id("intervalHours"), type: "number", min: "0.25", max: "168", step: "0.25", value: String(v.intervalHours ?? 6) }));
  field("keepLatest", "Keep the newest", h("input", { id: id("keepLatest"), type: "number", min: "1", max: "10000", step: "1", value: String(v.keepLatest ?? ""), placeholder: "all" }), "videos");
  field("keepDays", "Keep for", h("input", { id: id("keepDays"), type: "number", min: "1", max: "3650", step: "1", value: String(v.keepDays ?? ""), placeholder: "ever" }), "days");
  field("after", "Only videos after", h("input", { id: id("after"), type: "date", value: v.after ?? "" }));
  field("include", "Only titles matching", h("input", { id: id("include"), maxlength: 200, value: v.include ?? "", placeholder: "regular expression", autocomplete: "off", spellcheck: "false" }));
  field("exclude", "Skip titles matching", h("input", { id: id("exclude"), maxlength: 200, value: v.exclude ?? "", placeholder: "regular expression", autocomplete: "off", spellcheck: "false" }));
  if (profiles) {
    const select = h("select", { id: id("profile") }, h("option", { value: "" }, "Default"),
      [...profiles.values()].map((p) => h("option", { value: p.id, selected: p.id === v.profileId }, p.name)));
    field("profile", "Download profile", select);
  }
  const checks = h("div", { class: "row checks" });
  for (const [name, label, on] of [["skipShorts", "Skip Shorts", v.skipShorts ?? false], ["skipLive", "Skip live streams", v.skipLive ?? true]]) {
    const box = h("input", { id: id(name), type: "checkbox", checked: on });
    inputs[name] = box;
    checks.append(h("label", { class: "check", for: id(name) }, box, ` ${label}`), errorFor(name));
  }
  rows.push(checks);

  const body = (partial) => {
    const out = {};
    for (const [name, input] of Object.entries(inputs)) {
      if (input.type === "checkbox") out[name] = input.checked;
      else {
        const raw = input.value.trim();
        const value = raw === "" ? null : input.type === "number" ? Number(raw) : raw;
        if (value !== null || !partial) out[name] = value;
      }
    }
    return out;
  };
  /** Puts each field error next to its input; returns the rest as text. */
  const showErrors = (e) => {
    for (const el of Object.values(errors)) el.textContent = "";
    for (const input of Object.values(inputs)) input.removeAttribute("aria-invalid");
    let fields = (e && e.code === "VALIDATION_ERROR" && e.details && e.details.fields) || {};
    // A URL that is not a channel or playlist has its own code; it belongs to the URL field.
    if (e && e.code === "INVALID_YOUTUBE_URL" && errors.url) fields = { url: e.message };
    const rest = [];
    for (const [key, reason] of Object.entries(fields)) {
      if (errors[key]) {
        errors[key].textContent = e.code === "VALIDATION_ERROR" ? `${key === "url" ? "The URL" : "This"} ${reason}.` : reason;
        if (inputs[key]) inputs[key].setAttribute("aria-invalid", "true");
      } else rest.push(`${key} ${reason}`);
    }
    return { placed: Object.keys(fields).length > 0, rest: rest.join("; ") };
  };
  return { rows, body, showErrors, inputs };
}

export async function render(root, app) {
  const admin = app.isAdmin();
  const me = app.session.user.id;
  const profiles = new Map();
  if (admin) {
    try {
      const { data } = await api("/admin/youtube/profiles");
      for (const p of data) profiles.set(p.id, p);
    } catch {
      // The form offers the default profile only.
    }
  }

  const proposals = h("ul", { class: "list", id: "proposal-list", "aria-live": "polite" });
  const proposalsSection = admin ? h("section", { id: "proposals", "aria-labelledby": "proposals-title" },
    h("h2", { id: "proposals-title", text: "Proposals" }), proposals) : null;

  const add = settingsForm("sub-new", null, { url: true, profiles: admin ? profiles : null });
  const create = h("button", { type: "submit", class: "primary", id: "subscribe" }, admin ? "Subscribe" : "Propose");
  const createResult = h("div", { id: "subscribe-result", "aria-live": "polite" });
  const form = h("form", { class: "stack subscription-form", id: "subscription-form", novalidate: true },
    h("p", { class: "muted", text: admin
      ? "New videos are downloaded into the YouTube library; the first check starts at once."
      : "An admin will review it. Once approved, new videos are downloaded into the YouTube library." }),
    h("div", { class: "fields" }, add.rows),
    h("div", { class: "row" }, create), createResult);
  // Folded away once there are subscriptions to look at; open while there are none.
  const addBox = h("details", { class: "card subscription-add", id: "subscription-add" },
    h("summary", {}, h("h2", { text: admin ? "Add a subscription" : "Propose a subscription" })), form);

  const status = h("select", { id: "subscription-status", "aria-label": "Show" },
    h("option", { value: "" }, "All"), ["active", "paused", "proposed", "declined"].map((s) => h("option", { value: s }, s)));
  const refresh = h("button", { type: "button", id: "subscriptions-refresh" }, "Refresh");
  const list = h("div", { class: "subscriptions", id: "subscription-list", "aria-live": "polite" });
  const footer = h("div", {});
  mount(root, h("h1", { id: "page-title", text: "Subscriptions" }),
    h("p", { class: "muted", text: "Channels and playlists that keep themselves current in Plex: checked on a schedule, new videos downloaded, old ones pruned." }),
    proposalsSection, addBox,
    h("div", { class: "toolbar" }, h("h2", { text: admin ? "All subscriptions" : "Your subscriptions" }), status, refresh),
    list, footer);

  const timers = new Set();
  app.onLeave(() => {
    for (const t of timers) clearInterval(t);
    timers.clear();
  });
  const cards = new Map();

  /** Asks for the subscription until its check has ended (a new `lastCheckAt`), then redraws it. */
  const watch = (s) => {
    const since = s.lastCheckAt;
    let tries = 0;
    const timer = setInterval(async () => {
      tries += 1;
      try {
        const { data } = await api(`${SUBS}/${encodeURIComponent(s.id)}`);
        if (data.lastCheckAt !== since || data.status !== "active" || tries >= WATCH_TRIES) {
          clearInterval(timer);
          timers.delete(timer);
          upsert(data);
        }
      } catch {
        clearInterval(timer);
        timers.delete(timer);
      }
    }, WATCH_MS);
    timers.add(timer);
  };

  const itemsPanel = (s) => {
    const items = h("ul", { class: "list items", "data-items": s.id });
    const more = h("div", {});
    const details = h("details", { class: "subscription-items" },
      h("summary", { text: `Videos (${s.itemCount})` }), items, more);
    let cursor = null;
    let loaded = false;
    const item = (it) => {
      const keep = h("input", { type: "checkbox", id: `keep-${it.id}`, checked: !!it.keep });
      keep.addEventListener("change", async () => {
        const want = keep.checked;
        keep.disabled = true;
        try {
          const { data } = await api(`${SUBS}/${encodeURIComponent(s.id)}/items/${encodeURIComponent(it.id)}`, { method: "PATCH", body: { keep: want } });
          keep.checked = !!(data && "keep" in data ? data.keep : want);
          li.dataset.keep = String(keep.checked);
        } catch (e) {
          keep.checked = !want;
          toast(e);
        } finally {
          keep.disabled = false;
        }
      });
      const li = h("li", { class: ["item", "status-" + it.status], "data-item": it.id, "data-video": it.videoId, "data-keep": String(!!it.keep) },
        h("div", { class: "grow" },
          h("span", { class: "title", text: it.title || it.videoId }), " ", badge(it.status),
          h("small", { class: "muted", text: [it.uploadDate ? `uploaded ${it.uploadDate}` : null, it.bytes ? fmtBytes(it.bytes) : null].filter(Boolean).join(" · ") || "—" }),
          it.reason ? h("p", { class: "message", text: it.reason }) : null),
        h("label", { class: "check keep", for: `keep-${it.id}`, title: "Never pruned by retention" }, keep, " Keep"));
      return li;
    };
    const load = async (reset) => {
      mount(more, loading("Loading the videos…"));
      try {
        const { data, meta } = await api(`${SUBS}/${encodeURIComponent(s.id)}/items`, { query: { cursor: reset ? undefined : cursor } });
        if (reset) items.replaceChildren();
        items.append(...data.map(item));
        cursor = meta.nextCursor || null;
        if (!items.children.length) mount(more, h("p", { class: "muted", text: "No videos yet." }));
        else mount(more, cursor ? h("button", { type: "button", class: "load-more", onclick: (ev) => busy(ev.currentTarget, () => load(false)) }, "Load more") : null);
      } catch (e) {
        mount(more, errorBox(e, () => load(reset)));
      }
    };
    details.addEventListener("toggle", () => {
      if (details.open && !loaded) {
        loaded = true;
        load(true);
      }
    });
    return details;
  };

  const editPanel = (s, card) => {
    const edit = settingsForm(`sub-${s.id}`, s, { profiles: admin ? profiles : null });
    const save = h("button", { type: "submit", class: "primary" }, "Save");
    const result = h("div", { "aria-live": "polite" });
    const panel = h("form", { class: "stack edit-settings", novalidate: true },
      h("div", { class: "fields" }, edit.rows),
      h("div", { class: "row" }, save, h("button", { type: "button", class: "link", onclick: () => panel.remove() }, "Cancel")), result);
    panel.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(save, async () => {
        try {
          const { data } = await api(`${SUBS}/${encodeURIComponent(s.id)}`, { method: "PATCH", body: edit.body(false) });
          toast("Saved.");
          upsert(data);
        } catch (e) {
          const { placed, rest } = edit.showErrors(e);
          mount(result, placed && !rest ? null : errorBox(rest ? Object.assign(e, { message: `${e.message} ${rest}` }) : e));
        }
      });
    });
    card.append(panel);
    const first = panel.querySelector("input");
    if (first) first.focus();
  };

  const card = (s) => {
    // Before the first check names it, the channel's handle (or id) stands in for its title.
    const name = s.title || s.sourceId || s.url;
    const actions = h("div", { class: "actions" });
    const post = (button, path, after) => busy(button, async () => {
      const { data } = await api(`${SUBS}/${encodeURIComponent(s.id)}/${path}`, { method: "POST" });
      upsert(data);
      if (after) after(data);
    });
    if (admin) {
      if (s.status === "active") {
        const check = h("button", { type: "button", class: "check-now", "aria-label": `Check ${name} now` }, "Check now");
        check.addEventListener("click", () => post(check, "check", watch));
        const pause = h("button", { type: "button", class: "pause", "aria-label": `Pause ${name}` }, "Pause");
        pause.addEventListener("click", () => post(pause, "pause"));
        actions.append(check, pause);
      } else if (s.status === "paused") {
        const resume = h("button", { type: "button", class: "resume", "aria-label": `Resume ${name}` }, "Resume");
        resume.addEventListener("click", () => post(resume, "resume", watch));
        actions.append(resume);
      }
    }
    if (admin || (s.userId === me && s.status === "proposed")) {
      const edit = h("button", { type: "button", class: "edit", "aria-label": `Edit the settings of ${name}` }, "Edit");
      edit.addEventListener("click", () => {
        const open = el.querySelector(".edit-settings");
        if (open) open.remove();
        else editPanel(s, el);
      });
      actions.append(edit);
    }
    if (admin || (s.userId === me && (s.status === "proposed" || s.status === "declined"))) {
      actions.append(confirmButton("Delete", "Really delete?", async () => {
        try {
          await api(`${SUBS}/${encodeURIComponent(s.id)}`, { method: "DELETE" });
          el.remove();
          cards.delete(s.id);
          toast(`Deleted the subscription to ${name}.`);
        } catch (e) {
          toast(e);
        }
      }, { "aria-label": `Delete the subscription to ${name}`, class: "delete" }));
    }
    const facts = h("dl", { class: "facts" },
      h("dt", { text: "Next check" }), h("dd", { class: "next-check", title: fmtDate(s.nextCheckAt), text: s.status === "active" ? when(s.nextCheckAt) : "—" }),
      h("dt", { text: "Last check" }), h("dd", { class: "last-check", title: fmtDate(s.lastCheckAt), text: fmtAgo(s.lastCheckAt) }),
      h("dt", { text: "Last result" }), h("dd", { class: "last-result" }, lastResult(s)),
      h("dt", { text: "Videos" }), h("dd", { class: "item-count", text: String(s.itemCount) }),
      h("dt", { text: "Disk used" }), h("dd", { class: "disk", text: fmtBytes(s.bytes) }),
      admin ? [h("dt", { text: "Owner" }), h("dd", { class: "owner", text: s.username })] : null);
    const el = h("article", { class: ["card", "subscription", "status-" + s.status], "data-subscription": s.id, "data-status": s.status },
      h("header", {}, avatar(s),
        h("div", { class: "grow" },
          h("h3", { class: "title", text: name }),
          h("small", { class: "muted url", text: s.url })),
        badge(s.status)),
      facts,
      s.lastError ? h("p", { class: "message warn last-error", text: s.lastError }) : null,
      s.status === "declined" && s.declineReason ? h("p", { class: "message", text: `Declined: ${s.declineReason}` }) : null,
      h("p", { class: "settings muted", text: settingsText(s, profiles) }),
      actions,
      s.status === "proposed" ? null : itemsPanel(s));
    return el;
  };

  const proposalRow = (s) => {
    const approve = h("button", { type: "button", class: "primary approve", "aria-label": `Approve ${s.url}` }, "Approve");
    const reason = h("input", { "aria-label": `Reason for declining ${s.url}`, placeholder: "Reason (optional)", maxlength: 500, class: "reason" });
    const decline = h("button", { type: "button", class: "danger decline", "aria-label": `Decline ${s.url}` }, "Decline");
    const li = h("li", { "data-proposal": s.id },
      h("div", { class: "grow" },
        h("span", { class: "title", text: s.title || s.url }),
        h("small", { class: "muted", text: `${s.username} · ${fmtAgo(s.createdAt)} · ${settingsText(s, profiles)}` })),
      h("span", { class: "actions" }, approve, reason, decline));
    approve.addEventListener("click", () => busy(approve, async () => {
      const { data } = await api(`/admin${SUBS}/${encodeURIComponent(s.id)}/approve`, { method: "POST" });
      li.remove();
      emptyProposals();
      toast(`Approved ${s.title || s.url}.`);
      upsert(data, true);
      watch(data);
    }));
    decline.addEventListener("click", () => busy(decline, async () => {
      const { data } = await api(`/admin${SUBS}/${encodeURIComponent(s.id)}/decline`, { method: "POST", body: { reason: reason.value.trim() || undefined } });
      li.remove();
      emptyProposals();
      toast(`Declined ${s.title || s.url}.`);
      upsert(data, true);
    }));
    return li;
  };
  const emptyProposals = () => {
    if (!proposals.children.length) proposals.append(h("li", { class: "muted empty", text: "No proposals waiting." }));
  };

  /** Draws `s` in place, or at the top when new (and shown by the filter). */
  const upsert = (s, top = false) => {
    const old = cards.get(s.id);
    const shown = (!status.value || status.value === s.status) && !(admin && s.status === "proposed" && !status.value);
    if (!shown) {
      if (old) old.remove();
      cards.delete(s.id);
      return;
    }
    const fresh = card(s);
    const wasOpen = old && old.querySelector(".subscription-items[open]");
    if (old) old.replaceWith(fresh);
    else if (top) list.prepend(fresh);
    else list.append(fresh);
    cards.set(s.id, fresh);
    const empty = list.querySelector(".empty");
    if (empty) empty.remove();
    if (wasOpen) fresh.querySelector(".subscription-items").open = true;
  };

  let cursor = null;
  const load = async (reset) => {
    mount(footer, loading());
    try {
      const { data, meta } = await api(SUBS, { query: { status: status.value, cursor: reset ? undefined : cursor } });
      if (reset) {
        list.replaceChildren();
        cards.clear();
      }
      for (const s of data) upsert(s);
      cursor = meta.nextCursor || null;
      if (!list.children.length) list.append(h("p", { class: "muted empty", text: status.value ? `No ${status.value} subscriptions.` : "No subscriptions yet." }));
      mount(footer, cursor ? h("button", { type: "button", onclick: (ev) => busy(ev.currentTarget, () => load(false)) }, "More") : null);
    } catch (e) {
      mount(footer, errorBox(e, () => load(reset)));
    }
  };
  const loadProposals = async () => {
    if (!admin) return;
    mount(proposals, h("li", { class: "muted" }, loading()));
    try {
      // The proposals waiting, oldest last (the API lists newest first); the first page is
      // plenty for a household.
      const { data } = await api(SUBS, { query: { status: "proposed", limit: 100 } });
      proposals.replaceChildren(...data.map(proposalRow));
      emptyProposals();
    } catch (e) {
      mount(proposals, h("li", {}, errorBox(e, loadProposals)));
    }
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(create, async () => {
      createResult.replaceChildren();
      try {
        const { data } = await api(SUBS, { method: "POST", body: add.body(true) });
        add.showErrors(null);
        add.inputs.url.value = "";
        if (data.status === "proposed") {
          mount(createResult, h("p", { class: "ok", text: "Proposed. An admin will review it; you get a notification when they decide." }));
          if (admin) proposals.prepend(proposalRow(data));
          else upsert(data, true);
        } else {
          toast(`Subscribed to ${data.title || data.url}.`);
          addBox.open = false;
          upsert(data, true);
          watch(data);
        }
      } catch (e) {
        const { placed, rest } = add.showErrors(e);
        if (e.code === "CONFLICT" && e.details && e.details.reason) e.message = e.details.reason;
        if (e.code === "QUOTA_EXCEEDED" && e.details && e.details.limit !== undefined) e.message = `${e.message} You have ${e.details.used} of ${e.details.limit}.`;
        mount(createResult, placed && !rest ? null : errorBox(rest ? Object.assign(e, { message: `${e.message} ${rest}` }) : e));
        const bad = form.querySelector("[aria-invalid='true']");
        if (bad) bad.focus();
      }
    });
  });
  status.addEventListener("change", () => load(true));
  refresh.addEventListener("click", () => busy(refresh, () => Promise.all([load(true), loadProposals()])));

  await Promise.all([load(true), loadProposals()]);
  if (!cards.size) addBox.open = true;
}
