// Requesting a title, shared by the Discover cards and the title pages: the Request button
// (disabled, with the reason, while Seerr is down; "Requested" or "Available" when there is
// nothing to ask), the season picker for a show, and "notify me too" on someone else's request.

import { api } from "./api.js";
import { h, mount, loading, errorBox, toast, tmdbImage } from "./ui.js";

/** The title page of a movie or show: `/movie/{tmdbId}` or `/tv/{tmdbId}`. */
export function titlePath(mediaType, tmdbId) {
  return `/${mediaType === "tv" ? "tv" : "movie"}/${encodeURIComponent(tmdbId)}`;
}

/** A small poster (`posterPath` through MediaNest's image route) linking to `href`, for list
 *  rows (`title` names it on hover); a blank frame when there is no poster. */
export function posterThumb(posterPath, href, title) {
  const src = tmdbImage(posterPath, "w185");
  // The row's title is the link a screen reader or the keyboard uses; this one is for the eye.
  return h("a", { href, "data-link": "", class: "thumb-link", "aria-hidden": "true", tabindex: "-1", title },
    src ? h("img", { class: "thumb", src, alt: "", loading: "lazy", width: 42, height: 63 }) : h("span", { class: "thumb" }));
}

/** Whether a request status still counts (a declined or failed one may be asked again). */
export function isActive(status) {
  return !!status && status !== "declined" && status !== "failed";
}

/**
 * The Request button and its season picker for `item` (`{mediaType, tmdbId, title,
 * availability, request}`, as the search, discover and details answers give it).
 * `options.seasons` (`[{seasonNumber, availability}]`) saves a round trip when the caller has
 * them; `options.unavailable` is why requests are off right now; `options.onRequested(data)`
 * runs after Seerr took the request. Returns `{button, picker, setUnavailable(reason)}`.
 */
export function requestControls(item, options = {}) {
  const { mediaType, tmdbId, title } = item;
  const availability = item.availability || "unknown";
  const requested = item.request ? item.request.status : item.requested ? "requested" : null;
  const button = h("button", { type: "button", class: "request primary", "data-tmdb": tmdbId }, "Request");
  const picker = h("div", { class: "picker" });
  const done = availability === "available" || isActive(requested);
  if (done) {
    button.disabled = true;
    button.dataset.requested = "1";
    button.textContent = availability === "available" ? "Available" : "Requested";
  }
  const setUnavailable = (reason) => {
    if (button.dataset.requested) return;
    button.disabled = !!reason;
    button.title = reason || "";
  };
  setUnavailable(options.unavailable);

  const submit = async (seasons) => {
    button.disabled = true;
    try {
      const { data } = await api("/media/requests", { method: "POST", body: { mediaType, tmdbId, seasons } });
      button.textContent = "Requested";
      button.dataset.requested = "1";
      picker.replaceChildren();
      toast(`Requested ${title}.`);
      if (options.onRequested) options.onRequested(data);
    } catch (e) {
      button.disabled = false;
      toast(e);
    }
  };

  const seasonPicker = async () => {
    let seasons = options.seasons;
    if (!seasons) {
      mount(picker, loading("Loading seasons…"));
      try {
        const { data } = await api(`/media/tv/${encodeURIComponent(tmdbId)}`);
        seasons = data.seasons || [];
      } catch (e) {
        mount(picker, errorBox(e));
        return;
      }
    }
    const numbered = seasons.filter((s) => (s.seasonNumber ?? s.number) > 0);
    const boxes = numbered.map((s) => {
      const n = s.seasonNumber ?? s.number;
      const id = `season-${tmdbId}-${n}`;
      const have = s.availability === "available" || s.status === "available";
      return h("label", { class: "check", for: id },
        h("input", { type: "checkbox", id, value: n, disabled: have, "data-season": n }), ` Season ${n}${have ? " (available)" : ""}`);
    });
    const all = h("input", { type: "checkbox", id: `all-${tmdbId}`, checked: true });
    // Picking a season means "not all"; picking "all" clears the single ones.
    all.addEventListener("change", () => {
      if (all.checked) for (const b of boxes) b.querySelector("input").checked = false;
    });
    for (const b of boxes) {
      b.querySelector("input").addEventListener("change", (event) => {
        if (event.target.checked) all.checked = false;
      });
    }
    const go = h("button", { type: "submit", class: "primary" }, "Send request");
    const form = h("form", { class: "seasons" },
      h("fieldset", {}, h("legend", { text: "Which seasons?" }),
        h("label", { class: "check", for: `all-${tmdbId}` }, all, " All seasons"), boxes),
      go, h("button", { type: "button", class: "link", onclick: () => picker.replaceChildren() }, "Cancel"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const chosen = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked && !i.disabled).map((i) => Number(i.value));
      submit(all.checked || chosen.length === 0 ? "all" : chosen);
    });
    mount(picker, form);
    all.focus();
  };

  button.addEventListener("click", () => (mediaType === "tv" ? seasonPicker() : submit(undefined)));
  return { button, picker, setUnavailable };
}

/**
 * "Notify me too" on a request someone else made (`request` is the details' request mark:
 * `{id, mine, following}`), or null when there is nothing to follow. Toggles
 * `POST`/`DELETE /media/requests/{id}/follow`.
 */
export function followButton(request, title) {
  // Nothing more to hear about once it is available (or was declined or failed).
  if (!request || request.mine || !isActive(request.status) || request.status === "available") return null;
  let following = !!request.following;
  const button = h("button", { type: "button", class: "follow", "aria-pressed": String(following) });
  const label = () => {
    button.textContent = following ? "Notifying you · stop" : "Notify me too";
    button.setAttribute("aria-pressed", String(following));
    button.title = following ? `You hear when ${title} changes` : `Hear when ${title} is available`;
  };
  label();
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api(`/media/requests/${encodeURIComponent(request.id)}/follow`, { method: following ? "DELETE" : "POST" });
      following = !following;
      label();
      toast(following ? `You'll hear when ${title} changes.` : `No more news about ${title}.`);
    } catch (e) {
      toast(e);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}
