/** Modal dialogs: confirmation and the admin-token prompt. */

import { h } from "./dom";
import { sessionToken, setSessionToken } from "./prefs";

function modal(content: HTMLElement): { close: () => void } {
  const back = h("div", { class: "modal-back" }, h("div", { class: "modal", role: "dialog", "aria-modal": "true" }, content));
  document.body.appendChild(back);
  return { close: () => back.remove() };
}

export function confirmDialog(title: string, text: string, ok: string, danger = true): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (v: boolean) => {
      m.close();
      resolve(v);
    };
    const okBtn = h("button", { class: danger ? "btn danger" : "btn primary", "data-testid": "confirm-ok", onclick: () => done(true) }, ok);
    const m = modal(
      h(
        "div",
        null,
        h("h2", null, title),
        h("p", null, text),
        h("div", { class: "row end" }, h("button", { class: "btn", onclick: () => done(false) }, "Cancel"), okBtn),
      ),
    );
    okBtn.focus();
  });
}

/** Asks for the admin token; the answer is kept in sessionStorage for this tab only. */
export function askToken(again: boolean): Promise<string | null> {
  const known = sessionToken();
  if (!again && known !== null) return Promise.resolve(known);
  if (again) setSessionToken(null);
  return new Promise((resolve) => {
    const input = h("input", { type: "password", autocomplete: "off", "data-testid": "token-input", placeholder: "admin token" });
    const done = (v: string | null) => {
      m.close();
      if (v !== null) setSessionToken(v);
      resolve(v);
    };
    const form = h(
      "form",
      { onsubmit: (e: Event) => { e.preventDefault(); done(input.value.trim()); } },
      h("h2", null, "Admin token"),
      h(
        "p",
        null,
        again
          ? "The server refused the token. Enter the admin token again."
          : "Changes need the server's admin token. It is kept for this browser tab only. " +
              "Leave it empty if the server has no admin token (writes from loopback).",
      ),
      input,
      h(
        "div",
        { class: "row end" },
        h("button", { class: "btn", type: "button", onclick: () => done(null) }, "Cancel"),
        h("button", { class: "btn primary", type: "submit", "data-testid": "token-ok" }, "Continue"),
      ),
    );
    const m = modal(form);
    input.focus();
  });
}
