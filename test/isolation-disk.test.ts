// Disk isolation shown by a malicious server: /workspace is a filesystem of exactly resources.disk (ENOSPC past it,
// the neighbour and the gateway unaffected), /tmp holds its size, nothing outside /workspace is writable, and the
// quota's backing storage (volume, loop device, image file) is released on delete and, for orphans, at start-up.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker } from './helpers/docker.js';
import { MALICIOUS_PACKAGE, startTestGateway, tempDir } from './helpers/gateway.js';
import type { EventView, TestGateway } from './helpers/gateway.js';
import { attempt, attemptUnhardened, loopDevicesFor, TEST_LABELS } from './helpers/isolation.js';

const A = 'it-iso-disk-a';
const B = 'it-iso-disk-b';
const MB = 1024 ** 2;

interface Fill {
  writtenMb: number;
  error: string | null;
}

const dataDir = tempDir('iso-disk');
let gw: TestGateway;
let owner: string;
let image: string;
let uidA: string;
/** Loop devices this suite attached itself: detached in afterAll whatever happens. */
const ownLoops: string[] = [];

beforeAll(async () => {
  gw = await startTestGateway({ dataDir });
  owner = await gw.token('alice');
  for (const name of [A, B]) {
    const r = await gw.api('POST', '/api/v1/workspaces', owner, {
      name,
      servers: [{ name: 'evil', package: MALICIOUS_PACKAGE }],
      resources: { disk: '32m', tmp: '8m' },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }
  for (const name of [A, B]) await gw.waitStatus(name, owner, ['ready']);
  image = (await gw.api<{ servers: { image: string }[] }>('GET', `/api/v1/workspaces/${A}`, owner)).body.servers[0]!.image;
  uidA = gw.gateway.manager.uidOf(A)!;
});

afterAll(async () => {
  for (const name of [A, B]) await gw?.remove(name, owner).catch(() => undefined);
  await gw?.close();
  rmSync(dataDir, { recursive: true, force: true });
  for (const d of ownLoops) {
    try {
      execFileSync('losetup', ['--detach', d]);
    } catch {
      // already detached (the test passed)
    }
  }
});

describe('disk quota', () => {
  it('backs /workspace with its own ext4 image on a loop device, owned by the server user', async () => {
    const file = join(gw.dataDir, 'volumes', `${uidA}.img`);
    expect(statSync(file).size).toBe(32 * MB);
    const loops = loopDevicesFor(file);
    expect(loops).toHaveLength(1);
    const vol = (await docker.listVolumes({ filters: { label: [`mcpx.workspace-uid=${uidA}`] } })).Volumes[0]!;
    expect(vol.Options).toMatchObject({ type: 'ext4', device: loops[0], o: 'nosuid,nodev' });
    expect(vol.Labels).toMatchObject({ 'mcpx.managed': 'true', 'mcpx.workspace': A, 'mcpx.disk-image': file });
    expect(await attempt(gw, A, 'evil', 'write_file', { path: '/workspace/ok.txt' })).toMatchObject({ ok: true });
  });

  it('fails a write past the quota with ENOSPC, while a volume without a quota takes all of it', async () => {
    const filled = await attempt<Fill>(gw, A, 'evil', 'fill_disk', { maxMb: 64, keep: true });
    expect(filled.error).toBe('ENOSPC');
    expect(filled.writtenMb).toBeGreaterThan(20);
    expect(filled.writtenMb).toBeLessThan(32);
    // Unprotected: an ordinary Docker volume has no limit but the host's disk (the attempt stops itself at 64 MiB).
    const vol = await docker.createVolume({ Name: 'mcpx-it-iso-disk-plain', Labels: TEST_LABELS });
    try {
      const plain = await attemptUnhardened<Fill>(image, 'fill_disk', { maxMb: 64 }, { Mounts: [{ Type: 'volume', Source: vol.name, Target: '/workspace' }] });
      expect(plain).toEqual({ writtenMb: 64, error: null });
    } finally {
      await docker.getVolume(vol.name).remove({ force: true });
    }
  });

  it('leaves the neighbour and the gateway unaffected while the quota is full', async () => {
    expect(await attempt<Fill>(gw, A, 'evil', 'fill_disk', { path: '/workspace/more.bin', maxMb: 4 })).toEqual({ writtenMb: 0, error: 'ENOSPC' });
    expect(await attempt<Fill>(gw, B, 'evil', 'fill_disk', { maxMb: 16 })).toEqual({ writtenMb: 16, error: null });
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    expect(await attempt(gw, A, 'evil', 'echo', { message: 'still serving' })).toBe('still serving');
  });

  it('holds the /tmp size, and nothing outside /workspace and /tmp is writable (unhardened: it is)', async () => {
    const tmp = await attempt<Fill>(gw, B, 'evil', 'fill_disk', { path: '/tmp/fill', maxMb: 64 });
    expect(tmp.error).toBe('ENOSPC');
    expect(tmp.writtenMb).toBeLessThanOrEqual(8);
    for (const path of ['/escape', '/app/escape', '/etc/escape', '/usr/local/bin/escape']) {
      expect(await attempt(gw, B, 'evil', 'write_file', { path }), path).toMatchObject({ ok: false, error: 'EROFS' });
    }
    expect(await attemptUnhardened(image, 'write_file', { path: '/etc/escape' })).toMatchObject({ ok: true });
  });

  it('releases the volume, the loop device and the image file on delete', async () => {
    const file = join(gw.dataDir, 'volumes', `${uidA}.img`);
    await gw.remove(A, owner);
    expect((await docker.listVolumes({ filters: { label: [`mcpx.workspace-uid=${uidA}`] } })).Volumes).toHaveLength(0);
    expect(loopDevicesFor(file)).toEqual([]);
    expect(existsSync(file)).toBe(false);
  });

  it('releases an orphaned image and its loop device at start-up reconciliation', async () => {
    const ghost = '00000000-d15c-4bad-8bad-000000000000';
    const file = join(gw.dataDir, 'volumes', `${ghost}.img`);
    execFileSync('truncate', ['-s', '8M', file]);
    const loop = execFileSync('losetup', ['--find', '--show', file], { encoding: 'utf8' }).trim();
    ownLoops.push(loop);
    expect(loopDevicesFor(file)).toEqual([loop]);
    const r = await gw.gateway.manager.reconcile();
    expect(r.releasedDisks).toBeGreaterThanOrEqual(1);
    expect(loopDevicesFor(file)).toEqual([]);
    expect(existsSync(file)).toBe(false);
    await gw.waitStatus(B, owner, ['ready']);
  });

  it("moves the data of an earlier version's plain volume into the quota filesystem at start-up", async () => {
    const uidB = gw.gateway.manager.uidOf(B)!;
    const volume = (await docker.listVolumes({ filters: { label: [`mcpx.workspace-uid=${uidB}`] } })).Volumes[0]!;
    // As an earlier version left it: the gateway gone, the containers stopped, a plain volume holding data.
    await gw.close();
    for (const c of await docker.listContainers({ all: true, filters: { label: [`mcpx.workspace-uid=${uidB}`] } })) {
      await docker.getContainer(c.Id).remove({ force: true });
    }
    await docker.getVolume(volume.Name).remove();
    await docker.createVolume({ Name: volume.Name, Labels: { 'mcpx.managed': 'true', 'mcpx.workspace': B, 'mcpx.workspace-uid': uidB } });
    const plain = (await docker.getVolume(volume.Name).inspect()) as { Mountpoint: string };
    writeFileSync(join(plain.Mountpoint, 'legacy.txt'), 'kept across the upgrade');
    chownSync(join(plain.Mountpoint, 'legacy.txt'), 10001, 10001);

    gw = await startTestGateway({ dataDir });
    owner = await gw.token('alice');
    await gw.waitStatus(B, owner, ['ready']);
    expect(await attempt(gw, B, 'evil', 'read_file', { path: '/workspace/legacy.txt' })).toEqual({ ok: true, value: 'kept across the upgrade' });
    const replaced = (await gw.api<EventView[]>('GET', `/api/v1/workspaces/${B}/events`, owner)).body.find((e) => e.type === 'volume_replaced');
    expect(replaced?.detail).toMatchObject({ previousDevice: null, migrated: true });
    const now = (await docker.getVolume(volume.Name).inspect()) as { Options: Record<string, string> };
    expect(now.Options).toMatchObject({ type: 'ext4', device: expect.stringMatching(/^\/dev\/loop\d+$/) as unknown });
    expect(await attempt<Fill>(gw, B, 'evil', 'fill_disk', { maxMb: 64 })).toMatchObject({ error: 'ENOSPC' });
  });
});
