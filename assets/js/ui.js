// Small DOM helpers: element builders (no innerHTML with data, no style attributes: classes
// only, so the CSP holds), error display with correlation ids, badges, formatting and the inline
// SVG charts.

import { withBase } from "./base.js";

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    // The app's own paths ("/admin", "/api/v1/plex/image?...") live under the base path.
    else if ((key === "href" || key === "src") && typeof value === "string" && value.startsWith("/") && !value.startsWith("//")) el.setAttribute(key, withBase(value));
    else if (key === "style") throw new Error("style attributes are refused by the CSP: use a class");
    else if (key in el && typeof value !== "string" && el.namespaceURI !== SVG_NS) el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** `h("button", {class: "primary", onclick}, "Save")` */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A loading indicator that screen readers announce. */
export function loading(label = "Loading…") {
  return h("div", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), label);
}

/** An error box: the message, and the correlation id to quote. */
export function errorBox(error, retry) {
  const message = (error && error.message) || String(error);
  return h(
    "div",
    { class: "error", role: "alert" },
    h("strong", { text: message }),
    error && error.correlationId
      ? h("small", { class: "cid" }, "Reference: ", h("code", { text: error.correlationId }))
      : null,
    error && error.retryAfter ? h("small", { text: ` Try again in ${error.retryAfter} s.` }) : null,
    retry ? h("button", { type: "button", class: "link", onclick: retry }, "Try again") : null,
  );
}

let toastArea = null;
/** A passing message (errors stay until closed). */
export function toast(what, kind = "info") {
  if (!toastArea) {
    toastArea = h("div", { class: "toasts", "aria-live": "polite" });
    document.body.append(toastArea);
  }
  const isError = what instanceof Error;
  const item = h(
    "div",
    { class: ["toast", isError ? "toast-error" : "toast-" + kind], role: isError ? "alert" : "status" },
    isError ? errorBox(what) : h("span", { text: what }),
    h("button", { type: "button", class: "close", "aria-label": "Dismiss", onclick: () => item.remove() }, "×"),
  );
  toastArea.append(item);
  if (!isError) setTimeout(() => item.remove(), 4000);
  return item;
}

/** A status pill: `badge("available")`. */
export function badge(status, label) {
  const value = String(status || "unknown").toLowerCase();
  return h("span", { class: ["badge", "badge-" + value.replace(/[^a-z0-9]+/g, "-")] }, label || value.replace(/_/g, " "));
}

/** A button that asks once more before doing something that cannot be undone. */
export function confirmButton(label, confirmLabel, action, attrs = {}) {
  let armed = false;
  let timer = null;
  const button = h("button", {
    type: "button",
    class: ["danger", attrs.class],
    "aria-label": attrs["aria-label"],
    onclick: async () => {
      if (!armed) {
        armed = true;
        button.textContent = confirmLabel;
        timer = setTimeout(() => {
          armed = false;
          button.textContent = label;
        }, 4000);
        return;
      }
      clearTimeout(timer);
      button.disabled = true;
      try {
        await action();
      } finally {
        button.disabled = false;
        armed = false;
        button.textContent = label;
      }
    },
  }, label);
  return button;
}

/** Runs `work` with `button` disabled, showing errors as toasts. */
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } catch (e) {
    toast(e);
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

export function fmtDate(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString();
}

export function fmtAgo(iso) {
  if (!iso) return "never";
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (!isFinite(seconds)) return String(iso);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(v >= 10 || i === 0 ? 0 : 1)} ${units[i]}`;
}

export function fmtPercent(v) {
  return v === null || v === undefined ? "—" : `${Number(v).toFixed(Number(v) >= 99.95 || Number(v) === 0 ? 0 : 1)}%`;
}

export function fmtDuration(seconds) {
  if (!seconds && seconds !== 0) return "";
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}h ${m % 60}m` : `${m}:${String(s % 60).padStart(2, "0")}`;
}

/** An inline-SVG sparkline of `values` (nulls are gaps). */
export function sparkline(values, { width = 120, height = 28, label = "trend" } = {}) {
  const points = values.map((v, i) => [i, v]).filter(([, v]) => v !== null && v !== undefined);
  // Stretched to the card's width: a sparkline has no text to distort.
  const svg = s("svg", { class: "sparkline", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img", "aria-label": label });
  if (points.length === 0) {
    svg.append(s("line", { x1: 0, y1: height - 1, x2: width, y2: height - 1, class: "spark-empty" }));
    return svg;
  }
  const max = Math.max(...points.map(([, v]) => v), 1);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  if (points.length === 1) {
    const [i, v] = points[0];
    // One sample so far: a level line at its height (a dot would be stretched with the card).
    const y = (height - 2 - (v / max) * (height - 4)).toFixed(1);
    svg.append(s("line", { x1: (i * step).toFixed(1), y1: y, x2: width, y2: y, class: "spark-line", "vector-effect": "non-scaling-stroke" }));
    if (i * step >= width - 1) svg.lastChild.setAttribute("x1", String(width - 6));
    return svg;
  }
  const path = points
    .map(([i, v], n) => `${n === 0 ? "M" : "L"}${(i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`)
    .join(" ");
  svg.append(s("path", { d: path, class: "spark-line", fill: "none", "vector-effect": "non-scaling-stroke" }));
  return svg;
}

/** A bar chart: `[{label, value}]`, drawn as inline SVG; each bar has a tooltip, and with few
 * bars each is labelled. Scales with its container without stretching the text. */
export function barChart(items, { width = 600, height = 160, label = "chart", unit = "" } = {}) {
  const max = Math.max(1, ...items.map((d) => d.value || 0));
  const labelled = items.length <= 12;
  const top = 16;
  const bottom = 18;
  const gap = items.length > 40 ? 1 : 4;
  const bw = items.length ? width / items.length : width;
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height + top + bottom}`, role: "img", "aria-label": label });
  items.forEach((d, i) => {
    const bh = ((d.value || 0) / max) * height;
    const x = i * bw + gap / 2;
    const w = Math.max(1, bw - gap);
    const rect = s("rect", { x: x.toFixed(1), y: (top + height - bh).toFixed(1), width: w.toFixed(1), height: bh.toFixed(1), class: "bar" });
    rect.append(s("title", {}, `${d.label}: ${d.value}${unit}`));
    svg.append(rect);
    if (labelled) {
      svg.append(s("text", { x: (x + w / 2).toFixed(1), y: height + top + 14, class: "axis", "text-anchor": "middle" }, d.label));
      svg.append(s("text", { x: (x + w / 2).toFixed(1), y: (top + height - bh - 3).toFixed(1), class: "axis", "text-anchor": "middle" }, `${d.value}${unit}`));
    }
  });
  if (!labelled && items.length) {
    svg.append(s("text", { x: 0, y: height + top + 14, class: "axis" }, items[0].label));
    svg.append(s("text", { x: width, y: height + top + 14, class: "axis", "text-anchor": "end" }, items[items.length - 1].label));
    svg.append(s("text", { x: 2, y: 11, class: "axis" }, `max ${max}${unit}`));
  }
  svg.append(s("line", { x1: 0, x2: width, y1: top + height + 0.5, y2: top + height + 0.5, class: "baseline" }));
  return svg;
}

/** A poster image through our own origin, or a placeholder with the title's initials. */
/** A TMDB image path from Seerr (`/abc123.jpg`) as MediaNest's own image route, or null. The
 *  browser only ever talks to MediaNest (the CSP allows no other host). */
export function tmdbImage(path, size = "w342") {
  if (typeof path !== "string") return null;
  const m = /^\/?([A-Za-z0-9_-]{1,64}\.(?:jpg|jpeg|png|webp))$/.exec(path);
  return m ? `/api/v1/images/tmdb/${size}/${m[1]}` : null;
}

export function poster(src, title) {
  const sameOrigin = typeof src === "string" && (src.startsWith("/api/") || src.startsWith(location.origin + "/"));
  if (sameOrigin) {
    return h("img", { class: "poster", src, alt: "", loading: "lazy", width: 150, height: 225 });
  }
  const initials = String(title || "?")
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0].toUpperCase())
    .join("");
  return h("div", { class: "poster placeholder", "aria-hidden": "true" }, initials);
}

/** A progress bar (a real <progress>, so no style attribute is needed). */
export function progressBar(percent, label) {
  const value = Math.max(0, Math.min(100, Number(percent) || 0));
  return h("progress", { max: "100", value: String(value), "aria-label": label || "progress", class: "bar" }, `${value}%`);
}
