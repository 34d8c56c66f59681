// A title page, `/movie/{tmdbId}` or `/tv/{tmdbId}`: backdrop and poster (through MediaNest's
// image route), year, runtime, genres, overview, a show's seasons with their availability, the
// Request button with the season picker (../request.js, shared with Discover), "notify me too"
// on someone else's request, "Watch in Plex" and "Report a problem" once it is available, and
// for admins who asked for it.

import { api } from "../api.js";
import { h, mount, loading, errorBox, badge, tmdbImage, toast, fmtDate } from "../ui.js";
import { requestControls, followButton } from "../request.js";

const DOWN = new Set(["down", "disabled"]);

/** `/movie/603` -> `["movie", "603"]`; null for anything else. */
function parse(path) {
  const m = /^\/(movie|tv)\/(\d{1,10})$/.exec(path || "");
  return m ? [m[1], m[2]] : null;
}

function runtime(minutes, mediaType) {
  if (!minutes) return null;
  const text = minutes >= 60 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes} min`;
  return mediaType === "tv" ? `${text} an episode` : text;
}

/** Why requests are off right now (Seerr down or not set up), or null. */
async function requestsOff() {
  try {
    const { data } = await api("/services/overseerr", { quietAuth: true });
    if (DOWN.has(data.status) || data.breaker === "open") {
      return data.status === "disabled" ? "Seerr (or Overseerr) is not set up, so requests are off." : `${data.displayName || "Seerr"} is ${data.breaker === "open" ? "temporarily unavailable" : "down"}, so requests are paused.`;
    }
  } catch (e) {
    if (e.status === 404) return "Seerr (or Overseerr) is not set up, so requests are off.";
  }
  return null;
}

export async function render(root, app, path) {
  const target = parse(path);
  if (!target) {
    mount(root, h("h1", { id: "page-title", text: "Not found" }),
      h("p", {}, "No such title. ", h("a", { href: "/discover", "data-link": "" }, "Back to Discover")));
    return;
  }
  const [mediaType, tmdbId] = target;
  mount(root, h("h1", { id: "page-title", class: "sr-only", text: mediaType === "tv" ? "Series" : "Movie" }), loading());
  let data;
  let unavailable;
  try {
    [{ data }, unavailable] = await Promise.all([api(`/media/${mediaType}/${tmdbId}`), requestsOff()]);
  } catch (e) {
    mount(root, h("h1", { id: "page-title", text: e.status === 404 ? "Not found" : "Title" }), errorBox(e, () => render(root, app, path)),
      h("p", {}, h("a", { href: "/discover", "data-link": "" }, "Back to Discover")));
    return;
  }
  document.title = `${data.title} · MediaNest`;
  draw(root, app, data, unavailable);
  app.on("service.status", async (svc) => {
    if (svc && svc.name === "overseerr") {
      const reason = await requestsOff();
      for (const button of root.querySelectorAll("button.request")) {
        if (button.dataset.requested) continue;
        button.disabled = !!reason;
        button.title = reason || "";
      }
    }
  });
}

function draw(root, app, d, unavailable) {
  const isTv = d.mediaType === "tv";
  const available = d.availability === "available" || d.availability === "partially_available";
  const backdropSrc = tmdbImage(d.backdropPath, "w1280");
  const posterSrc = tmdbImage(d.posterPath, "w342");
  const facts = [d.year, runtime(d.runtime, d.mediaType), (d.genres || []).join(", ") || null].filter(Boolean);

  const requestStatus = d.request && d.request.status;
  const badges = h("div", { class: "badges" },
    badge(isTv ? "tv" : "movie", isTv ? "TV" : "Movie"),
    d.availability && d.availability !== "unknown" ? badge(d.availability) : null,
    requestStatus ? badge(requestStatus, `requested · ${requestStatus.replace(/_/g, " ")}${d.request.mine ? " by you" : ""}`) : null);

  const seasons = (d.seasons || []).filter((s) => s.seasonNumber > 0);
  const { button, picker } = requestControls(d, {
    unavailable,
    seasons: isTv ? seasons : undefined,
    // Redraw from the server's view: the request mark, the badges and "notify me too".
    onRequested: async () => {
      try {
        const { data } = await api(`/media/${d.mediaType}/${d.tmdbId}`);
        draw(root, app, data, unavailable);
      } catch {
        badges.append(badge("pending", "requested · pending by you"));
      }
    },
  });
  // Nothing to ask for when it is all there; the request state says the rest.
  const actions = h("div", { class: "title-actions" });
  if (d.availability !== "available") actions.append(button);
  const follow = followButton(d.request, d.title);
  if (follow) actions.append(follow);
  if (d.plexUrl) {
    actions.append(h("a", { class: "button watch-plex", href: d.plexUrl, target: "_blank", rel: "noopener noreferrer" }, "Watch in Plex"));
  }
  if (available) {
    const report = h("button", { type: "button", class: "report-problem" }, "Report a problem");
    report.addEventListener("click", async () => {
      try {
        const { openReportDialog } = await import("../report.js");
        openReportDialog({
          mediaType: d.mediaType,
          tmdbId: d.tmdbId,
          title: d.title,
          seasons: seasons.map((s) => ({ seasonNumber: s.seasonNumber, episodeCount: s.episodeCount })),
        });
      } catch (e) {
        console.warn("report dialog", e);
        toast(new Error("Reporting a problem is not available right now."));
      }
    });
    actions.append(report);
  }

  const head = h("div", { class: "title-head" },
    posterSrc
      ? h("img", { class: "title-poster", src: posterSrc, alt: `Poster of ${d.title}`, width: 342, height: 513 })
      : h("div", { class: "title-poster placeholder", "aria-hidden": "true" }, (d.title || "?").slice(0, 1)),
    h("div", { class: "title-info" },
      h("h1", { id: "page-title" }, d.title, d.year ? h("small", { text: ` (${d.year})` }) : null),
      facts.length ? h("p", { class: "title-facts muted", text: facts.join(" · ") }) : null,
      badges,
      d.tagline ? h("p", { class: "tagline", text: d.tagline }) : null,
      d.overview ? h("p", { class: "title-overview", text: d.overview }) : null,
      actions, picker));

  const seasonList = isTv && seasons.length
    ? h("section", { class: "title-seasons", "aria-labelledby": "seasons-title" },
      h("h2", { id: "seasons-title", text: "Seasons" }),
      h("ul", { class: "list", id: "season-list" }, seasons.map((s) =>
        h("li", { "data-season": s.seasonNumber },
          h("span", { class: "title", text: s.name || `Season ${s.seasonNumber}` }),
          h("small", { class: "muted", text: `${s.episodeCount} episode${s.episodeCount === 1 ? "" : "s"}${s.airDate ? ` · ${s.airDate.slice(0, 4)}` : ""}` }),
          badge(s.availability && s.availability !== "unknown" ? s.availability : "not_available", s.availability && s.availability !== "unknown" ? undefined : "not available")))))
    : null;

  const askers = Array.isArray(d.requesters)
    ? h("section", { class: "title-requesters", "aria-labelledby": "requesters-title" },
      h("h2", { id: "requesters-title", text: "Who asked for it" }),
      d.requesters.length
        ? h("ul", { class: "list", id: "requester-list" }, d.requesters.map((r) =>
          h("li", { "data-source": r.source },
            h("span", { class: "title", text: r.name }),
            h("small", { class: "muted", text: [r.source === "seerr" ? "on Seerr" : "here", r.is4k ? "4K" : null, r.seasons && r.seasons.length ? `seasons ${r.seasons.join(", ")}` : null, r.createdAt ? fmtDate(r.createdAt) : null].filter(Boolean).join(" · ") }),
            badge(r.status))))
        : h("p", { class: "muted", text: "Nobody has asked for it yet." }))
    : null;

  mount(root,
    h("div", { class: ["title-page", backdropSrc ? "has-backdrop" : null], "data-tmdb": d.tmdbId, "data-type": d.mediaType },
      backdropSrc ? h("div", { class: "backdrop" }, h("img", { class: "backdrop-img", src: backdropSrc, alt: "" })) : null,
      head, seasonList, askers,
      d.stale ? h("p", { class: "muted", text: "Seerr could not be reached: this may be a little out of date." }) : null));
}
