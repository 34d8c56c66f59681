// Notification settings: which of your channels are on, where each one goes, which events each
// gets (GET/PUT /me/notifications), and Web Push on this browser or phone (the service worker,
// the browser's permission, PushManager.subscribe, /me/push-subscriptions).
//
// Secrets (the Gotify token, the Discord and webhook URLs) are never shown again once saved: an
// empty field keeps the saved one, "Forget" clears it. Channels the admin has not enabled are
// greyed and left out of what Save sends, so they keep whatever they were.

import { api } from "../api.js";
import { h, mount, loading, errorBox, toast, busy, fmtAgo, confirmButton } from "../ui.js";
import { withBase } from "../base.js";

const CHANNELS = [
  { kind: "email", name: "Email", field: "address", label: "Email address", type: "email", autocomplete: "email" },
  { kind: "ntfy", name: "ntfy", field: "topic", label: "Topic", type: "text", help: "1 to 64 letters, digits, - or _." },
  { kind: "gotify", name: "Gotify", field: "token", label: "Application token", type: "password", secret: "tokenSet" },
  { kind: "discord", name: "Discord", field: "url", label: "Webhook URL", type: "url", secret: "urlSet",
    help: "In Discord: Server settings → Integrations → Webhooks → Copy webhook URL (https://discord.com/api/webhooks/…)." },
  { kind: "webhook", name: "Webhook", field: "url", label: "URL", type: "url", secret: "urlSet" },
  { kind: "webpush", name: "Push", help: "Notifications on this browser or phone, even when MediaNest is closed." },
];

const EVENTS = [
  ["request.approved", "A request is approved"],
  ["request.declined", "A request is declined"],
  ["request.available", "A request is available"],
  ["request.failed", "A request failed"],
  ["problem.updated", "A problem report is answered or resolved"],
  ["download.completed", "A download finished"],
  ["download.failed", "A download failed"],
  ["service.down", "A service is down"],
  ["service.recovered", "A service is back"],
  ["user.signup", "Someone signed up"],
  ["announcement", "Announcements"],
];

/** How long to wait for the browser's push service when subscribing. */
const SUBSCRIBE_WAIT_MS = 30000;

const eventId = (event, kind) => `ev-${event.replace(/[^a-z0-9]+/gi, "-")}-${kind}`;

export async function render(root, app) {
  mount(root, h("h1", { id: "page-title", text: "Notification settings" }), loading());
  let data;
  try {
    data = (await api("/me/notifications")).data;
  } catch (e) {
    mount(root, h("h1", { id: "page-title", text: "Notification settings" }), errorBox(e, () => render(root, app)));
    return;
  }
  show(root, app, data);
}

function show(root, app, data) {
  const controls = {};
  const forget = {};
  const status = h("div", { id: "notification-settings-status", "aria-live": "polite" });
  const channelBoxes = CHANNELS.map((c) => channelSection(c, data.channels[c.kind], controls, forget));
  const events = EVENTS.filter(([event]) => data.events[event] !== undefined);
  const grid = eventGrid(events, data, controls);
  const save = h("button", { type: "submit", class: "primary", id: "save-notifications" }, "Save");
  const form = h("form", { class: "stack notification-settings", novalidate: true },
    h("div", { class: "channels" }, channelBoxes),
    h("h2", { text: "What goes where" }),
    h("p", { class: "muted", text: "In-app notifications (the bell) always get every event. Tick the channels each event also goes to." }),
    grid.table,
    h("div", { class: "row" }, save, status));

  const columnState = () => {
    for (const c of CHANNELS) {
      const on = controls[c.kind].enabled.checked;
      for (const [event] of events) {
        const box = controls.events[event][c.kind];
        box.disabled = !on || controls[c.kind].unavailable;
      }
    }
  };
  for (const c of CHANNELS) {
    controls[c.kind].enabled.addEventListener("change", () => {
      // A channel turned on gets every event, as the server's default does.
      if (controls[c.kind].enabled.checked) for (const [event] of events) controls.events[event][c.kind].checked = true;
      columnState();
    });
  }
  columnState();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(controls, status);
    const body = { channels: {}, events: {} };
    for (const c of CHANNELS) {
      const ctl = controls[c.kind];
      if (ctl.unavailable) continue;
      const entry = { enabled: ctl.enabled.checked };
      if (c.field) {
        const value = ctl.input.value.trim();
        if (!c.secret || value) entry[c.field] = value;
        else if (forget[c.kind]) entry[c.field] = "";
      }
      body.channels[c.kind] = entry;
    }
    for (const [name] of events) {
      body.events[name] = CHANNELS.filter((c) => {
        const on = controls[c.kind].unavailable ? data.channels[c.kind].enabled : controls[c.kind].enabled.checked;
        return on && controls.events[name][c.kind].checked;
      }).map((c) => c.kind);
    }
    save.disabled = true;
    try {
      const saved = (await api("/me/notifications", { method: "PUT", body })).data;
      show(root, app, saved);
      toast("Notification settings saved.");
      const again = document.getElementById("notification-settings-status");
      if (again) mount(again, h("span", { class: "ok", text: "Saved." }));
    } catch (e) {
      showErrors(e, controls, status);
    } finally {
      save.disabled = false;
    }
  });

  mount(root,
    h("h1", { id: "page-title", text: "Notification settings" }),
    h("p", {}, "Choose how MediaNest tells you when something happens. ",
      h("a", { href: "/notifications", "data-link": "" }, "Back to your notifications")),
    form);
  pushDevices(app, data, controls, columnState);
}

function channelSection(c, state, controls, forget) {
  const id = `nc-${c.kind}`;
  const lower = c.kind === "email" ? "email" : c.kind === "webpush" ? "push" : c.name;
  const enabled = h("input", { type: "checkbox", id: `${id}-enabled`, checked: !!state.enabled });
  const error = h("p", { class: "field-error", id: `${id}-error`, "aria-live": "polite" });
  const fieldset = h("fieldset", { class: ["card", "stack", "channel", state.available ? null : "unavailable"], "data-channel": c.kind,
    "data-available": String(!!state.available) },
    h("legend", { text: c.name }),
    h("label", { class: "check", for: `${id}-enabled` }, enabled, ` Send me notifications by ${lower}`));
  controls[c.kind] = { enabled, error, fieldset, unavailable: !state.available };
  if (!state.available) {
    fieldset.append(h("p", { class: "notice", text: `Your admin has not turned on ${lower} notifications on this server.` }));
  }
  if (c.field) {
    const input = h("input", { type: c.type, id: `${id}-${c.field}`, name: `${c.kind}.${c.field}`, autocomplete: c.autocomplete || "off",
      spellcheck: "false", "aria-describedby": `${id}-help ${id}-error` });
    controls[c.kind].input = input;
    let help = c.help || "";
    if (c.kind === "email") {
      input.value = state.address || "";
      input.placeholder = state.defaultAddress || "name@example.com";
      help = state.defaultAddress ? `Leave empty to use your account's address, ${state.defaultAddress}.` : "Your account has no address: give one to get email.";
    } else if (c.kind === "ntfy") {
      input.value = state.topic || "";
      help = `${help} Subscribe to the same topic on ${state.server} in the ntfy app.`;
    } else if (c.kind === "gotify" && state.server) {
      help = `Create an application on ${state.server} and paste its token.`;
    } else if (c.kind === "webhook") {
      help = state.allowedHosts && state.allowedHosts.length
        ? `A URL on one of the hosts your admin allows: ${state.allowedHosts.join(", ")}. MediaNest POSTs JSON to it.`
        : "Your admin allows no webhook hosts yet.";
    }
    const label = h("label", { for: input.id, text: c.label });
    const parts = [label, input];
    if (c.secret && state[c.secret]) {
      input.placeholder = "Saved. Leave empty to keep it.";
      const forgetButton = h("button", { type: "button", class: "link", id: `${id}-forget` }, `Forget the saved ${c.label.toLowerCase()}`);
      forgetButton.addEventListener("click", () => {
        forget[c.kind] = true;
        input.value = "";
        input.placeholder = "Will be removed when you save.";
        forgetButton.remove();
      });
      controls[c.kind].forget = forgetButton;
      parts.push(forgetButton);
    }
    parts.push(h("small", { class: "muted", id: `${id}-help`, text: help }));
    fieldset.append(...parts);
  } else if (c.help) {
    fieldset.append(h("small", { class: "muted", text: c.help }));
  }
  if (c.kind === "webpush") {
    controls.webpush.devices = h("div", { class: "stack", id: "push-devices" });
    fieldset.append(controls.webpush.devices);
  }
  fieldset.append(error);
  // Greyed: the admin has not enabled it, and Save leaves it as it is. (Only its own controls:
  // push devices can still be removed.)
  if (!state.available) {
    for (const el of [enabled, controls[c.kind].input, controls[c.kind].forget]) if (el) el.disabled = true;
  }
  return fieldset;
}

function eventGrid(events, data, controls) {
  controls.events = {};
  controls.eventErrors = {};
  const head = h("tr", {}, h("th", { scope: "col", text: "Event" }), CHANNELS.map((c) => h("th", { scope: "col", text: c.name })));
  const rows = events.map(([event, label]) => {
    controls.events[event] = {};
    const error = h("small", { class: "field-error", id: `${eventId(event, "error")}` });
    controls.eventErrors[event] = error;
    const cells = CHANNELS.map((c) => {
      const box = h("input", { type: "checkbox", id: eventId(event, c.kind), "data-event": event, "data-kind": c.kind,
        checked: data.events[event].includes(c.kind), "aria-label": `${label}: ${c.name}` });
      controls.events[event][c.kind] = box;
      return h("td", { class: "cell-check" }, box);
    });
    return h("tr", { "data-event": event }, h("th", { scope: "row" }, label, " ", error), cells);
  });
  const table = h("div", { class: "table-wrap" }, h("table", { class: "table events-grid", id: "event-grid" }, h("thead", {}, head), h("tbody", {}, rows)));
  return { table };
}

function clearErrors(controls, status) {
  status.replaceChildren();
  for (const c of CHANNELS) {
    controls[c.kind].error.textContent = "";
    if (controls[c.kind].input) controls[c.kind].input.removeAttribute("aria-invalid");
  }
  for (const error of Object.values(controls.eventErrors)) error.textContent = "";
}

/** Puts each `VALIDATION_ERROR` field next to what it is about; the rest go in the status line. */
function showErrors(e, controls, status) {
  const fields = (e && e.code === "VALIDATION_ERROR" && e.details && e.details.fields) || null;
  if (!fields) {
    mount(status, errorBox(e));
    return;
  }
  const rest = [];
  let first = null;
  for (const [field, reason] of Object.entries(fields)) {
    const parts = field.split(".");
    if (parts[0] === "channels" && controls[parts[1]]) {
      const ctl = controls[parts[1]];
      const what = parts[2] === "enabled" || !parts[2] ? "" : `${parts[2].replace(/^./, (x) => x.toUpperCase())} `;
      ctl.error.textContent = `${ctl.error.textContent} ${what}${reason}.`.trim();
      if (ctl.input && parts[2] && parts[2] !== "enabled") {
        ctl.input.setAttribute("aria-invalid", "true");
        first = first || ctl.input;
      } else {
        first = first || ctl.enabled;
      }
    } else if (parts[0] === "events" && controls.eventErrors[parts.slice(1).join(".")]) {
      controls.eventErrors[parts.slice(1).join(".")].textContent = reason;
    } else {
      rest.push(`${field}: ${reason}`);
    }
  }
  const summary = Object.assign(new Error(rest.length ? rest.join(" ") : "Some settings need fixing: see the notes above."), { correlationId: e.correlationId });
  mount(status, errorBox(summary));
  if (first) first.focus();
}

/** The browser's push support, as a sentence when it is missing (null when push can work). */
function pushProblem() {
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    return window.isSecureContext
      ? "This browser cannot receive push notifications."
      : "Push needs a secure connection: open MediaNest over HTTPS (or on localhost) to turn it on.";
  }
  if (Notification.permission === "denied") {
    return "Notifications are blocked for this site in your browser's settings: allow them there, then come back.";
  }
  return null;
}

function keyBytes(base64url) {
  const text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (base64url.length % 4)) % 4));
  return Uint8Array.from(text, (ch) => ch.charCodeAt(0));
}

async function subscribeHere() {
  let registration = await navigator.serviceWorker.getRegistration(withBase("/"));
  if (!registration) registration = await navigator.serviceWorker.register(withBase("/sw.js"), { scope: withBase("/") });
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    throw new Error(permission === "denied"
      ? "Notifications are blocked for this site in your browser's settings: allow them there, then try again."
      : "Push stays off: the browser did not get permission to show notifications.");
  }
  registration = await navigator.serviceWorker.ready;
  const { data } = await api("/push/vapid-public-key");
  let subscription;
  let timer;
  // The browser reaches its own push service (Google's, Mozilla's, Apple's) to subscribe; when
  // that cannot be reached some browsers wait for ever, so the page stops waiting after a while.
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("its push service did not answer")), SUBSCRIBE_WAIT_MS);
  });
  try {
    subscription = await Promise.race([
      registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(data.publicKey) }),
      late,
    ]);
  } catch (e) {
    throw new Error(`This browser could not subscribe to push (${(e && e.message) || e}). Try again later.`);
  } finally {
    clearTimeout(timer);
  }
  await api("/me/push-subscriptions", { method: "POST", body: subscription.toJSON() });
}

/** The push section: the button for this device and the list of subscribed devices. */
async function pushDevices(app, data, controls, columnState) {
  const box = controls.webpush.devices;
  if (!box) return;
  const list = h("ul", { class: "list", id: "push-device-list" });
  const note = h("p", { class: "muted", id: "push-note", role: "status" });
  const problem = pushProblem();
  const turnOn = h("button", { type: "button", id: "push-subscribe", disabled: !!problem || !data.channels.webpush.available },
    "Turn on push on this device");
  if (problem) note.textContent = problem;
  turnOn.addEventListener("click", () => busy(turnOn, async () => {
    note.textContent = "Asking the browser…";
    try {
      await subscribeHere();
    } catch (e) {
      note.textContent = (e && e.message) || String(e);
      return;
    }
    // The channel goes on with it (a device is where push goes); the rest of the form stays.
    const saved = (await api("/me/notifications", { method: "PUT", body: { channels: { webpush: { enabled: true } } } })).data;
    data.channels.webpush = saved.channels.webpush;
    if (!controls.webpush.enabled.checked) {
      controls.webpush.enabled.checked = true;
      controls.webpush.enabled.dispatchEvent(new Event("change"));
    }
    columnState();
    note.textContent = "Push is on for this device.";
    await load();
  }));
  const load = async () => {
    try {
      const { data: devices } = await api("/me/push-subscriptions");
      mount(list, devices.length
        ? devices.map((d) => h("li", { "data-subscription": d.id },
          h("span", { class: "grow" }, h("strong", { text: deviceName(d.userAgent) }), " ",
            h("small", { class: "muted", text: `${d.service} · added ${fmtAgo(d.createdAt)}` })),
          confirmButton("Remove", "Really remove?", async () => {
            try {
              await api(`/me/push-subscriptions/${encodeURIComponent(d.id)}`, { method: "DELETE" });
            } catch (e) {
              toast(e);
            }
            await load();
          }, { "aria-label": `Remove ${deviceName(d.userAgent)}` })))
        : h("li", { class: "muted", text: "No device gets push notifications yet." }));
    } catch (e) {
      mount(list, h("li", {}, errorBox(e, load)));
    }
  };
  mount(box, h("div", { class: "row" }, turnOn), note, h("h3", { text: "Devices" }), list);
  await load();
}

/** A short name for a device from its user agent ("Chrome on Android"). */
function deviceName(ua) {
  if (!ua) return "A browser";
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrome\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "A browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Windows/.test(ua) ? "Windows" : /Mac OS X/.test(ua) ? "macOS" : /Linux/.test(ua) ? "Linux" : "";
  return os ? `${browser} on ${os}` : browser;
}
