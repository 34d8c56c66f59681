// Live updates: one EventSource on /api/v1/events, reconnected with a growing delay when it
// drops, and a tiny publish/subscribe so pages hear only the kinds they ask for.

import { BASE } from "./base.js";

export const KINDS = [
  "service.status",
  "request.updated",
  "download.progress",
  "download.updated",
  "notification.created",
  "lagged",
];

const listeners = new Map();
let source = null;
let retryTimer = null;
let delay = 1000;
let stateListener = () => {};

/** Subscribes to one kind ("*" for all); returns the unsubscribe function. */
export function on(kind, fn) {
  if (!listeners.has(kind)) listeners.set(kind, new Set());
  listeners.get(kind).add(fn);
  return () => listeners.get(kind).delete(fn);
}

function emit(kind, data) {
  for (const key of [kind, "*"]) {
    for (const fn of listeners.get(key) || []) {
      try {
        fn(data, kind);
      } catch (e) {
        console.error(e);
      }
    }
  }
}

/** Opens the stream (idempotent). `onState` hears "live" or "reconnecting". */
export function connect(onState) {
  if (onState) stateListener = onState;
  if (source) return;
  open();
}

function open() {
  clearTimeout(retryTimer);
  source = new EventSource(BASE + "/api/v1/events");
  source.onopen = () => {
    delay = 1000;
    stateListener("live");
  };
  source.onerror = () => {
    // EventSource retries by itself on a dropped connection, but not after an HTTP error
    // (e.g. 401 or 503): close it and reopen on our own schedule either way.
    stateListener("reconnecting");
    if (source) source.close();
    source = null;
    retryTimer = setTimeout(open, delay);
    delay = Math.min(delay * 2, 30000);
  };
  for (const kind of KINDS) {
    source.addEventListener(kind, (event) => {
      let data = null;
      try {
        data = event.data ? JSON.parse(event.data) : null;
      } catch {
        return;
      }
      emit(kind, data);
    });
  }
}

/** Closes the stream (sign-out). */
export function disconnect() {
  clearTimeout(retryTimer);
  if (source) source.close();
  source = null;
}
