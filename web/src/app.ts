/** Fired on window each time the controller status has been fetched again. */
export const STATUS_EVENT = "pingmesh-status";

/** What every view gets: where to draw, the current route, and how to move. */

import type { Status } from "./api";
import type { Query, Route, View } from "./route";

export interface Ctx {
  /** The view's own element; emptied when the route changes. */
  root: HTMLElement;
  route: Route;
  /** Navigates to a view, keeping the data query unless one is given. */
  go: (view: View, q?: Partial<Query>) => void;
  /** Changes the data query of the current view (replaces the history entry). */
  setQuery: (patch: Partial<Query>) => void;
  /** Last known controller status, null when unknown. */
  status: () => Status | null;
  /** Fetches the controller status again and redraws the banner. */
  refreshStatus: () => Promise<void>;
  /** Sets the breadcrumb trail: [label, view] pairs; the last one is the current page. */
  crumbs: (trail: [string, View | null][]) => void;
}

/** A view draws into ctx.root and returns what to undo (timers, observers) when it is left. */
export type ViewFn = (ctx: Ctx) => (() => void) | void;
