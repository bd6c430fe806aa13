// The manager against fakes of the engine and the image builder, for orderings a real engine shows only by chance.
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { validateSpec } from '../config/spec.js';
import type { ImageBuilder, RecordedImage, ServerImage } from '../images/index.js';
import { LABELS } from '../runtime/index.js';
import { createWorkspaceStore, openDatabase } from '../store/index.js';
import { createWorkspaceManager } from './workspace-manager.js';
import type { ManagerDeps } from './workspace-manager.js';

const ID = `sha256:${'c'.repeat(64)}`;

/** An attach stream whose "server" answers `initialize` in Docker's multiplexed stdout frames. */
function fakeServer(name: string): PassThrough {
  const stream = new PassThrough();
  let buffered = '';
  const write = stream.write.bind(stream);
  stream.write = ((chunk: string | Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buffered.slice(0, nl)) as { id?: number; method?: string };
      buffered = buffered.slice(nl + 1);
      if (msg.method !== 'initialize') continue;
      const line = Buffer.from(`${JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name, version: '1' } } })}\n`);
      const header = Buffer.alloc(8);
      header[0] = 1;
      header.writeUInt32BE(line.length, 4);
      setImmediate(() => write(Buffer.concat([header, line])));
    }
    return true;
  }) as typeof stream.write;
  return stream;
}

function setUp(recordedDelayMs: Record<string, number>) {
  const store = createWorkspaceStore(openDatabase(':memory:'));
  const parsed = validateSpec({ name: 'order', servers: [{ name: 'fast', package: 'fast-pkg' }, { name: 'slow', package: 'slow-pkg' }] });
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  const rec = store.create(parsed.spec, 'alice');
  // As a restart finds it: converged, ready, its containers running.
  store.setConverged(rec.uid, rec.generation);
  store.setStatus(rec.uid, 'ready');
  const device = '/dev/loop-fake';
  const runtime: ManagerDeps['runtime'] = {
    attach: (id) => Promise.resolve(fakeServer(id)),
    createContainer: (config) => Promise.resolve(`new-${String(config.name)}`),
    createDeviceVolume: () => Promise.resolve(),
    ensureNetwork: () => Promise.reject(new Error('no network in this test')),
    exitInfo: () => Promise.resolve(undefined),
    inspect: (name) =>
      Promise.resolve({
        Id: `old-${name}`,
        Image: ID,
        Config: { Image: 'mcpx-app:recorded', Labels: { [LABELS.managed]: 'true', [LABELS.workspaceUid]: rec.uid, [LABELS.configHash]: 'from-before' } },
        State: { Running: true },
      } as unknown as Docker.ContainerInspectInfo),
    inspectVolume: (name) => Promise.resolve({ name, mountpoint: '', options: { device, type: 'ext4' }, labels: {} }),
    kill: () => Promise.resolve(),
    listContainers: () => Promise.resolve([]),
    listNetworks: () => Promise.resolve([]),
    listVolumes: () => Promise.resolve([]),
    remove: () => Promise.resolve(),
    removeNetwork: () => Promise.resolve(),
    removeVolume: () => Promise.resolve(),
    start: () => Promise.resolve(),
  };
  const images: Pick<ImageBuilder, 'ensureServerImage' | 'recordedImage'> = {
    ensureServerImage: () => Promise.reject(new Error('a restart of a converged workspace must not resolve a package')),
    recordedImage: async (server, recorded: RecordedImage): Promise<ServerImage> => {
      await new Promise((r) => setTimeout(r, recordedDelayMs[server.name] ?? 0));
      return { image: recorded.image, id: recorded.id, entrypoint: ['/usr/local/bin/node', `/app/${server.name}.js`], cached: true, packageVersion: `${server.name}-pkg@1.0.0` };
    },
  };
  const manager = createWorkspaceManager({
    store,
    secrets: { values: () => new Map() },
    redactLog: (_uid, line) => line,
    runtime,
    images,
    logger: pino({ level: 'silent' }),
    apiEndpoint: () => 'http://127.0.0.1:7470/api/v1',
    isolation: {
      disks: {
        ensure: () => Promise.resolve({ device, image: '/data/volumes/x.img', bytes: 1 << 30 }),
        release: () => Promise.resolve({ detached: 0, deleted: false }),
        releaseImage: () => Promise.resolve({ detached: 0, deleted: false }),
        reconcile: () => Promise.resolve(0),
        copyInto: () => Promise.resolve(),
      },
      firewall: { apply: () => Promise.resolve(), remove: () => Promise.resolve(0), reconcile: () => Promise.resolve(0) },
      egressPort: 3128,
      protectedPorts: () => [],
      startProxy: () => Promise.reject(new Error('no proxy in this test')),
    },
    gatewayId: 'test-gateway',
  });
  return { store, manager, uid: rec.uid };
}

describe('workspace manager: start-up adoption', () => {
  it('reports the workspace ready only once every server runs, though one image look-up is slower', async () => {
    const { store, manager, uid } = setUp({ fast: 0, slow: 50 });
    await manager.reconcile();
    await manager.settled('order');
    const types = store.events(uid).map((e) => `${e.type}${e.server ? `:${e.server}` : ''}`);
    expect(types.filter((t) => t.startsWith('server_initialized'))).toHaveLength(2);
    expect(types.indexOf('ready')).toBeGreaterThan(types.indexOf('server_initialized:slow'));
    expect(types.indexOf('ready')).toBeGreaterThan(types.indexOf('server_initialized:fast'));
    expect(store.getByUid(uid)?.status).toBe('ready');
    await manager.shutdown();
  });
});
