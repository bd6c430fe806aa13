// The base runtime image: a root filesystem holding only the host's Node binary, the shared libraries it links and a
// minimal /etc, imported through the Engine API because no registry exists to pull a base from. No shell on purpose.
import { LAUNCHER_PATH, LAUNCHER_SOURCE } from './launcher.js';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { consumeEngineStream } from './docker-stream.js';
import {
  BASE_REPO,
  BUILDER_VERSION,
  LABEL_IMAGE,
  LABEL_KEY,
  LABEL_MANAGED,
  NODE_PATH_IN_IMAGE,
  SERVER_GID,
  SERVER_UID,
} from './image-constants.js';
import { runProcess } from './process-runner.js';
import { tarStream, type TarEntry } from './tar-writer.js';

export interface BasePlan {
  /** `mcpx-base:<hash16>` */
  ref: string;
  hash: string;
  entries: TarEntry[];
  changes: string[];
}

const PASSWD = `root:x:0:0:root:/root:/usr/sbin/nologin\nmcpx:x:${SERVER_UID}:${SERVER_GID}::/home/mcpx:/usr/sbin/nologin\n`;
const GROUP = `root:x:0:\nmcpx:x:${SERVER_GID}:\n`;
const NSSWITCH = 'passwd: files\ngroup: files\nhosts: files dns\n';
const HOSTS = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n';

const dir = (path: string, mode = 0o755, uid = 0, gid = 0): TarEntry => ({ type: 'directory', path, mode, uid, gid });

/** The directories the image must have, with the ownership and modes the servers rely on. */
const FIXED_DIRS: TarEntry[] = [
  dir('etc'),
  dir('root', 0o700),
  dir('home'),
  dir('home/mcpx', 0o750, SERVER_UID, SERVER_GID),
  dir('tmp', 0o1777),
  dir('var'),
  dir('var/tmp', 0o1777),
  // A named volume mounted here copies this owner and mode on first use, so the server can write its workspace.
  dir('workspace', 0o750, SERVER_UID, SERVER_GID),
  dir('app'),
  dir('run'),
  dir('run/secrets'),
  dir('usr'),
  dir('usr/local'),
  dir('usr/local/bin'),
];

/**
 * Works out what goes into the base image and its content hash. Hashing the bytes (rather than trusting a version
 * string) means a Node upgraded in place, or a library changed under it, yields a new image.
 */
export async function planBaseImage(nodeExecPath: string): Promise<BasePlan> {
  const nodeReal = await realpath(nodeExecPath);
  const libs = await listSharedLibraries(nodeReal);

  const files: TarEntry[] = [];
  const nodeStat = await stat(nodeReal);
  files.push({ type: 'file', path: rel(NODE_PATH_IN_IMAGE), mode: 0o755, source: { hostPath: nodeReal, size: nodeStat.size } });
  for (const lib of libs) {
    // The loader looks libraries up by the names ldd reports; symlinks on the host are resolved into real files
    // at those names, so the image needs no link farm (and merged-/usr hosts need no /lib -> usr/lib link).
    const real = await realpath(lib);
    const st = await stat(real);
    files.push({ type: 'file', path: rel(lib), mode: 0o755, source: { hostPath: real, size: st.size } });
  }
  files.push(
    { type: 'file', path: 'etc/passwd', mode: 0o644, source: Buffer.from(PASSWD) },
    { type: 'file', path: 'etc/group', mode: 0o644, source: Buffer.from(GROUP) },
    { type: 'file', path: 'etc/nsswitch.conf', mode: 0o644, source: Buffer.from(NSSWITCH) },
    { type: 'file', path: 'etc/hosts', mode: 0o644, source: Buffer.from(HOSTS) },
    { type: 'file', path: rel(LAUNCHER_PATH), mode: 0o644, source: Buffer.from(LAUNCHER_SOURCE) },
  );

  const dirs = new Map<string, TarEntry>(FIXED_DIRS.map((d) => [d.path, d]));
  for (const f of files) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (!dirs.has(p)) dirs.set(p, dir(p));
    }
  }
  const entries = [...[...dirs.values()].sort(byPath), ...files.sort(byPath)];

  const staticChanges = [
    `USER ${SERVER_UID}:${SERVER_GID}`,
    'WORKDIR /workspace',
    'ENV PATH=/usr/local/bin:/usr/bin:/bin',
    `LABEL ${LABEL_MANAGED}=true`,
    `LABEL ${LABEL_IMAGE}=base`,
  ];
  const hash = await hashPlan(entries, staticChanges);
  const tag = hash.slice(0, 16);
  return {
    ref: `${BASE_REPO}:${tag}`,
    hash,
    entries,
    changes: [...staticChanges, `LABEL ${LABEL_KEY}=${hash}`],
  };
}

/** Imports the planned root filesystem as `plan.ref`. */
export async function importBaseImage(docker: Docker, plan: BasePlan, onProgress: (m: string) => void): Promise<void> {
  const [repo, tag] = plan.ref.split(':');
  const body = Readable.from(tarStream(plan.entries));
  const response = await docker.importImage(body, { repo, tag, changes: plan.changes });
  await consumeEngineStream(response, (m) => {
    if (m.status !== undefined && m.status !== '') onProgress(`import: ${m.status}`);
  });
}

/** Absolute paths of the shared libraries (and the dynamic loader) the binary needs, as the loader names them. */
export async function listSharedLibraries(binary: string): Promise<string[]> {
  const r = await runProcess('ldd', [binary], { env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin', LC_ALL: 'C' }, timeoutMs: 30_000 });
  const text = `${r.stdout}\n${r.stderr}`;
  if (/not a dynamic executable|statically linked/.test(text)) return [];
  if (r.code !== 0) throw new Error(`ldd ${binary} failed: ${lastLine(r.stderr) || `exit ${String(r.code)}`}`);
  return parseLddOutput(r.stdout);
}

export function parseLddOutput(stdout: string): string[] {
  const out = new Set<string>();
  for (const line of stdout.split('\n')) {
    const mapped = /^\s*(\S+)\s+=>\s+(.+?)\s+\(0x[0-9a-f]+\)\s*$/.exec(line);
    if (mapped) {
      const target = mapped[2] ?? '';
      if (!target.startsWith('/')) throw new Error(`shared library ${mapped[1] ?? '?'} ${target}`);
      out.add(target);
      continue;
    }
    const direct = /^\s*(\/\S+)\s+\(0x[0-9a-f]+\)\s*$/.exec(line);
    if (direct?.[1] !== undefined) out.add(direct[1]);
    else if (/=>\s+not found/.test(line)) throw new Error(`shared library missing: ${line.trim()}`);
  }
  return [...out];
}

async function hashPlan(entries: TarEntry[], changes: string[]): Promise<string> {
  const h = createHash('sha256');
  h.update(`${BUILDER_VERSION}\n`);
  for (const c of changes) h.update(`change ${c}\n`);
  for (const e of entries) {
    const owner = `${e.uid ?? 0}:${e.gid ?? 0}`;
    if (e.type === 'directory') h.update(`dir ${e.path} ${e.mode.toString(8)} ${owner}\n`);
    else if (e.type === 'symlink') h.update(`link ${e.path} ${e.target} ${owner}\n`);
    else {
      const digest = Buffer.isBuffer(e.source) ? sha256(e.source) : await sha256File(e.source.hostPath);
      h.update(`file ${e.path} ${e.mode.toString(8)} ${owner} ${digest}\n`);
    }
  }
  return h.digest('hex');
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

const rel = (abs: string) => abs.replace(/^\/+/, '');
const byPath = (a: TarEntry, b: TarEntry) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
const lastLine = (s: string) => s.trim().split('\n').pop() ?? '';
