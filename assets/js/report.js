// The "report a problem" dialog: what is wrong with a title that is on the server (video,
// audio, subtitles, other; a message; for a show the season and episode). It posts to
// POST /api/v1/media/problems, which sends the report to Seerr as the user; a toast tells the
// result. A native <dialog> opened with showModal(): focus stays inside, Escape closes it, and
// focus goes back to what opened it.

import { api } from "./api.js";
import { h, errorBox, toast } from "./ui.js";

const TYPES = [
  ["video", "Video"],
  ["audio", "Audio"],
  ["subtitles", "Subtitles"],
  ["other", "Something else"],
];
/** The API's bound on a message. */
const MAX_MESSAGE = 2000;

let counter = 0;

/**
 * Opens the dialog for one title. `seasons`: `[{seasonNumber, episodeCount}]`, empty for a
 * movie. Resolves to true once the report was sent, false when the dialog was closed without.
 */
export async function openReportDialog({ mediaType, tmdbId, title, seasons = [] }) {
  const id = `report-${++counter}`;
  const opener = document.activeElement;
  const tv = mediaType === "tv";
  // Season 0 (specials) is left out: Seerr reads problemSeason 0 as "the whole show".
  const numbered = (seasons || []).filter((s) => Number.isInteger(s.seasonNumber) && s.seasonNumber > 0);

  const type = h("select", { id: `${id}-type`, name: "type", required: true },
    TYPES.map(([value, label]) => h("option", { value }, label)));
  const message = h("textarea", {
    id: `${id}-message`, name: "message", required: true, maxlength: MAX_MESSAGE, rows: 4,
    placeholder: "What is wrong, and where (a time in the file helps)?",
  });
  const season = h("select", { id: `${id}-season`, name: "season" },
    h("option", { value: "" }, "All seasons"),
    numbered.map((s) => h("option", { value: String(s.seasonNumber) }, `Season ${s.seasonNumber}`)));
  const episode = h("select", { id: `${id}-episode`, name: "episode", disabled: true },
    h("option", { value: "" }, "All episodes"));
  const fillEpisodes = () => {
    const chosen = numbered.find((s) => String(s.seasonNumber) === season.value);
    episode.replaceChildren(h("option", { value: "" }, "All episodes"));
    const count = chosen ? Number(chosen.episodeCount) || 0 : 0;
    for (let n = 1; n <= count; n += 1) episode.append(h("option", { value: String(n) }, `Episode ${n}`));
    episode.disabled = !chosen || count === 0;
  };
  season.addEventListener("change", fillEpisodes);

  const problem = h("div", { class: "report-error", "aria-live": "assertive" });
  const send = h("button", { type: "submit", class: "primary" }, "Send report");
  const cancel = h("button", { type: "button" }, "Cancel");
  // Checked here (novalidate), so the reason shows inside the dialog and is announced.
  const form = h("form", { method: "dialog", class: "report-form", novalidate: true },
    h("h2", { id: `${id}-title`, text: `Report a problem with ${title}` }),
    h("p", { class: "muted", text: "The server's admin will see it and can reply here." }),
    h("label", { for: type.id }, "What is wrong"), type,
    tv ? [h("label", { for: season.id }, "Season"), season, h("label", { for: episode.id }, "Episode"), episode] : null,
    h("label", { for: message.id }, "Message"), message,
    problem,
    h("div", { class: "actions" }, cancel, send));
  const dialog = h("dialog", { class: "report-dialog", "aria-labelledby": `${id}-title`, "data-report": `${mediaType}/${tmdbId}` }, form);
  document.body.append(dialog);

  return new Promise((resolve) => {
    let sent = false;
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener && typeof opener.focus === "function" && opener.isConnected) opener.focus();
      resolve(sent);
    });
    cancel.addEventListener("click", () => dialog.close());
    // Once there is a message, the complaint about a missing one goes.
    message.addEventListener("input", () => {
      if (message.getAttribute("aria-invalid") === "true" && message.value.trim()) {
        message.removeAttribute("aria-invalid");
        problem.replaceChildren();
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.replaceChildren();
      const text = message.value.trim();
      if (!text) {
        message.setAttribute("aria-invalid", "true");
        problem.append(h("p", { role: "alert", text: "Say what is wrong." }));
        message.focus();
        return;
      }
      message.removeAttribute("aria-invalid");
      const body = { mediaType, tmdbId: Number(tmdbId), type: type.value, message: text };
      if (tv && season.value !== "") body.season = Number(season.value);
      if (tv && season.value !== "" && episode.value !== "") body.episode = Number(episode.value);
      send.disabled = true;
      send.setAttribute("aria-busy", "true");
      try {
        await api("/media/problems", { method: "POST", body });
        sent = true;
        toast(`Thanks: the problem with ${title} was reported.`);
        dialog.close();
      } catch (e) {
        const fields = e && e.details && e.details.fields;
        const detail = fields ? Object.entries(fields).map(([k, v]) => `${k} ${v}`).join("; ") : null;
        problem.append(errorBox(detail ? Object.assign(new Error(`${e.message} (${detail})`), { correlationId: e.correlationId }) : e));
        toast(e);
      } finally {
        send.disabled = false;
        send.removeAttribute("aria-busy");
      }
    });
    dialog.showModal();
    type.focus();
  });
}
