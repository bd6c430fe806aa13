// RuntimeClient over the Docker Engine API (dockerode): containers, volumes, networks, attach, engine facts.
import type Docker from 'dockerode';
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
