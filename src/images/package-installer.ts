// Installs one npm package on the host into a staging folder, with install scripts disabled (they would run
// third-party code on the gateway's host), and finds the JavaScript file that starts the server.
import { lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { ImageError } from './image-error.js';
import { summarizeNpmStderr } from './package-resolver.js';
import { runProcess } from './process-runner.js';

export interface InstalledPackage {
  /** The folder holding `node_modules`. */
  stagingDir: string;
  /** The package's folder name under node_modules (its name, or an alias). */
  dirName: string;
  name: string;
  version: string;
  /** The entry script, relative to the package folder, in POSIX form without "./". */
  entry: string;
}

export interface InstallOptions {
  stagingDir: string;
  installSpec: string;
  /** How the package is named in messages. */
  display: string;
  npmEnv: NodeJS.ProcessEnv;
  timeoutMs: number;
  onProgress: (message: string) => void;
}

export async function installPackage(opts: InstallOptions): Promise<InstalledPackage> {
  await rm(opts.stagingDir, { recursive: true, force: true });
  await mkdir(opts.stagingDir, { recursive: true, mode: 0o700 });
  await writeFile(join(opts.stagingDir, 'package.json'), `${JSON.stringify({ name: 'mcpx-app', private: true }, null, 2)}\n`);

  opts.onProgress(`installing ${opts.display}`);
  const args = [
    'install',
    '--ignore-scripts',
    '--omit=dev',
    '--no-audit',
    '--no-fund',
    '--no-update-notifier',
    // Without it a file: spec becomes a symlink to the host folder, which a build context cannot carry.
    '--install-links',
    opts.installSpec,
  ];
  const r = await runProcess('npm', args, {
    cwd: opts.stagingDir,
    env: { ...opts.npmEnv, npm_config_ignore_scripts: 'true' },
    timeoutMs: opts.timeoutMs,
    onStderrLine: (line) => {
      if (/^npm (warn|WARN) deprecated/.test(line)) opts.onProgress(line);
    },
  });
  if (r.timedOut) {
    throw new ImageError(`npm install of ${opts.display} did not finish within ${Math.round(opts.timeoutMs / 1000)} s`);
  }
  if (r.code !== 0) {
    const reason = summarizeNpmStderr(r.stderr) ?? `npm exited with ${r.code === null ? `signal ${String(r.signal)}` : String(r.code)}`;
    throw new ImageError(`npm install of ${opts.display} failed: ${reason}`);
  }

  const top = await readJson(join(opts.stagingDir, 'package.json'));
  const deps = isRecord(top) && isRecord(top.dependencies) ? Object.keys(top.dependencies) : [];
  const dirName = deps[0];
  if (deps.length !== 1 || dirName === undefined) {
    throw new ImageError(`npm install of ${opts.display} did not record exactly one dependency (found ${deps.length})`);
  }
  const pkgDir = join(opts.stagingDir, 'node_modules', dirName);
  const manifest = await readJson(join(pkgDir, 'package.json'));
  if (!isRecord(manifest)) throw new ImageError(`${opts.display}: the installed package has no readable package.json`);
  const name = typeof manifest.name === 'string' ? manifest.name : dirName;
  const version = typeof manifest.version === 'string' ? manifest.version : '0.0.0';
  const entry = await locateEntry(pkgDir, chooseEntry(manifest, name), `${name}@${version}`);
  return { stagingDir: opts.stagingDir, dirName, name, version, entry };
}

/**
 * The script that starts the server, as the package declares it: its `bin` (one entry; or the one named like the
 * package; or the first), else `main`, else index.js.
 */
export function chooseEntry(manifest: Record<string, unknown>, name: string): string {
  const bin = manifest.bin;
  if (typeof bin === 'string' && bin !== '') return bin;
  if (isRecord(bin)) {
    const entries = Object.entries(bin).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== '');
    const unscoped = name.replace(/^@[^/]+\//, '');
    const chosen = entries.length === 1 ? entries[0] : (entries.find(([k]) => k === unscoped) ?? entries[0]);
    if (chosen) return chosen[1];
  }
  if (typeof manifest.main === 'string' && manifest.main !== '') return manifest.main;
  return 'index.js';
}

/** Checks the declared entry exists inside the package (never outside it) and settles its exact file name. */
async function locateEntry(pkgDir: string, declared: string, display: string): Promise<string> {
  const clean = posix.normalize(declared.replace(/\\/g, '/')).replace(/^(\.\/)+/, '');
  if (clean.startsWith('../') || clean === '..' || clean.startsWith('/')) {
    throw new ImageError(`${display}: its entry "${declared}" points outside the package`);
  }
  // Node's own resolution of a main script tries these too; the image has to name the file exactly.
  for (const candidate of [clean, `${clean}.js`, `${clean}/index.js`]) {
    const st = await lstat(join(pkgDir, candidate)).catch(() => undefined);
    if (st?.isFile()) return posix.normalize(candidate);
  }
  throw new ImageError(`${display}: its entry "${declared}" does not exist in the installed package`);
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
