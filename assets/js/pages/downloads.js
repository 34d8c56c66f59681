// Downloads: paste a YouTube URL, see its metadata first, choose quality and format, and follow
// the downloads live (progress bars from `download.progress`), with cancel, retry and history.

import { api } from "../api.js";
import { h, mount, loading, errorBox, badge, progressBar, fmtDate, fmtBytes, fmtDuration, poster, toast, busy } from "../ui.js";

const QUALITIES = ["1080", "best", "2160", "1440", "720", "480", "360"];
const FORMATS = ["mp4", "mkv", "webm"];
const ACTIVE = new Set(["queued", "downloading", "running"]);

export async function render(root, app) {
  const url = h("input", { id: "download-url", type: "url", required: true, maxlength: 2048, placeholder: "https://www.youtube.com/watch?v=…", autocomplete: "off" });
  const previewButton = h("button", { type: "submit", id: "preview" }, "Preview");
  const form = h("form", { class: "search", id: "download-form" },
    h("label", { for: "download-url", class: "sr-only" }, "YouTube video or playlist URL"), url, previewButton);
  const preview = h("div", { id: "download-preview", "aria-live": "polite" });
  const filter = h("select", { id: "download-filter", "aria-label": "Show" },
    h("option", { value: "" }, "All"), ...["queued", "downloading", "completed", "failed", "cancelled"].map((s) => h("option", { value: s }, s)));
  const list = h("ul", { class: "list downloads", id: "download-list", "aria-live": "polite" });
  const footer = h("div", {});
  mount(root, h("h1", { id: "page-title", text: "Downloads" }),
    h("p", { class: "muted", text: "YouTube videos and playlists become Plex items in the YouTube library." }),
    form, preview,
    h("div", { class: "toolbar" }, h("h2", { text: "Your downloads" }), filter), list, footer);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const target = url.value.trim();
    if (!target) return;
    mount(preview, loading("Reading the video's details…"));
    await busy(previewButton, async () => {
      try {
        const { data } = await api("/youtube/metadata", { query: { url: target } });
        showPreview(target, data);
      } catch (e) {
        mount(preview, errorBox(e));
      }
    });
  });

  const showPreview = (target, meta) => {
    const quality = h("select", { id: "quality" }, QUALITIES.map((q) => h("option", { value: q }, q === "best" ? "Best" : `${q}p`)));
    const format = h("select", { id: "format" }, FORMATS.map((f) => h("option", { value: f }, f)));
    const start = h("button", { type: "submit", class: "primary", id: "start-download" }, "Download");
    const confirm = h("form", { class: "card preview" },
      poster(meta.thumbnail, meta.title),
      h("div", { class: "body" },
        h("h3", { text: meta.title || target }),
        h("p", { class: "muted" }, [meta.channel, meta.kind === "playlist" ? (meta.summary || `${meta.itemCount ?? (meta.entries || []).length} videos`) : fmtDuration(meta.duration)].filter(Boolean).join(" · ")),
        meta.entries && meta.entries.length ? h("details", {}, h("summary", { text: "Videos" }),
          h("ol", {}, meta.entries.map((e) => h("li", { text: e.title || e.id })))) : null,
        h("div", { class: "row" }, h("label", { for: "quality" }, "Quality"), quality, h("label", { for: "format" }, "Format"), format),
        h("div", { class: "row" }, start, h("button", { type: "button", class: "link", onclick: () => preview.replaceChildren() }, "Cancel"))));
    confirm.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(start, async () => {
        const { data } = await api("/youtube/downloads", { method: "POST", body: { url: target, quality: quality.value, format: format.value } });
        preview.replaceChildren();
        url.value = "";
        // The title comes from yt-dlp once the worker starts; until then, the preview's.
        toast(`Queued ${data.title || meta.title || "the download"}.`);
        upsert({ ...data, title: data.title || meta.title || null }, true);
      });
    });
    mount(preview, confirm);
    start.focus();
  };

  const rows = new Map();
  const row = (d) => {
    const bar = progressBar(d.progress, `${d.title || d.url} progress`);
    const pct = h("span", { class: "pct", text: `${Math.round(d.progress || 0)}%` });
    const actions = h("span", { class: "actions" });
    if (ACTIVE.has(d.status)) {
      const cancel = h("button", { type: "button", class: "danger", "aria-label": `Cancel ${d.title || d.url}` }, "Cancel");
      cancel.addEventListener("click", () => busy(cancel, async () => {
        const { data } = await api(`/youtube/downloads/${encodeURIComponent(d.id)}`, { method: "DELETE" });
        upsert(data && data.id ? data : { ...d, status: "cancelled" });
      }));
      actions.append(cancel);
    }
    if (d.status === "failed" || d.status === "cancelled") {
      const retry = h("button", { type: "button", "aria-label": `Retry ${d.title || d.url}` }, "Retry");
      retry.addEventListener("click", () => busy(retry, async () => {
        const { data } = await api(`/youtube/downloads/${encodeURIComponent(d.id)}/retry`, { method: "POST" });
        upsert(data && data.id ? data : { ...d, status: "queued", progress: 0 });
      }));
      actions.append(retry);
    }
    const details = [
      d.quality ? `${d.quality}${/^\d+$/.test(d.quality) ? "p" : ""}` : null,
      d.format,
      d.itemsTotal > 1 ? `${d.itemsDone || 0}/${d.itemsTotal} videos` : null,
      d.bytesDone ? fmtBytes(d.bytesDone) : null,
      fmtDate(d.completedAt || d.createdAt),
    ].filter(Boolean).join(" · ");
    const li = h("li", { class: ["download", "status-" + d.status], "data-download": d.id, "data-status": d.status },
      h("div", { class: "grow" },
        h("span", { class: "title", text: d.title || d.url }), " ", badge(d.status),
        h("div", { class: "progress-row" }, bar, pct),
        h("small", { class: "muted", text: details }),
        d.error ? h("p", { class: "message warn", text: d.error }) : null,
        // Items yt-dlp could not download (private, members-only, blocked ...), with its reason.
        d.failedItems && d.failedItems.length ? h("details", { class: "failed-items" },
          h("summary", { text: `${d.failedItems.length} item${d.failedItems.length === 1 ? "" : "s"} could not be downloaded` }),
          h("ul", {}, d.failedItems.map((f) => h("li", {
            text: [f.index ? `#${f.index}` : null, f.id, f.reason].filter(Boolean).join(" · "),
          })))) : null),
      actions);
    rows.set(d.id, { li, bar, pct, download: d });
    return li;
  };
  const upsert = (d, prepend) => {
    const current = rows.get(d.id);
    const merged = current ? { ...current.download, ...d, title: d.title || current.download.title } : d;
    if (filter.value && merged.status !== filter.value) {
      if (current) {
        current.li.remove();
        rows.delete(d.id);
      }
      return;
    }
    const li = row(merged);
    if (current) current.li.replaceWith(li);
    else if (prepend) list.prepend(li);
    else list.append(li);
    if (footer.querySelector(".empty")) footer.replaceChildren();
  };

  let cursor = null;
  const load = async (reset) => {
    mount(footer, loading());
    try {
      const { data, meta } = await api("/youtube/downloads", { query: { status: filter.value, limit: 20, cursor: reset ? undefined : cursor } });
      if (reset) {
        list.replaceChildren();
        rows.clear();
      }
      for (const d of data) upsert(d);
      cursor = meta.nextCursor || null;
      if (!list.children.length) mount(footer, h("p", { class: "muted empty", text: "No downloads yet." }));
      else mount(footer, cursor ? h("button", { type: "button", onclick: () => load(false) }, "Older downloads") : null);
    } catch (e) {
      mount(footer, errorBox(e, () => load(reset)));
    }
  };
  filter.addEventListener("change", () => load(true));

  app.on("download.progress", (p) => {
    const current = p && rows.get(p.id);
    if (!current) return;
    const progress = Math.round(p.progress ?? current.download.progress ?? 0);
    const shown = current.li.dataset.status;
    const status = p.status || (shown === "queued" ? "downloading" : shown);
    if (status !== shown) {
      // Its status moved on (queued -> downloading): redraw the row (and its buttons).
      upsert({ ...p, status, progress });
      return;
    }
    Object.assign(current.download, p, { title: current.download.title });
    current.bar.value = progress;
    current.bar.textContent = `${progress}%`;
    current.pct.textContent = `${progress}%`;
  });
  app.on("download.updated", (d) => {
    if (d && d.id) upsert(d, !rows.has(d.id));
  });
  app.on("lagged", () => load(true));

  await load(true);
}
