/**
 * Forms built from a list of field specs. Values are read back typed; API validation errors
 * ({"error", "field": "probes[1].port"}) are shown next to the field they name.
 */

import { ApiError, type Probe } from "./api";
import { h } from "./dom";

export type FieldSpec =
  | { key: string; label: string; type: "text"; help?: string; lockOnEdit?: boolean }
  | { key: string; label: string; type: "number"; help?: string; step?: number | "any"; optional?: boolean }
  | { key: string; label: string; type: "select"; options: readonly string[]; help?: string }
  | { key: string; label: string; type: "bool"; help?: string }
  | { key: string; label: string; type: "lines"; help?: string }
  | { key: string; label: string; type: "probes"; help?: string }
  | { key: string; label: string; type: "json"; help?: string };

type Values = Record<string, unknown>;

interface Control {
  read: () => unknown;
}

const PROBE_PROTOCOLS = ["tcp", "udp", "icmp", "http"] as const;
const DEFAULT_PORT: Record<string, number> = { tcp: 9001, udp: 9001, icmp: 0, http: 9002 };

function errorSlot(): HTMLElement {
  return h("div", { class: "field-error", role: "alert" });
}

function probesEditor(initial: Probe[]): { el: HTMLElement; read: () => Probe[] } {
  const list = h("div", { class: "probes" });
  const rows: { el: HTMLElement; read: () => Probe }[] = [];
  const renumber = () =>
    rows.forEach((r, i) => {
      r.el.dataset.field = `probes[${i}]`;
      r.el.querySelectorAll<HTMLElement>("[data-sub]").forEach((s) => {
        s.dataset.field = `probes[${i}].${s.dataset.sub ?? ""}`;
      });
    });
  const add = (p: Probe) => {
    const proto = h("select", { "aria-label": "protocol" }, PROBE_PROTOCOLS.map((x) => h("option", { value: x, selected: x === p.protocol }, x)));
    const port = h("input", { type: "number", min: 0, max: 65535, value: p.port, "aria-label": "port", class: "narrow" });
    const dscp = h("input", { type: "number", min: 0, max: 63, value: p.dscp ?? "", placeholder: "DC's", "aria-label": "dscp", class: "narrow" });
    proto.addEventListener("change", () => {
      port.value = String(DEFAULT_PORT[proto.value] ?? 0);
    });
    const el = h(
      "div",
      { class: "probe-row" },
      h("span", { "data-sub": "protocol" }, proto, errorSlot()),
      h("span", { "data-sub": "port" }, "port ", port, errorSlot()),
      h("span", { "data-sub": "dscp" }, "dscp ", dscp, errorSlot()),
    );
    const row = {
      el,
      read: (): Probe => {
        const out: Probe = { protocol: proto.value as Probe["protocol"], port: Number(port.value) };
        if (dscp.value !== "") out.dscp = Number(dscp.value);
        return out;
      },
    };
    el.append(
      h("button", {
        type: "button",
        class: "btn small",
        "aria-label": "remove probe",
        onclick: () => {
          rows.splice(rows.indexOf(row), 1);
          el.remove();
          renumber();
        },
      }, "✕"),
      errorSlot(),
    );
    rows.push(row);
    list.appendChild(el);
    renumber();
  };
  initial.forEach(add);
  const el = h(
    "div",
    null,
    list,
    h("button", { type: "button", class: "btn small", onclick: () => add({ protocol: "tcp", port: 9001 }) }, "+ probe"),
  );
  return { el, read: () => rows.map((r) => r.read()) };
}

function control(spec: FieldSpec, value: unknown, editing: boolean): { input: HTMLElement; ctl: Control } {
  switch (spec.type) {
    case "text": {
      const i = h("input", { type: "text", name: spec.key, value: typeof value === "string" ? value : "", readonly: editing && spec.lockOnEdit === true });
      return { input: i, ctl: { read: () => i.value.trim() } };
    }
    case "number": {
      const i = h("input", { type: "number", name: spec.key, step: spec.step ?? 1, value: typeof value === "number" ? value : "" });
      return {
        input: i,
        ctl: { read: () => (i.value === "" ? (spec.optional === true ? undefined : 0) : Number(i.value)) },
      };
    }
    case "select": {
      const s = h("select", { name: spec.key }, spec.options.map((o) => h("option", { value: o, selected: o === value }, o)));
      return { input: s, ctl: { read: () => s.value } };
    }
    case "bool": {
      const c = h("input", { type: "checkbox", name: spec.key, checked: value === true });
      return { input: c, ctl: { read: () => c.checked } };
    }
    case "lines": {
      const t = h("textarea", { name: spec.key, rows: 3 });
      t.value = Array.isArray(value) ? value.join("\n") : "";
      return {
        input: t,
        ctl: { read: () => t.value.split(/[\n,]/).map((s) => s.trim()).filter((s) => s !== "") },
      };
    }
    case "probes": {
      const p = probesEditor(Array.isArray(value) ? (value as Probe[]) : []);
      return { input: p.el, ctl: { read: p.read } };
    }
    case "json": {
      const t = h("textarea", { name: spec.key, rows: 14, class: "mono" });
      t.value = JSON.stringify(value ?? {}, null, 2);
      return { input: t, ctl: { read: () => JSON.parse(t.value) as unknown } };
    }
  }
}

/** Where an API error's field is shown: the exact field, else its closest enclosing one. */
export function fieldCandidates(field: string): string[] {
  const out: string[] = [];
  let f = field;
  while (f !== "") {
    out.push(f);
    const cut = Math.max(f.lastIndexOf("."), f.lastIndexOf("["));
    f = cut > 0 ? f.slice(0, cut) : "";
  }
  const dot = field.indexOf(".");
  if (dot > 0 && !field.slice(0, dot).includes("[")) out.push(...fieldCandidates(field.slice(dot + 1)));
  return out;
}

export interface Form {
  el: HTMLFormElement;
}

export function buildForm(
  specs: readonly FieldSpec[],
  initial: Values,
  editing: boolean,
  onSubmit: (v: Values) => Promise<void>,
  extra?: HTMLElement[],
): Form {
  const controls = new Map<string, Control>();
  const formError = h("div", { class: "form-error", role: "alert", "data-testid": "form-error" });
  const fields = specs.map((spec) => {
    const { input, ctl } = control(spec, initial[spec.key], editing);
    controls.set(spec.key, ctl);
    const id = `f-${spec.key}`;
    input.id = id;
    return h(
      "div",
      { class: `field field-${spec.type}`, "data-field": spec.key },
      h("label", { for: id }, spec.label),
      input,
      spec.help !== undefined ? h("div", { class: "help" }, spec.help) : null,
      errorSlot(),
    );
  });
  const save = h("button", { type: "submit", class: "btn primary", "data-testid": "save" }, "Save");
  const el = h("form", { class: "form", novalidate: true }, fields, formError, h("div", { class: "row" }, save, extra ?? []));
  const clearErrors = () => {
    el.querySelectorAll(".field-error").forEach((e) => (e.textContent = ""));
    el.querySelectorAll(".has-error").forEach((e) => e.classList.remove("has-error"));
    formError.textContent = "";
  };
  const showError = (e: unknown) => {
    if (e instanceof ApiError && e.field !== "" && e.field !== "body") {
      for (const f of fieldCandidates(e.field)) {
        const target = el.querySelector<HTMLElement>(`[data-field="${CSS.escape(f)}"]`);
        const slot = target?.querySelector<HTMLElement>(":scope > .field-error");
        if (target && slot) {
          target.classList.add("has-error");
          slot.textContent = `${e.message}${f !== e.field ? ` (${e.field})` : ""}`;
          target.scrollIntoView({ block: "nearest" });
          return;
        }
      }
    }
    const field = e instanceof ApiError && e.field !== "" ? ` (${e.field})` : "";
    formError.textContent = `${e instanceof Error ? e.message : String(e)}${field}`;
  };
  el.addEventListener("submit", (ev) => {
    ev.preventDefault();
    clearErrors();
    const values: Values = {};
    try {
      for (const [k, c] of controls) {
        const v = c.read();
        if (v !== undefined) values[k] = v;
      }
    } catch (e) {
      showError(e);
      return;
    }
    save.disabled = true;
    onSubmit(values)
      .catch(showError)
      .finally(() => {
        save.disabled = false;
      });
  });
  return { el };
}
