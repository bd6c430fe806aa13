// Turns an npm spec into a fixed identity (name@version, or a content hash for file: specs), so that an image can be
// keyed by what it contains; registry answers are memoised for a while so re-applying a spec costs nothing.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { isAbsolute, join, normalize } from 'node:path';
import { ImageError } from './image-error.js';
import { runProcess } from './process-runner.js';

export interface ResolvedPackage {
  /** What was asked for, as written in the spec. */
  spec: string;
  /** What to hand to `npm install`: an exact name@version, or the local path. */
  installSpec: string;
  /** Everything that decides the installed content; part of the image key. */
  identity: string;
  /** name@version when known before installing (always, except for a local tarball). */
  nameVersion?: string;
}

export interface PackageResolver {
  resolve(spec: string): Promise<ResolvedPackage>;
}

export interface PackageResolverDeps {
  npmEnv: NodeJS.ProcessEnv;
  ttlMs: number;
  now?: () => number;
}

const VIEW_TIMEOUT_MS = 60_000;

export function createPackageResolver(deps: PackageResolverDeps): PackageResolver {
  const now = deps.now ?? Date.now;
  const memo = new Map<string, { expires: number; value: Promise<ResolvedPackage> }>();

  async function resolveRegistry(spec: string): Promise<ResolvedPackage> {
    // npm view does not understand aliases ("x@npm:real@1"); the installed content is that of the real package.
    const alias = /^(?:@?[^@/]+(?:\/[^@]+)?@)?npm:(.+)$/.exec(spec);
    const viewSpec = alias?.[1] ?? spec;
    const r = await runProcess('npm', ['view', viewSpec, 'name', 'version', '--json'], {
      env: deps.npmEnv,
      timeoutMs: VIEW_TIMEOUT_MS,
    });
    if (r.timedOut) throw new ImageError(`could not resolve npm package "${spec}": npm view timed out`);
    const parsed = parseViewOutput(r.stdout);
    if ('error' in parsed) {
      const reason = parsed.error ?? summarizeNpmStderr(r.stderr) ?? `npm exited with ${String(r.code)}`;
      throw new ImageError(`could not resolve npm package "${spec}": ${reason}`);
    }
    const nameVersion = `${parsed.name}@${parsed.version}`;
    return { spec, installSpec: nameVersion, identity: `npm:${nameVersion}`, nameVersion };
  }

  return {
    async resolve(spec) {
      const local = localPath(spec);
      // Local content can change at any moment, so it is hashed on every call rather than memoised.
      if (local !== undefined) return resolveLocal(spec, local);
      const hit = memo.get(spec);
      if (hit && hit.expires > now()) return hit.value;
      const value = resolveRegistry(spec);
      memo.set(spec, { expires: now() + deps.ttlMs, value });
      value.catch(() => {
        if (memo.get(spec)?.value === value) memo.delete(spec);
      });
      return value;
    },
  };
}

/** The absolute path of a `file:` spec (or a bare absolute path), undefined for registry specs. */
export function localPath(spec: string): string | undefined {
  let p: string;
  if (spec.startsWith('file:')) p = spec.slice('file:'.length);
  else if (spec.startsWith('/') || spec.startsWith('./') || spec.startsWith('../') || spec.startsWith('~')) p = spec;
  else return undefined;
  // Relative paths would depend on the gateway's working directory, which the spec's author cannot know.
  if (!isAbsolute(p)) throw new ImageError(`package "${spec}": a local path must be absolute (file:/abs/dir)`);
  return normalize(p);
}

async function resolveLocal(spec: string, path: string): Promise<ResolvedPackage> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    throw new ImageError(`package "${spec}": ${path} does not exist`);
  }
  const installSpec = `file:${path}`;
  if (st.isFile()) {
    // A packed tarball: its bytes are the identity; name and version are read after installing.
    return { spec, installSpec, identity: `tgz:${await hashFile(path)}` };
  }
  if (!st.isDirectory()) throw new ImageError(`package "${spec}": ${path} is neither a directory nor a tarball`);
  let manifest: unknown;
  try {
    manifest = JSON.parse(await readFile(join(path, 'package.json'), 'utf8'));
  } catch {
    throw new ImageError(`package "${spec}": ${path}/package.json is missing or not valid JSON`);
  }
  const name = field(manifest, 'name');
  const version = field(manifest, 'version') ?? '0.0.0';
  if (name === undefined) throw new ImageError(`package "${spec}": ${path}/package.json has no "name"`);
  const nameVersion = `${name}@${version}`;
  return { spec, installSpec, identity: `dir:${nameVersion}:${await hashDirectory(path)}`, nameVersion };
}

/**
 * A content hash of a directory tree: relative paths, kinds, executable bits, link targets and bytes, in a fixed
 * order. node_modules and .git are left out: npm does not pack them, and they would make every key unique.
 */
export async function hashDirectory(root: string): Promise<string> {
  const h = createHash('sha256');
  async function walk(rel: string): Promise<void> {
    const entries = await readdir(join(root, rel), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name === 'node_modules' || e.name === '.git') continue;
      const p = rel === '' ? e.name : `${rel}/${e.name}`;
      const abs = join(root, p);
      if (e.isDirectory()) {
        h.update(`d ${p}\0`);
        await walk(p);
      } else if (e.isSymbolicLink()) {
        h.update(`l ${p}\0${await readlink(abs)}\0`);
      } else if (e.isFile()) {
        const st = await lstat(abs);
        h.update(`f ${p}\0${(st.mode & 0o111) !== 0 ? 'x' : '-'}${st.size}\0`);
        for await (const chunk of createReadStream(abs)) h.update(chunk as Buffer);
      }
    }
  }
  await walk('');
  return h.digest('hex');
}

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** npm's `view --json` answer: one object, or an array when a range matches several versions. */
export function parseViewOutput(stdout: string): { name: string; version: string } | { error: string | undefined } {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    return { error: stdout.trim() === '' ? 'no matching version' : undefined };
  }
  if (typeof doc === 'object' && doc !== null && 'error' in doc) {
    const e = doc.error;
    const summary = typeof e === 'object' && e !== null && 'summary' in e && typeof e.summary === 'string' ? e.summary : undefined;
    const code = typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
    return { error: summary !== undefined ? `${code !== undefined ? `${code} ` : ''}${summary}` : undefined };
  }
  const candidates = (Array.isArray(doc) ? doc : [doc]).flatMap((d: unknown) => {
    const name = field(d, 'name');
    const version = field(d, 'version');
    return name !== undefined && version !== undefined ? [{ name, version }] : [];
  });
  // npm lists matches in publication order, not version order (2025.11.25 comes before 2025.4.25).
  const best = candidates.reduce<{ name: string; version: string } | undefined>(
    (acc, c) => (acc === undefined || compareVersions(c.version, acc.version) > 0 ? c : acc),
    undefined,
  );
  return best ?? { error: 'no matching version' };
}

/** Semver precedence (build metadata ignored; prerelease below its release). */
export function compareVersions(a: string, b: string): number {
  const split = (v: string) => {
    const [core = '', pre] = v.split('+')[0]?.split(/-(.*)/s) ?? [];
    return { core: core.split('.').map((n) => Number.parseInt(n, 10) || 0), pre: pre === undefined || pre === '' ? [] : pre.split('.') };
  };
  const x = split(a);
  const y = split(b);
  for (let i = 0; i < Math.max(x.core.length, y.core.length); i++) {
    const d = (x.core[i] ?? 0) - (y.core[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  if (x.pre.length === 0 || y.pre.length === 0) return Math.sign(y.pre.length - x.pre.length);
  for (let i = 0; i < Math.max(x.pre.length, y.pre.length); i++) {
    const p = x.pre[i];
    const q = y.pre[i];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    const pn = /^\d+$/.test(p);
    const qn = /^\d+$/.test(q);
    if (pn && qn) {
      const d = Number(p) - Number(q);
      if (d !== 0) return Math.sign(d);
    } else if (pn !== qn) return pn ? -1 : 1;
    else if (p !== q) return p < q ? -1 : 1;
  }
  return 0;
}

/**
 * The line of npm's stderr that says what went wrong: the first one after "npm error code X" that is not
 * bookkeeping (syscall, path, errno), else the last line that is not the pointer to npm's debug log.
 */
export function summarizeNpmStderr(stderr: string): string | undefined {
  const lines = stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/complete log of this run/i.test(l) && !/^npm (error|ERR!)(\s+\S+)?$/.test(l));
  const codeAt = lines.findIndex((l) => /^npm (error|ERR!) code /.test(l));
  const code = codeAt >= 0 ? lines[codeAt]?.replace(/^npm (error|ERR!) code /, '') : undefined;
  const after = codeAt >= 0 ? lines.slice(codeAt + 1).find((l) => !/^npm (error|ERR!) (syscall|path|errno|code) /.test(l)) : undefined;
  const chosen = after ?? lines.at(-1);
  if (chosen === undefined) return undefined;
  const text = chosen.replace(/^npm (error|ERR!) /, '');
  return code !== undefined && !text.includes(code) ? `${code}: ${text}` : text;
}

function field(doc: unknown, key: string): string | undefined {
  if (typeof doc !== 'object' || doc === null || !(key in doc)) return undefined;
  const v = (doc as Record<string, unknown>)[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}
