// RuntimeClient over the Docker Engine API (dockerode): containers, volumes, networks, attach, engine facts.
import type Docker from 'dockerode';
import { Writable } from 'node:stream';
import type { Duplex } from 'node:stream';
import { LABELS } from '../labels.js';

export interface ManagedContainer {
  id: string;
  name: string;
  state: string;
  labels: Record<string, string>;
}

export interface ExitInfo {
  exitCode: number;
  oomKilled: boolean;
  running: boolean;
}

interface IpamConfig {
  Subnet?: string;
  Gateway?: string;
}

/**
 * A network's IPv4 gateway address. The engine does not always record it (the default bridge of a freshly started
 * dockerd lists only its subnet); it is then the subnet's first host address, which is what the engine assigns.
 */
export function ipv4Gateway(configs: readonly IpamConfig[]): string | undefined {
  const listed = configs.find((c) => c.Gateway && !c.Gateway.includes(':'))?.Gateway;
  if (listed) return listed;
  for (const c of configs) {
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(c.Subnet ?? '');
    if (!m) continue;
    const bits = Number(m[5]);
    if (bits > 30) continue;
    const addr = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
    const first = ((addr & (bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0)) + 1) >>> 0;
    return [first >>> 24, (first >>> 16) & 255, (first >>> 8) & 255, first & 255].join('.');
  }
  return undefined;
}

export function createDockerRuntimeClient(docker: Docker) {
  const isNotFound = (err: unknown) => (err as { statusCode?: number }).statusCode === 404;
  const ignoreNotFound = (err: unknown) => {
    if (!isNotFound(err) && (err as { statusCode?: number }).statusCode !== 304) throw err;
  };

  return {
    docker,
    async ping(): Promise<boolean> {
      try {
        await docker.ping();
        return true;
      } catch {
        return false;
      }
    },
    async runtimes(): Promise<string[]> {
      const info = (await docker.info()) as { Runtimes?: Record<string, unknown> };
      return Object.keys(info.Runtimes ?? {});
    },
    async ensureVolume(name: string, labels: Record<string, string>): Promise<void> {
      try {
        await docker.getVolume(name).inspect();
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await docker.createVolume({ Name: name, Labels: labels });
      }
    },
    async inspectVolume(name: string): Promise<{ name: string; mountpoint: string; options: Record<string, string>; labels: Record<string, string> } | undefined> {
      try {
        const v = (await docker.getVolume(name).inspect()) as { Name: string; Mountpoint: string; Options?: Record<string, string> | null; Labels?: Record<string, string> | null };
        return { name: v.Name, mountpoint: v.Mountpoint, options: v.Options ?? {}, labels: v.Labels ?? {} };
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    /** A `local` volume mounting a block device (the workspace's quota filesystem). */
    async createDeviceVolume(name: string, labels: Record<string, string>, device: string, fsType: string, mountOptions: string): Promise<void> {
      await docker.createVolume({ Name: name, Driver: 'local', DriverOpts: { type: fsType, device, o: mountOptions }, Labels: labels });
    },
    /** An internal bridge network with a fixed Linux bridge name (so firewall rules can name it) and no inter-container traffic. */
    async ensureNetwork(name: string, labels: Record<string, string>, bridge: string): Promise<{ id: string; gateway: string; subnet: string }> {
      const read = async () => {
        const n = (await docker.getNetwork(name).inspect()) as { Id: string; Options?: Record<string, string>; IPAM?: { Config?: { Gateway?: string; Subnet?: string }[] } };
        const cfg = n.IPAM?.Config?.[0];
        if (!cfg?.Gateway || !cfg.Subnet) throw new Error(`network ${name} has no IPv4 gateway`);
        if (n.Options?.['com.docker.network.bridge.name'] !== bridge) throw new Error(`network ${name} does not use bridge ${bridge}`);
        return { id: n.Id, gateway: cfg.Gateway, subnet: cfg.Subnet };
      };
      try {
        return await read();
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      await docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        Internal: true,
        CheckDuplicate: true,
        EnableIPv6: false,
        Labels: labels,
        Options: { 'com.docker.network.bridge.name': bridge, 'com.docker.network.bridge.enable_icc': 'false' },
      });
      return read();
    },
    /** A network's IPv4 gateway (the host's address on that bridge), if the network exists. */
    async networkGateway(name: string): Promise<string | undefined> {
      try {
        const n = (await docker.getNetwork(name).inspect()) as { IPAM?: { Config?: IpamConfig[] } };
        return ipv4Gateway(n.IPAM?.Config ?? []);
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async info(): Promise<Record<string, unknown>> {
      return (await docker.info()) as Record<string, unknown>;
    },
    async version(): Promise<{ Version?: string; ApiVersion?: string }> {
      return docker.version();
    },
    /** Runs a command in a running container as its own user; output is collected up to a bound. */
    async exec(id: string, cmd: string[], timeoutMs: number, maxBytes = 1024 * 1024): Promise<{ exitCode: number | null; stdout: string; stderr: string }> {
      const exec = await docker.getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, AttachStdin: false, Tty: false });
      const stream = await exec.start({ hijack: true, stdin: false });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let size = 0;
      const sink = (into: Buffer[]) =>
        new Writable({
          write(chunk: Buffer, _enc, done) {
            size += chunk.length;
            if (size <= maxBytes) into.push(chunk);
            done();
          },
        });
      docker.modem.demuxStream(stream, sink(out), sink(err));
      await new Promise<void>((ok) => {
        const timer = setTimeout(() => {
          stream.destroy();
          ok();
        }, timeoutMs);
        stream.once('end', () => {
          clearTimeout(timer);
          ok();
        });
        stream.once('close', () => {
          clearTimeout(timer);
          ok();
        });
        stream.once('error', () => {
          clearTimeout(timer);
          ok();
        });
      });
      const info = await exec.inspect();
      return { exitCode: info.Running ? null : info.ExitCode, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
    },
    async removeVolume(name: string): Promise<void> {
      await docker.getVolume(name).remove({ force: true }).catch(ignoreNotFound);
    },
    async removeNetwork(id: string): Promise<void> {
      await docker.getNetwork(id).remove().catch(ignoreNotFound);
    },
    async createContainer(config: Docker.ContainerCreateOptions): Promise<string> {
      const c = await docker.createContainer(config);
      return c.id;
    },
    /** Attaches to all three streams. Call before start so that no early output is lost. */
    async attach(id: string): Promise<Duplex> {
      const stream = await docker.getContainer(id).attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
      return stream as unknown as Duplex;
    },
    async start(id: string): Promise<void> {
      await docker.getContainer(id).start().catch(ignoreNotFound);
    },
    async kill(id: string): Promise<void> {
      await docker.getContainer(id).kill().catch((err: unknown) => {
        // 409: not running any more, which is what we wanted.
        if ((err as { statusCode?: number }).statusCode === 409) return;
        ignoreNotFound(err);
      });
    },
    async remove(id: string): Promise<void> {
      await docker.getContainer(id).remove({ force: true, v: false }).catch((err: unknown) => {
        // 409 means removal is already in progress.
        if ((err as { statusCode?: number }).statusCode === 409) return;
        ignoreNotFound(err);
      });
    },
    async exitInfo(id: string): Promise<ExitInfo | undefined> {
      try {
        const s = (await docker.getContainer(id).inspect()).State;
        return { exitCode: s.ExitCode, oomKilled: s.OOMKilled, running: s.Running };
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async inspect(id: string): Promise<Docker.ContainerInspectInfo | undefined> {
      try {
        return await docker.getContainer(id).inspect();
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async listContainers(filterLabels: string[] = [`${LABELS.managed}=true`]): Promise<ManagedContainer[]> {
      const list = await docker.listContainers({ all: true, filters: { label: filterLabels } });
      return list.map((c) => ({
        id: c.Id,
        name: (c.Names[0] ?? '').replace(/^\//, ''),
        state: c.State,
        labels: c.Labels,
      }));
    },
    async listVolumes(filterLabels: string[] = [`${LABELS.managed}=true`]): Promise<{ name: string; labels: Record<string, string> }[]> {
      const r = await docker.listVolumes({ filters: { label: filterLabels } });
      return (r.Volumes ?? []).map((v) => ({ name: v.Name, labels: v.Labels ?? {} }));
    },
    async listNetworks(filterLabels: string[] = [`${LABELS.managed}=true`]): Promise<{ id: string; name: string; labels: Record<string, string> }[]> {
      const r = await docker.listNetworks({ filters: { label: filterLabels } });
      return r.map((n) => ({ id: n.Id, name: n.Name, labels: n.Labels ?? {} }));
    },
  };
}

export type DockerRuntimeClient = ReturnType<typeof createDockerRuntimeClient>;
