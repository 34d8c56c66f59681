// Library: the Plex libraries, their items (offset pages) and collections, and search, with
// posters through /plex/image so the browser never sees a Plex token.

import { api } from "../api.js";
import { h, mount, loading, errorBox, poster, fmtDuration } from "../ui.js";

const PAGE = 48;

export async function render(root, app) {
  const tabs = h("div", { class: "tabs", role: "group", "aria-label": "Libraries" });
  const q = h("input", { id: "library-search", type: "search", maxlength: 100, placeholder: "Search Plex" });
  const search = h("form", { class: "search", role: "search" },
    h("label", { for: "library-search", class: "sr-only" }, "Search the Plex libraries"), q,
    h("button", { type: "submit" }, "Search"));
  const view = h("div", { class: "library-view", "aria-live": "polite" });
  mount(root, h("h1", { id: "page-title", text: "Library" }), search, tabs, view);

  const itemCard = (item) => h("figure", { class: "poster-card", "data-key": item.ratingKey },
    poster(item.thumb, item.title),
    h("figcaption", {}, h("span", { text: item.title }), item.year ? h("small", { text: ` ${item.year}` }) : null,
      item.duration ? h("small", { class: "muted", text: ` · ${fmtDuration(item.duration / 1000)}` }) : null));

  const showItems = async (lib) => {
    const grid = h("div", { class: "posters" });
    const more = h("div", {});
    const collections = h("div", {});
    mount(view, h("h2", { text: lib.title }), collections, grid, more);
    let offset = 0;
    const page = async () => {
      mount(more, loading());
      try {
        const { data, meta } = await api(`/plex/libraries/${encodeURIComponent(lib.key)}/items`, { query: { offset, limit: PAGE } });
        grid.append(...data.map(itemCard));
        offset += data.length;
        more.replaceChildren();
        if (data.length === 0 && offset === 0) mount(more, h("p", { class: "muted", text: "This library is empty." }));
        else if (meta.total && offset < meta.total) mount(more, h("button", { type: "button", onclick: page }, `Load more (${offset} of ${meta.total})`));
      } catch (e) {
        mount(more, errorBox(e, page));
      }
    };
    api(`/plex/libraries/${encodeURIComponent(lib.key)}/collections`).then(({ data }) => {
      if (!data.length) return;
      mount(collections, h("h3", { text: "Collections" }), h("div", { class: "chips" }, data.map((c) =>
        h("button", { type: "button", class: "chip", onclick: () => showCollection(c) }, c.title))));
    }).catch(() => {});
    await page();
  };

  const showCollection = async (c) => {
    mount(view, loading());
    try {
      const { data } = await api(`/plex/collections/${encodeURIComponent(c.ratingKey)}`);
      const items = data.items || data.children || [];
      mount(view, h("h2", { text: data.title || c.title }), h("div", { class: "posters" }, items.map(itemCard)));
    } catch (e) {
      mount(view, errorBox(e));
    }
  };

  search.addEventListener("submit", async (event) => {
    event.preventDefault();
    const term = q.value.trim();
    if (!term) return;
    mount(view, loading("Searching…"));
    try {
      const { data } = await api("/plex/search", { query: { query: term } });
      mount(view, h("h2", { text: `Results for “${term}”` }),
        data.length ? h("div", { class: "posters" }, data.map(itemCard)) : h("p", { class: "muted", text: "Nothing found." }));
    } catch (e) {
      mount(view, errorBox(e));
    }
  });

  mount(tabs, loading("Loading libraries…"));
  try {
    const { data } = await api("/plex/libraries");
    const buttons = data.map((lib) => {
      const b = h("button", { type: "button", class: "tab", "aria-pressed": "false", "data-key": lib.key,
        onclick: () => {
          for (const other of buttons) other.setAttribute("aria-pressed", String(other === b));
          showItems(lib);
        } }, lib.title, lib.itemCount !== undefined && lib.itemCount !== null ? h("small", { text: ` ${lib.itemCount}` }) : null);
      return b;
    });
    mount(tabs, buttons);
    if (buttons.length) buttons[0].click();
    else mount(view, h("p", { class: "muted", text: "Plex has no libraries to show." }));
  } catch (e) {
    mount(tabs, errorBox(e));
  }
}
