/** What the UI remembers: colour thresholds (localStorage) and the admin token (session only). */

import { DEFAULT_THRESHOLDS, type Thresholds } from "./scale";

const THRESHOLDS_KEY = "pingmesh.thresholds";
const TOKEN_KEY = "pingmesh.token";

export type ThresholdSet = Record<"latency" | "loss", Thresholds>;

function valid(t: unknown): t is Thresholds {
  if (typeof t !== "object" || t === null) return false;
  const { good, bad } = t as Record<string, unknown>;
  return typeof good === "number" && typeof bad === "number" && good > 0 && bad >= good;
}

export function loadThresholds(): ThresholdSet {
  try {
    const raw = localStorage.getItem(THRESHOLDS_KEY);
    if (raw !== null) {
      const j = JSON.parse(raw) as Record<string, unknown>;
      return {
        latency: valid(j.latency) ? j.latency : DEFAULT_THRESHOLDS.latency,
        loss: valid(j.loss) ? j.loss : DEFAULT_THRESHOLDS.loss,
      };
    }
  } catch {
    // storage unavailable or corrupt: use the defaults
  }
  return { ...DEFAULT_THRESHOLDS };
}

export function saveThresholds(t: ThresholdSet): void {
  try {
    localStorage.setItem(THRESHOLDS_KEY, JSON.stringify(t));
  } catch {
    // storage unavailable: the thresholds hold until the page is reloaded
  }
}

/** The admin token of this browser tab's session, or null when none was given yet. */
export function sessionToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setSessionToken(token: string | null): void {
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // storage unavailable: the token is asked again next time
  }
}
