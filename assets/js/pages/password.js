// The password change: forced after a first start or a reset, and open to local accounts.

import { api } from "../api.js";
import { h, mount, errorBox, toast } from "../ui.js";

export async function render(root, app) {
  const forced = !!(app.session && app.session.user.requiresPasswordChange);
  const current = h("input", { id: "current-password", type: "password", autocomplete: "current-password", required: true });
  const next = h("input", { id: "new-password", type: "password", autocomplete: "new-password", required: true, minlength: 10, maxlength: 256 });
  const again = h("input", { id: "confirm-password", type: "password", autocomplete: "new-password", required: true, minlength: 10, maxlength: 256 });
  const error = h("div", { "aria-live": "assertive" });
  const submit = h("button", { type: "submit", class: "primary", id: "change-password" }, "Change password");
  const form = h("form", { class: "card stack" },
    h("label", { for: "current-password" }, "Current password"), current,
    h("label", { for: "new-password" }, "New password (10 to 256 characters)"), next,
    h("label", { for: "confirm-password" }, "New password again"), again,
    submit, error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.replaceChildren();
    if (next.value !== again.value) {
      mount(error, errorBox(new Error("The two new passwords are not the same.")));
      again.focus();
      return;
    }
    submit.disabled = true;
    try {
      await api("/auth/password", { method: "POST", body: { currentPassword: current.value, newPassword: next.value } });
      toast("Password changed.");
      await app.signedIn();
    } catch (e) {
      mount(error, errorBox(e));
    } finally {
      submit.disabled = false;
    }
  });
  mount(
    root,
    h("div", { class: "signin" },
      h("h1", { id: "page-title", text: "Change your password" }),
      forced ? h("p", { class: "notice", text: "Please choose a new password before you continue." }) : null,
      form,
      forced ? h("button", { type: "button", class: "link", onclick: () => app.signOut() }, "Sign out") : null,
    ),
  );
  current.focus();
}
