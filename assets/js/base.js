// Where the app lives: "" at the root of its host, or the sub-path a reverse proxy serves it
// under ("/medianest", server.base_path). The server writes it into index.html's
// <meta name="medianest-base">; every URL the app asks for or shows starts with it, and the
// router reads its pages from the rest of the address.

const meta = document.querySelector('meta[name="medianest-base"]');
export const BASE = ((meta && meta.getAttribute("content")) || "").replace(/\/+$/, "");

/** The address the browser uses for one of the app's own paths ("/admin" -> "/medianest/admin"). */
export function withBase(path) {
  return BASE + path;
}

/** The app's own path for an address path ("/medianest/admin" -> "/admin"; "/medianest" -> "/"). */
export function appPath(pathname) {
  if (BASE && (pathname === BASE || pathname.startsWith(BASE + "/"))) return pathname.slice(BASE.length) || "/";
  return pathname;
}
