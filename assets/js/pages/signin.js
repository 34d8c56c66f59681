// Sign in: with Plex (a PIN the person approves on Plex's page while we poll) or with a local
// username and password.

import { api } from "../api.js";
import { h, mount, errorBox } from "../ui.js";

export async function render(root, app) {
  const plexArea = h("div", { class: "plex-area", "aria-live": "polite" });
  const plexButton = h("button", { type: "button", class: "primary plex", id: "plex-signin" }, "Sign in with Plex");
  let polling = null;
  app.onLeave(() => clearTimeout(polling));

  plexButton.addEventListener("click", async () => {
    clearTimeout(polling);
    plexButton.disabled = true;
    mount(plexArea, h("p", { class: "muted", text: "Asking Plex for a sign-in code…" }));
    let pin;
    try {
      ({ data: pin } = await api("/auth/plex/pin", { method: "POST" }));
    } catch (e) {
      plexButton.disabled = false;
      mount(plexArea, errorBox(e));
      return;
    }
    // Opened from the click itself so pop-up blockers let it through; the link is there if not.
    window.open(pin.authUrl, "_blank", "noopener");
    const status = h("p", { class: "muted", id: "plex-status", text: "Waiting for you to approve the sign-in on Plex…" });
    mount(
      plexArea,
      h("p", {}, "Your code: ", h("strong", { class: "pin-code", id: "plex-code", text: pin.code })),
      h("p", {}, h("a", { href: pin.authUrl, target: "_blank", rel: "noopener", id: "plex-link" }, "Open the Plex sign-in page"),
        " if it did not open by itself."),
      status,
    );
    const poll = async () => {
      try {
        const { data } = await api(`/auth/plex/pin/${encodeURIComponent(pin.pinId)}/poll`, { method: "POST", quietAuth: true });
        if (data.authorized) {
          status.textContent = "Signed in. Loading your dashboard…";
          await app.signedIn();
          return;
        }
        polling = setTimeout(poll, pin.pollIntervalMs || 2000);
      } catch (e) {
        plexButton.disabled = false;
        plexButton.textContent = "Start again with Plex";
        mount(plexArea, errorBox(e));
      }
    };
    polling = setTimeout(poll, pin.pollIntervalMs || 2000);
  });

  const error = h("div", { "aria-live": "assertive" });
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true, maxlength: 256 });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true, maxlength: 256 });
  const remember = h("input", { id: "remember", name: "remember", type: "checkbox" });
  const submit = h("button", { type: "submit", class: "primary", id: "local-signin" }, "Sign in");
  const form = h(
    "form",
    { class: "stack", "aria-labelledby": "local-title" },
    h("h2", { id: "local-title", text: "Local account" }),
    h("label", { for: "username" }, "Username or email"), username,
    h("label", { for: "password" }, "Password"), password,
    h("label", { class: "check", for: "remember" }, remember, " Remember me for 30 days"),
    submit,
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.replaceChildren();
    try {
      await api("/auth/login", {
        method: "POST",
        body: { username: username.value.trim(), password: password.value, rememberMe: remember.checked },
        quietAuth: true,
      });
      await app.signedIn();
    } catch (e) {
      mount(error, errorBox(e));
      password.select();
    } finally {
      submit.disabled = false;
    }
  });

  // Why we are here, when a session ended while the page was open (expired, suspended).
  const reason = app.signedOutBy;
  app.signedOutBy = null;
  mount(
    root,
    h("div", { class: "signin" },
      h("h1", { id: "page-title" }, h("img", { src: "/icon.svg", alt: "", width: 40, height: 40 }), " MediaNest"),
      reason ? errorBox(reason) : null,
      h("p", { class: "muted", text: "Sign in to see what's up, request movies and shows, and follow your downloads." }),
      h("div", { class: "card stack" }, h("h2", { text: "Plex account" }), plexButton, plexArea),
      h("div", { class: "card" }, form),
    ),
  );
  username.focus();
}
