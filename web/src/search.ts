/** Finding a server by name, hostname or address. */

import { allServers, api, ApiError, type Server } from "./api";

/** Exact name first (one request), then a scan: exact address/hostname, then a name prefix. */
export async function findServer(q: string): Promise<Server | null> {
  try {
    return await api.server(q);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
  }
  const all = await allServers(undefined);
  return matchServer(all, q);
}

export function matchServer(all: readonly Server[], q: string): Server | null {
  const needle = q.toLowerCase();
  const exact = all.find(
    (s) =>
      s.name.toLowerCase() === needle ||
      s.hostname.toLowerCase() === needle ||
      s.addresses.some((a) => a.toLowerCase() === needle),
  );
  if (exact !== undefined) return exact;
  return all.find((s) => s.name.toLowerCase().startsWith(needle)) ??
    all.find((s) => s.name.toLowerCase().includes(needle)) ??
    null;
}
