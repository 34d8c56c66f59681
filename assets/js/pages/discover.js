// Discover: rows of posters from Seerr's discover lists (trending, popular, upcoming), search, poster
// cards with availability, each linking to its title page, and requesting a title (with a season
// picker for TV, from ../request.js). Requesting is disabled, with the reason, while Seerr is
// down. Posters come through MediaNest's image route.

import { api } from "../api.js";
import { h, mount, loading, errorBox, badge, poster, tmdbImage } from "../ui.js";
import { withBase } from "../base.js";
import { requestControls, titlePath } from "../request.js";

const DOWN = new Set(["down", "disabled"]);
/** The rows of the page without a search, in order: `GET /media/discover/{row}`. */
const ROWS = [
  ["trending", "Trending"],
  ["popular-movies", "Popular movies"],
  ["popular-tv", "Popular series"],
  ["upcoming-movies", "Upcoming movies"],
  ["upcoming-tv", "Upcoming series"],
];

export async function render(root, app) {
  const query = h("input", { id: "search", type: "search", name: "query", maxlength: 100, required: true, placeholder: "Movie or show title", autocomplete: "off" });
  const form = h("form", { class: "search", role: "search" },
    h("label", { for: "search", class: "sr-only" }, "Search movies and shows"), query,
    h("button", { type: "submit", class: "primary" }, "Search"));
  const notice = h("div", { id: "overseerr-notice", "aria-live": "polite" });
  const results = h("div", { class: "posters results", id: "results", "aria-live": "polite" });
  const more = h("div", {});
  const rows = h("div", { class: "discover-rows", id: "discover-rows" });
  mount(root, h("h1", { id: "page-title", text: "Discover" }), form, notice, results, more, rows);

  let unavailable = null;
  const checkOverseerr = async () => {
    try {
      const { data } = await api("/services/overseerr", { quietAuth: true });
      if (DOWN.has(data.status) || data.breaker === "open") {
        unavailable = data.status === "disabled" ? "Seerr (or Overseerr) is not set up, so requests are off." : `${data.displayName || "Seerr"} is ${data.breaker === "open" ? "temporarily unavailable" : "down"}, so requests are paused.`;
      } else unavailable = null;
    } catch (e) {
      unavailable = e.status === 404 ? "Seerr (or Overseerr) is not set up, so requests are off." : null;
    }
    mount(notice, unavailable ? h("p", { class: "notice warn", text: unavailable }) : null);
    for (const button of root.querySelectorAll("button.request")) {
      if (button.dataset.requested) continue;
      button.disabled = !!unavailable;
      button.title = unavailable || "";
    }
  };
  await checkOverseerr();
  app.on("service.status", (svc) => {
    if (svc && svc.name === "overseerr") checkOverseerr();
  });

  let page = 1;
  let term = "";
  const search = async (append) => {
    if (!append) {
      page = 1;
      mount(results, loading("Searching…"));
    }
    more.replaceChildren();
    try {
      const { data, meta } = await api("/media/search", { query: { query: term, page } });
      if (!append) results.replaceChildren();
      if (data.length === 0 && !append) mount(results, h("p", { class: "muted", text: `Nothing found for “${term}”.` }));
      results.append(...data.map(card));
      if (meta.totalPages && page < meta.totalPages) {
        mount(more, h("button", { type: "button", onclick: () => { page += 1; search(true); } }, "More results"));
      }
    } catch (e) {
      mount(results, errorBox(e, () => search(append)));
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    term = query.value.trim();
    if (!term) return;
    rows.hidden = true;
    history.replaceState(null, "", withBase("/discover?q=" + encodeURIComponent(term)));
    search(false);
  });

  const card = (item) => {
    const tmdbId = item.tmdbId ?? item.id;
    const mediaType = item.mediaType || "movie";
    const title = item.title || item.name || "Untitled";
    const year = item.year || (item.releaseDate || item.firstAirDate || "").slice(0, 4);
    const availability = item.availability || item.status || (item.mediaInfo && item.mediaInfo.status) || "unknown";
    // `request` is the request made here for this title (anyone's), with its status.
    const requested = item.request ? item.request.status : item.requested ? "requested" : null;
    const status = h("div", { class: "badges" },
      badge(mediaType === "tv" ? "tv" : "movie", mediaType === "tv" ? "TV" : "Movie"),
      availability && availability !== "unknown" && availability !== "not_requested" ? badge(availability) : null,
      requested ? badge(requested, `requested · ${requested.replace(/_/g, " ")}`) : null);
    const { button, picker } = requestControls({ mediaType, tmdbId, title, availability, request: item.request, requested: item.requested }, {
      unavailable,
      onRequested: () => status.append(badge("pending", "requested")),
    });
    const href = titlePath(mediaType, tmdbId);
    return h("article", { class: "poster-card result", "data-tmdb": tmdbId, "data-type": mediaType },
      h("a", { href, "data-link": "", class: "poster-link", "aria-hidden": "true", tabindex: "-1", title },
        poster(tmdbImage(item.posterPath) || item.poster, title)),
      h("div", { class: "body" },
        h("h3", { class: "title" }, h("a", { href, "data-link": "", class: "title-link" }, title), year ? h("small", { text: ` (${year})` }) : null),
        status,
        item.overview ? h("p", { class: "overview", text: item.overview }) : null,
        button, picker));
  };

  // One horizontally scrolling row per list; the next page loads as its end scrolls into view.
  const row = (key, label) => {
    const list = h("div", { class: "row-scroller posters", role: "list", "data-row": key });
    const section = h("section", { class: "discover-row", "aria-label": label, id: `row-${key}` },
      h("h2", { text: label }), list);
    let page = 0;
    let pages = 1;
    let busy = false;
    const end = h("div", { class: "row-end", "aria-hidden": "true" });
    const next = async () => {
      if (busy || page >= pages) return;
      busy = true;
      end.remove();
      if (page === 0) mount(list, loading("Loading…"));
      try {
        const { data, meta } = await api(`/media/discover/${key}`, { query: { page: page + 1 } });
        if (page === 0) list.replaceChildren();
        page = meta.page || page + 1;
        pages = meta.totalPages || page;
        list.append(...data.map((item) => {
          const c = card(item);
          c.setAttribute("role", "listitem");
          return c;
        }));
        if (page === 1 && data.length === 0) mount(list, h("p", { class: "muted", text: "Nothing here right now." }));
        if (page < pages) {
          list.append(end);
          observer.observe(end);
        }
      } catch (e) {
        mount(list, errorBox(e, () => { busy = false; next(); }));
      }
      busy = false;
    };
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) next();
    }, { root: list, rootMargin: "0px 400px 0px 0px" });
    next();
    return section;
  };

  const initial = new URLSearchParams(location.search).get("q");
  if (initial) {
    query.value = initial;
    term = initial;
    rows.hidden = true;
    await search(false);
  } else {
    mount(rows, ROWS.map(([key, label]) => row(key, label)));
    query.focus();
  }
}
