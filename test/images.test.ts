// Integration tests of the image layer against the real Docker Engine: the base runtime, package images (registry
// and file:), the content-addressed cache, disabled install scripts, and ready images that are missing.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerSpec } from '../src/config/spec.js';
import { createImageBuilder, ImageError, npmEnvironment, type ImageBuilder, type ImageBuilderDeps } from '../src/images/index.js';

const docker = new Docker();
const TEST_LABELS = { 'mcpx.managed': 'true', 'mcpx.test': 'images' };
const LONG = 300_000;

let tmpRoot = '';
/** App images built from temporary folders: removed at the end (registry packages stay, they are the cache). */
const testImages = new Set<string>();

interface LogLine {
  level: 'info' | 'warn' | 'debug';
  msg: string;
}

/** A logger that remembers what it was told, so a test can count builds. */
function recordingLogger(): ImageBuilderDeps['logger'] & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: LogLine['level']) =>
    (...args: unknown[]): void => {
      const msg = args.find((a): a is string => typeof a === 'string') ?? '';
      lines.push({ level, msg });
    };
  return { lines, info: at('info'), warn: at('warn'), debug: at('debug') };
}

function newBuilder(logger = recordingLogger()): ImageBuilder {
  return createImageBuilder({ docker, cacheDir: join(tmpRoot, 'cache'), logger, npmEnv: npmEnvironment(process.env) });
}

function server(fields: Partial<ServerSpec> & { name?: string }): ServerSpec {
  return { name: 'srv', args: [], env: {}, secrets: [], ...fields };
}

interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  cmd?: string[];
  entrypoint?: string[];
  readonlyRootfs?: boolean;
  /** Written to the container's stdin; stdin is then closed once `until` matches stdout. */
  stdin?: string;
  until?: RegExp;
  timeoutMs?: number;
}

/** Runs a hardened, network-less container as user 10001 to completion and returns its exit code and output. */
async function runContainer(image: string, opts: RunOptions = {}): Promise<RunResult> {
  const interactive = opts.stdin !== undefined;
  const container = await docker.createContainer({
    Image: image,
    ...(opts.cmd ? { Cmd: opts.cmd } : {}),
    ...(opts.entrypoint ? { Entrypoint: opts.entrypoint } : {}),
    User: '10001:10001',
    Labels: TEST_LABELS,
    Tty: false,
    OpenStdin: interactive,
    StdinOnce: interactive,
    AttachStdin: interactive,
    AttachStdout: true,
    AttachStderr: true,
    HostConfig: {
      ReadonlyRootfs: opts.readonlyRootfs ?? true,
      NetworkMode: 'none',
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
    },
  });
  try {
    let live = '';
    let stdinStream: NodeJS.ReadWriteStream | undefined;
    if (interactive) {
      stdinStream = await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
      const out = new PassThrough();
      out.on('data', (c: Buffer) => (live += c.toString('utf8')));
      docker.modem.demuxStream(stdinStream, out, new PassThrough());
    }
    await container.start();
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    if (stdinStream && opts.stdin !== undefined) {
      stdinStream.write(opts.stdin);
      while (opts.until && !opts.until.test(live) && Date.now() < deadline) await sleep(25);
      stdinStream.end();
    }
    const timer = setTimeout(() => void container.kill().catch(() => undefined), Math.max(1, deadline - Date.now()));
    const waited = (await container.wait()) as { StatusCode: number };
    clearTimeout(timer);
    const logs = await container.logs({ stdout: true, stderr: true, follow: false });
    return { exitCode: waited.StatusCode, ...demux(logs) };
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

/** Splits the Engine's multiplexed log format (8-byte frame headers) into stdout and stderr. */
function demux(buf: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const kind = buf[i];
    const size = buf.readUInt32BE(i + 4);
    const payload = buf.subarray(i + 8, i + 8 + size);
    (kind === 2 ? err : out).push(payload);
    i += 8 + size;
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function writePackage(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(join(dir, rel, '..'), { recursive: true });
    await writeFile(join(dir, rel), text);
  }
}

beforeAll(async () => {
  tmpRoot = await mkdtemp(join(tmpdir(), 'mcpx-images-'));
});

afterAll(async () => {
  const leftovers = await docker.listContainers({ all: true, filters: { label: ['mcpx.test=images'] } });
  for (const c of leftovers) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
  for (const tag of testImages) await docker.getImage(tag).remove({ force: true }).catch(() => undefined);
  if (tmpRoot) await rm(tmpRoot, { recursive: true, force: true });
}, LONG);

describe('base runtime image', () => {
  it(
    'is built once and reused, by the same builder and by a new one',
    async () => {
      const logger = recordingLogger();
      const builder = newBuilder(logger);
      const progress: string[] = [];
      const [ref, again, third] = await Promise.all([
        builder.ensureBaseImage((m) => progress.push(m)),
        builder.ensureBaseImage(),
        builder.ensureBaseImage(),
      ]);
      expect(ref).toMatch(/^mcpx-base:[0-9a-f]{16}$/);
      expect(again).toBe(ref);
      expect(third).toBe(ref);
      // Concurrent callers share one import: at most one build was logged.
      expect(logger.lines.filter((l) => l.msg === 'base image built').length).toBeLessThanOrEqual(1);

      const before = await docker.getImage(ref).inspect();
      expect(before.Config.Labels).toMatchObject({ 'mcpx.managed': 'true', 'mcpx.image': 'base' });
      expect(before.Config.Labels?.['mcpx.workspace']).toBeUndefined();
      expect(before.Config.User).toBe('10001:10001');
      expect(before.Config.WorkingDir).toBe('/workspace');

      expect(await builder.ensureBaseImage()).toBe(ref);
      const freshLogger = recordingLogger();
      expect(await newBuilder(freshLogger).ensureBaseImage()).toBe(ref);
      expect(freshLogger.lines.some((l) => l.msg === 'base image built')).toBe(false);
      const after = await docker.getImage(ref).inspect();
      expect(after.Id).toBe(before.Id);
      expect(after.Created).toBe(before.Created);
    },
    LONG,
  );

  it(
    'runs node as user 10001 with a private /workspace, sticky /tmp, a read-only /app and no shell',
    async () => {
      const ref = await newBuilder().ensureBaseImage();
      const probe = `
        const fs = require('fs');
        const st = (p) => { const s = fs.statSync(p); return { uid: s.uid, gid: s.gid, mode: s.mode & 0o7777 }; };
        let appWrite = 'ok';
        try { fs.writeFileSync('/app/x', 'y'); } catch (e) { appWrite = e.code; }
        console.log(JSON.stringify({
          version: process.version, uid: process.getuid(), gid: process.getgid(),
          user: require('os').userInfo().username, cwd: process.cwd(),
          workspace: st('/workspace'), tmp: st('/tmp'), home: st('/home/mcpx'), app: st('/app'),
          shell: ['/bin/sh', '/bin/bash', '/usr/bin/sh', '/bin/busybox'].filter((p) => fs.existsSync(p)),
          appWrite,
        }));`;
      const r = await runContainer(ref, { cmd: ['/usr/local/bin/node', '-e', probe], readonlyRootfs: false });
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      const seen = JSON.parse(r.stdout) as Record<string, unknown>;
      expect(seen).toMatchObject({
        version: process.version,
        uid: 10001,
        gid: 10001,
        user: 'mcpx',
        cwd: '/workspace',
        workspace: { uid: 10001, gid: 10001, mode: 0o750 },
        tmp: { uid: 0, mode: 0o1777 },
        home: { uid: 10001, mode: 0o750 },
        app: { uid: 0, mode: 0o755 },
        shell: [],
        appWrite: 'EACCES',
      });
    },
    LONG,
  );
});

describe('package server images', () => {
  const memory = server({ name: 'memory', package: '@modelcontextprotocol/server-memory' });

  it(
    'builds @modelcontextprotocol/server-memory and its entrypoint answers an MCP initialize on stdio',
    async () => {
      const builder = newBuilder();
      const progress: string[] = [];
      const img = await builder.ensureServerImage(memory, (m) => progress.push(m));
      expect(img.image).toMatch(/^mcpx-app:[0-9a-f]{16}$/);
      expect(img.packageVersion).toMatch(/^@modelcontextprotocol\/server-memory@\d+\.\d+\.\d+/);
      expect(img.entrypoint[0]).toBe('/usr/local/bin/node');
      expect(img.entrypoint[1]).toMatch(/^\/app\/node_modules\/@modelcontextprotocol\/server-memory\/.+\.js$/);
      if (!img.cached) {
        expect(progress.some((m) => m.startsWith('installing @modelcontextprotocol/server-memory@'))).toBe(true);
        expect(progress).toContain(`building image ${img.image}`);
      }

      const info = await docker.getImage(img.image).inspect();
      expect(info.Config.Labels).toMatchObject({
        'mcpx.managed': 'true',
        'mcpx.image': 'app',
        'mcpx.package': img.packageVersion,
      });
      expect(info.Config.Labels?.['mcpx.workspace']).toBeUndefined();
      expect(info.Config.User).toBe('10001:10001');
      expect(info.Config.Entrypoint).toEqual(img.entrypoint);

      const init = {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'images-test', version: '1' } },
      };
      const r = await runContainer(img.image, { stdin: `${JSON.stringify(init)}\n`, until: /"id":1/ });
      const line = r.stdout.split('\n').find((l) => l.includes('"id":1'));
      expect(line, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBeDefined();
      const answer = JSON.parse(line ?? '{}') as { id?: number; result?: { serverInfo?: { name?: unknown } } };
      expect(answer.id).toBe(1);
      expect(typeof answer.result?.serverInfo?.name).toBe('string');
    },
    LONG,
  );

  it(
    'reuses the image for an unchanged spec: cached, fast, without npm',
    async () => {
      const builder = newBuilder();
      const first = await builder.ensureServerImage(memory);
      const progress: string[] = [];
      const started = Date.now();
      const second = await builder.ensureServerImage(memory, (m) => progress.push(m));
      const elapsed = Date.now() - started;
      expect(second).toEqual({ ...first, cached: true });
      expect(progress).toEqual([]);
      expect(elapsed).toBeLessThan(1000);
    },
    LONG,
  );

  it(
    'keeps the app layer root-owned and not writable by the server user, even on a writable root filesystem',
    async () => {
      const img = await newBuilder().ensureServerImage(memory);
      const probe = `
        const fs = require('fs');
        const pkg = '/app/node_modules/@modelcontextprotocol/server-memory';
        const writable = [];
        const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) {
          const p = d + '/' + e.name; const s = fs.lstatSync(p);
          if (!e.isSymbolicLink() && (s.uid !== 0 || (s.mode & 0o022) !== 0)) writable.push(p);
          if (e.isDirectory()) walk(p); } };
        walk('/app');
        let write = 'ok';
        try { fs.writeFileSync(pkg + '/dist/injected.js', 'x'); } catch (e) { write = e.code; }
        console.log(JSON.stringify({ writable: writable.slice(0, 5), write }));`;
      const r = await runContainer(img.image, { entrypoint: ['/usr/local/bin/node', '-e', probe], readonlyRootfs: false });
      expect(r.exitCode).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ writable: [], write: 'EACCES' });
    },
    LONG,
  );

  it(
    'fails with a message naming the package when npm cannot install it',
    async () => {
      const dir = join(tmpRoot, 'broken-pkg');
      await writePackage(dir, {
        'package.json': JSON.stringify({
          name: 'mcpx-test-broken',
          version: '1.0.0',
          bin: 'cli.js',
          dependencies: { '@mcpx-nonexistent-scope-zz/not-a-package': '1.0.0' },
        }),
        'cli.js': 'console.log("never");\n',
      });
      const err = await newBuilder()
        .ensureServerImage(server({ package: `file:${dir}` }))
        .then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ImageError);
      expect((err as Error).message).toMatch(/^npm install of mcpx-test-broken@1\.0\.0 failed: .*(E404|404)/);
      // The staging folder is cleaned even after a failure.
      const staging = join(tmpRoot, 'cache', 'staging');
      expect(existsSync(staging) ? await readdir(staging) : []).toEqual([]);
    },
    LONG,
  );

  it(
    'fails with a clear message for a package that does not exist on the registry',
    async () => {
      await expect(newBuilder().ensureServerImage(server({ package: '@mcpx-nonexistent-scope-zz/not-a-package' }))).rejects.toThrow(
        /could not resolve npm package "@mcpx-nonexistent-scope-zz\/not-a-package": E404/,
      );
    },
    LONG,
  );
});

describe('file: packages', () => {
  it(
    'builds a local package, runs its bin, and a changed file gives a new image',
    async () => {
      const dir = join(tmpRoot, 'marker-pkg');
      const marker = `MARKER-${randomBytes(6).toString('hex')}`;
      await writePackage(dir, {
        'package.json': JSON.stringify({
          name: '@mcpx-test/marker',
          version: '1.2.3',
          bin: { 'other-tool': 'bin/other.js', marker: 'bin/cli.js' },
        }),
        'bin/cli.js': `#!/usr/bin/env node\nconsole.log(${JSON.stringify(marker)}, process.argv.slice(2).join(','));\n`,
        'bin/other.js': 'console.log("wrong bin");\n',
        'node_modules/ignored/index.js': 'ignored by the content hash\n',
      });
      const spec = server({ package: `file:${dir}` });
      const logger = recordingLogger();
      const builder = newBuilder(logger);

      // Two concurrent callers share one build.
      const [img, twin] = await Promise.all([builder.ensureServerImage(spec), builder.ensureServerImage(spec)]);
      testImages.add(img.image);
      expect(twin).toBe(img);
      expect(logger.lines.filter((l) => l.msg === 'app image built')).toHaveLength(1);
      expect(img.cached).toBe(false);
      expect(img.packageVersion).toBe('@mcpx-test/marker@1.2.3');
      expect(img.entrypoint).toEqual(['/usr/local/bin/node', '/app/node_modules/@mcpx-test/marker/bin/cli.js']);

      const r = await runContainer(img.image, { cmd: ['a', 'b'] });
      expect(r.exitCode).toBe(0);
      expect(r.stdout.trim()).toBe(`${marker} a,b`);

      // Unchanged content (node_modules is not part of it) is the same image.
      await writeFile(join(dir, 'node_modules/ignored/index.js'), 'changed, still ignored\n');
      const same = await newBuilder().ensureServerImage(spec);
      expect(same).toEqual({ ...img, cached: true });

      const marker2 = `${marker}-v2`;
      await writeFile(join(dir, 'bin/cli.js'), `console.log(${JSON.stringify(marker2)});\n`);
      const changed = await builder.ensureServerImage(spec);
      testImages.add(changed.image);
      expect(changed.image).not.toBe(img.image);
      expect(changed.cached).toBe(false);
      const r2 = await runContainer(changed.image);
      expect(r2.stdout.trim()).toBe(marker2);
    },
    LONG,
  );

  it(
    'does not run install scripts on the host (while a plain npm install of the same package does)',
    async () => {
      const dir = join(tmpRoot, 'scripts-pkg');
      const markers = join(tmpRoot, 'script-markers');
      await mkdir(markers, { recursive: true });
      const touch = (name: string) =>
        `node -e "require('fs').writeFileSync('${markers}/${name}', 'ran')"`;
      await writePackage(dir, {
        'package.json': JSON.stringify({
          name: 'mcpx-test-scripts',
          version: '1.0.0',
          bin: 'cli.js',
          scripts: { preinstall: touch('preinstall'), install: touch('install'), postinstall: touch('postinstall'), prepare: touch('prepare') },
        }),
        'cli.js': `console.log("scripts-${randomBytes(4).toString('hex')}");\n`,
      });
      const img = await newBuilder().ensureServerImage(server({ package: `file:${dir}` }));
      testImages.add(img.image);
      expect(img.cached).toBe(false);
      expect(await readdir(markers)).toEqual([]);

      // The control: the same package installed the ordinary way runs its scripts, so the check above can fail.
      const control = join(tmpRoot, 'control');
      await mkdir(control);
      await writeFile(join(control, 'package.json'), '{"name":"control","private":true}');
      await promisify(execFile)('npm', ['install', '--no-audit', '--no-fund', '--install-links', `file:${dir}`], {
        cwd: control,
        timeout: 120_000,
      });
      expect(await readdir(markers)).toContain('postinstall');
    },
    LONG,
  );
});

describe('image servers', () => {
  it(
    'uses a local image as it is, with the spec command or the image entrypoint',
    async () => {
      const builder = newBuilder();
      const base = await builder.ensureBaseImage();
      const id = (await docker.getImage(base).inspect()).Id;
      expect(await builder.ensureServerImage(server({ image: base }))).toEqual({ image: base, entrypoint: [], cached: true, id });
      const command = ['/usr/local/bin/node', '-e', '1'];
      expect(await builder.ensureServerImage(server({ image: base, command }))).toEqual({ image: base, entrypoint: command, cached: true, id });
    },
    LONG,
  );

  it(
    'gives back a recorded image from local look-ups only: by its reference, by its id once the tag is gone, not once the id is gone',
    async () => {
      const builder = newBuilder();
      const base = await builder.ensureBaseImage();
      const id = (await docker.getImage(base).inspect()).Id;
      expect(await builder.recordedImage(server({ image: base }), { image: base, id })).toEqual({ image: base, entrypoint: [], cached: true, id });
      // A tag that no longer names the recorded id (removed, or moved to other content): the id itself is used.
      const gone = `mcpx-test/recorded-${randomBytes(4).toString('hex')}:1`;
      expect(await builder.recordedImage(server({ image: gone }), { image: gone, id })).toEqual({ image: id, entrypoint: [], cached: true, id });
      const missing = `sha256:${'0'.repeat(64)}`;
      expect(await builder.recordedImage(server({ image: base }), { image: base, id: missing })).toBeUndefined();
      // Not the image this spec names.
      expect(await builder.recordedImage(server({ image: 'example/other:1' }), { image: base, id })).toBeUndefined();
      // A package server runs only this builder's app images (the base is not one).
      expect(await builder.recordedImage(server({ package: 'left-pad' }), { image: base, id })).toBeUndefined();
    },
    LONG,
  );

  it(
    'fails clearly for an image that is neither local nor pullable',
    async () => {
      const ref = `mcpx-test/missing-${randomBytes(4).toString('hex')}:1.0`;
      const err = await newBuilder()
        .ensureServerImage(server({ image: ref }))
        .then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ImageError);
      expect((err as Error).message).toMatch(new RegExp(`^image ${ref.replace(/[.]/g, '\\.')} is not present locally and could not be pulled: .+`));
    },
    LONG,
  );
});
