// The one way the dashboard talks to the API: JSON in and out, the CSRF header on every write,
// and every failure turned into an ApiError that carries the server's message and correlation id.

import { BASE } from "./base.js";

let csrfToken = null;
const authListeners = new Set();

/** Remembers the session's CSRF token (from sign-in or GET /auth/session). */
export function setCsrf(token) {
  csrfToken = token || null;
}

/** Calls `fn(error)` when the API says the session is gone or a password change is due. */
export function onAuthProblem(fn) {
  authListeners.add(fn);
  return () => authListeners.delete(fn);
}

/** An API failure: what to show a person (message) and what to quote to an admin (correlationId). */
export class ApiError extends Error {
  constructor(status, code, message, correlationId, retryAfter, details) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.correlationId = correlationId || null;
    this.retryAfter = retryAfter ?? null;
    this.details = details || null;
  }
}

const AUTH_CODES = new Set(["UNAUTHORIZED", "SESSION_EXPIRED", "PASSWORD_CHANGE_REQUIRED", "ACCOUNT_SUSPENDED"]);

/**
 * `api("/services")` -> `{data, meta, correlationId}`; throws ApiError.
 * Options: method, body (sent as JSON), query (object; empty values are left out), signal.
 */
export async function api(path, options = {}) {
  const method = options.method || "GET";
  const headers = { Accept: "application/json" };
  let body;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  if (method !== "GET" && method !== "HEAD" && csrfToken) {
    headers["X-CSRF-Token"] = csrfToken;
  }
  let url = BASE + "/api/v1" + path;
  if (options.query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(options.query)) {
      if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
    }
    const qs = params.toString();
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body, credentials: "same-origin", signal: options.signal });
  } catch (e) {
    if (e && e.name === "AbortError") throw e;
    throw new ApiError(0, "NETWORK_ERROR", "Cannot reach MediaNest. Check your connection and try again.", null);
  }
  const correlationId = response.headers.get("X-Correlation-ID");
  let json = null;
  try {
    json = await response.json();
  } catch {
    json = null;
  }
  if (!response.ok || !json || json.success === false) {
    const e = (json && json.error) || {};
    const error = new ApiError(
      response.status,
      e.code || "HTTP_" + response.status,
      e.message || `The server answered ${response.status} ${response.statusText}.`,
      e.correlationId || correlationId,
      e.retryAfter,
      e.details,
    );
    if (AUTH_CODES.has(error.code) && !options.quietAuth) {
      for (const fn of authListeners) fn(error);
    }
    throw error;
  }
  return { data: json.data, meta: json.meta || {}, correlationId };
}

/** Sends the dashboard's own errors to the server log (best effort, never throws). */
export function reportError(message, extra = {}) {
  const entry = { level: "error", message: String(message).slice(0, 2000), url: location.pathname, ...extra };
  api("/errors/report", { method: "POST", body: { errors: [entry] }, quietAuth: true }).catch(() => {});
}
