// Notifications: the list (cursor pages), with the title's poster when the notification is about
// a request; mark one or all read; the bell's count follows.

import { api } from "../api.js";
import { h, mount, loading, errorBox, fmtAgo, busy, tmdbImage } from "../ui.js";
import { titlePath, posterThumb } from "../request.js";

export async function render(root, app) {
  const list = h("ul", { class: "list notifications", id: "notification-list" });
  const footer = h("div", {});
  const readAll = h("button", { type: "button", id: "read-all" }, "Mark all read");
  const unreadOnly = h("input", { type: "checkbox", id: "unread-only" });
  mount(root, h("h1", { id: "page-title", text: "Notifications" }),
    h("div", { class: "toolbar" }, readAll, h("label", { class: "check", for: "unread-only" }, unreadOnly, " Unread only"),
      h("a", { href: "/settings/notifications", "data-link": "", id: "notification-settings-link" }, "Notification settings")),
    list, footer);

  let cursor = null;
  const item = (n) => {
    // A request's notification carries its title's poster and ids: show it, linking to the title.
    const m = n.metadata || {};
    const hasTitle = (m.mediaType === "movie" || m.mediaType === "tv") && Number.isInteger(m.tmdbId);
    const thumb = tmdbImage(m.posterPath) ? posterThumb(m.posterPath, hasTitle ? titlePath(m.mediaType, m.tmdbId) : "/requests", m.title || n.title) : null;
    const li = h("li", { class: ["notification", n.read ? "read" : "unread"], "data-notification": n.id },
      thumb,
      h("div", {}, h("strong", { text: n.title }), h("p", { text: n.message }), h("small", { class: "muted", text: fmtAgo(n.createdAt) })));
    if (!n.read) {
      const mark = h("button", { type: "button", class: "link", "aria-label": `Mark “${n.title}” read` }, "Mark read");
      mark.addEventListener("click", () => busy(mark, async () => {
        await api(`/notifications/${encodeURIComponent(n.id)}/read`, { method: "POST" });
        li.classList.replace("unread", "read");
        mark.remove();
        app.setUnread(app.unread - 1);
      }));
      li.append(mark);
    }
    return li;
  };
  const load = async (reset) => {
    mount(footer, loading());
    try {
      const { data, meta } = await api("/notifications", { query: { unread: unreadOnly.checked ? "true" : undefined, cursor: reset ? undefined : cursor } });
      if (reset) list.replaceChildren();
      list.append(...data.map(item));
      cursor = meta.nextCursor || null;
      if (meta.unreadCount !== undefined) app.setUnread(meta.unreadCount);
      if (!list.children.length) mount(footer, h("p", { class: "muted", text: "No notifications." }));
      else mount(footer, cursor ? h("button", { type: "button", onclick: () => load(false) }, "Older notifications") : null);
    } catch (e) {
      mount(footer, errorBox(e, () => load(reset)));
    }
  };
  readAll.addEventListener("click", () => busy(readAll, async () => {
    await api("/notifications/read-all", { method: "POST" });
    app.setUnread(0);
    await load(true);
  }));
  unreadOnly.addEventListener("change", () => load(true));
  app.on("notification.created", (n) => {
    if (n && n.id) list.prepend(item(n));
  });
  await load(true);
}
