// Create-to-ready pieces shared by `npm run bench` (bench/run.ts) and the density bench (bench/density.ts): the admin
// API call, where a create's time went (from the workspace's own events), and removing an app image for a cold run.
import type Docker from 'dockerode';
import { otherRuns } from './processes.js';

/** The server every create-to-ready and density workspace runs. */
export const MEMORY_SERVER = { name: 'memory', package: '@modelcontextprotocol/server-memory', env: { MEMORY_FILE_PATH: '/workspace/memory.json' } };

export interface ApiAnswer<T> {
  status: number;
  body: T | undefined;
}

/** One admin API request with the bench's bearer token (30 s timeout). */
export async function api<T = Record<string, unknown>>(url: string, method: string, path: string, token: string, body?: unknown): Promise<ApiAnswer<T>> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, body: (await res.json().catch(() => undefined)) as T | undefined };
}

export interface EventView {
  id: number;
  type: string;
  at: string;
  detail?: Record<string, unknown>;
}

export async function workspaceEvents(url: string, token: string, name: string, after = 0): Promise<EventView[]> {
  return (await api<EventView[]>(url, 'GET', `/api/v1/workspaces/${name}/events?after=${after}`, token)).body ?? [];
}

/** One create to `ready`: the client's view and the phases, in ms after the workspace's `workspace_created` event. */
export interface CreatePhases {
  totalMs: number;
  /** `image_built`: the server's image is present (found or built). */
  imageMs: number;
  /** `container_started`: `docker start` has returned. */
  startedMs: number;
  /** `ready`: every server answered the MCP handshake. */
  readyMs: number;
  /** `image_built`'s detail.cached: false when this create built the image. */
  cachedImage: boolean | undefined;
}

export function createPhases(events: readonly EventView[], totalMs: number): CreatePhases {
  const at = (t: string) => Date.parse(events.find((e) => e.type === t)?.at ?? '');
  const created = at('workspace_created');
  const cached = events.find((e) => e.type === 'image_built')?.detail?.cached;
  return {
    totalMs,
    imageMs: at('image_built') - created,
    startedMs: at('container_started') - created,
    readyMs: at('ready') - created,
    cachedImage: typeof cached === 'boolean' ? cached : undefined,
  };
}

/** Running workspace containers of other gateways on this engine (`ownGateway`'s are not counted). */
export async function otherGatewaysContainers(docker: Docker, ownGateway?: string): Promise<number> {
  const all = await docker.listContainers({ filters: { label: ['mcpx.workspace'], status: ['running'] } });
  return all.filter((c) => c.Labels['mcpx.gateway'] !== ownGateway).length;
}

export type ImageRemoval = { removed: true } | { removed: false; /** Another run is active: worth asking again later. */ busy: boolean; note: string };

/**
 * `docker rmi` of one app image (never the base image, never forced) for a cold-cache run. Refused while a
 * container (of anyone, running or not) uses it, and while another test or bench run or another gateway's
 * workspace is active on the machine: such a run may be about to create a container from the same
 * content-addressed image, and removing it under that run would break it.
 */
export async function removeAppImage(docker: Docker, image: string, ownGateway: string): Promise<ImageRemoval> {
  if (!image.startsWith('mcpx-app:')) return { removed: false, busy: false, note: `not removed: ${image || 'no image'} is not an mcpx app image` };
  const users = await docker.listContainers({ all: true, filters: { ancestor: [image] } });
  if (users.length > 0) return { removed: false, busy: true, note: `not removed: ${users.length} container(s) use ${image} (${users.map((u) => u.Names[0]).join(', ')})` };
  const others = otherRuns();
  const gateways = others.length > 0 ? 0 : await otherGatewaysContainers(docker, ownGateway);
  if (others.length > 0 || gateways > 0) {
    const what = others.length > 0 ? others.map((o) => o.slice(0, 60)).join(' | ') : `${gateways} running workspace container(s) of another gateway`;
    return { removed: false, busy: true, note: `not removed: another test or bench run is active (${what})` };
  }
  try {
    await docker.getImage(image).remove({ force: false });
    return { removed: true };
  } catch (err) {
    return { removed: false, busy: false, note: `docker rmi ${image} failed: ${(err instanceof Error ? err.message : String(err)).slice(0, 200)}` };
  }
}
