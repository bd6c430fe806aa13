// Hard disk quotas for /workspace: one ext4 image file per workspace in the data directory, on a loop device, handed
// to Docker's `local` volume driver. Writes past the size fail with ENOSPC inside the container and nowhere else.
import { mkdirSync, mkdtempSync, openSync, closeSync, ftruncateSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { CommandRunner } from './exec.js';

export const WORKSPACE_OWNER = '10001:10001';
/** Small filesystems get 1 KiB blocks from mkfs; below this the journal and metadata leave too little room. */
export const MIN_DISK_BYTES = 8 * 1024 ** 2;

export interface DiskInfo {
  image: string;
  device: string;
  bytes: number;
}

/**
 * The file behind one loop device as the kernel reports it (sysfs; what `losetup --list` prints as BACK-FILE, with
 * " (deleted)" when the file was removed), undefined when the device is not bound or is not a loop device name.
 */
export function loopBackingFile(device: string): string | undefined {
  const m = /^\/dev\/(loop\d+)$/.exec(device);
  if (!m) return undefined;
  try {
    return readFileSync(`/sys/block/${m[1]!}/loop/backing_file`, 'utf8').replace(/\n$/, '');
  } catch {
    return undefined;
  }
}

export function createDiskQuotas(deps: { dir: string; run: CommandRunner; backingFile?: (device: string) => string | undefined }) {
  const { dir, run } = deps;
  const backingFile = deps.backingFile ?? loopBackingFile;
  const imagePath = (uid: string) => join(dir, `${uid}.img`);

  /** Loop devices and the files behind them (a removed file shows as "path (deleted)"). */
  const attached = async (): Promise<{ device: string; backFile: string }[]> => {
    const r = await run('losetup', ['--list', '--noheadings', '--raw', '--output', 'NAME,BACK-FILE']);
    return r.stdout
      .split('\n')
      .map((l) => /^(\S+)\s+(.*)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      // --raw escapes spaces as \x20
      .map((m) => ({ device: m[1]!, backFile: m[2]!.replace(/\\x20/g, ' ').replace(/ \(deleted\)$/, '') }));
  };

  const loopFor = async (image: string): Promise<string | undefined> => (await attached()).find((a) => a.backFile === image)?.device;

  const detachAll = async (image: string): Promise<number> => {
    let n = 0;
    for (const a of await attached()) {
      if (a.backFile !== image) continue;
      await run('losetup', ['--detach', a.device]).catch(() => undefined);
      n++;
    }
    return n;
  };

  const makeImage = async (image: string, bytes: number) => {
    // Made under a temporary name and renamed once complete: a crash never leaves a half-made image in use.
    const tmp = `${image}.tmp`;
    rmSync(tmp, { force: true });
    const fd = openSync(tmp, 'w', 0o600);
    try {
      ftruncateSync(fd, bytes);
    } finally {
      closeSync(fd);
    }
    await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-L', 'mcpx-workspace', '-E', `root_owner=${WORKSPACE_OWNER}`, tmp]);
    await run('debugfs', ['-w', '-R', 'set_inode_field / mode 040750', tmp]);
    renameSync(tmp, image);
  };

  /**
   * Detaches every loop device on an image file and deletes the file (a volume's labelled image, say). Only images of
   * this directory: a label never makes the gateway delete a file elsewhere.
   */
  const releaseImage = async (image: string): Promise<{ detached: number; deleted: boolean }> => {
    if (dirname(image) !== dir || !/^[0-9a-f-]+\.img$/.test(basename(image))) return { detached: 0, deleted: false };
    const detached = await detachAll(image);
    let deleted = false;
    try {
      statSync(image);
      rmSync(image, { force: true });
      deleted = true;
    } catch {
      // already gone
    }
    rmSync(`${image}.tmp`, { force: true });
    return { detached, deleted };
  };

  return {
    dir,
    imagePath,

    /**
     * The workspace's image, made if missing and grown if smaller than asked, attached to a loop device. `expected`:
     * the device it was attached to before (the volume's), used when the kernel still has exactly this image behind
     * it; else every loop device is listed (their number grows with the workspaces, and so does the listing's cost).
     */
    async ensure(uid: string, bytes: number, expected?: string): Promise<DiskInfo> {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const image = imagePath(uid);
      let size: number;
      try {
        size = statSync(image).size;
      } catch {
        await makeImage(image, bytes);
        size = bytes;
      }
      let device = expected !== undefined && backingFile(expected) === image ? expected : await loopFor(image);
      device ??= (await run('losetup', ['--find', '--show', image])).stdout.trim();
      if (!device.startsWith('/dev/')) throw new Error(`losetup gave no device for ${image}`);
      if (size < bytes) {
        // Growing works online; shrinking an ext4 filesystem does not, so a smaller size applies to new workspaces only.
        const fd = openSync(image, 'r+');
        try {
          ftruncateSync(fd, bytes);
        } finally {
          closeSync(fd);
        }
        await run('losetup', ['--set-capacity', device]);
        await run('resize2fs', [device]);
        size = bytes;
      }
      return { image, device, bytes: size };
    },

    /** Detaches every loop device on the workspace's image and deletes it. */
    release(uid: string): Promise<{ detached: number; deleted: boolean }> {
      return releaseImage(imagePath(uid));
    },

    releaseImage,

    /**
     * Copies a directory (an earlier version's plain volume) into a quota filesystem that no container mounts yet:
     * mounted on the host for the copy only, ownership and modes kept, then the root made 10001, mode 750 again.
     */
    async copyInto(device: string, sourceDir: string): Promise<void> {
      const mnt = mkdtempSync(join(dir, '.copy-'));
      try {
        await run('mount', ['-t', 'ext4', '-o', 'nosuid,nodev', device, mnt]);
        try {
          await run('cp', ['-a', '--', `${sourceDir}/.`, `${mnt}/`]);
          await run('chown', [WORKSPACE_OWNER, mnt]);
          await run('chmod', ['750', mnt]);
        } finally {
          await run('umount', [mnt]);
        }
      } finally {
        rmSync(mnt, { recursive: true, force: true });
      }
    },

    /** Releases images (and loop devices on images) in this directory that belong to no live workspace. */
    async reconcile(live: ReadonlySet<string>): Promise<number> {
      let n = 0;
      let names: string[] = [];
      try {
        names = readdirSync(dir);
      } catch {
        // no directory yet: nothing to release
      }
      for (const name of names) {
        if (name.startsWith('.copy-')) {
          // left by a copy interrupted by a crash: unmount if still mounted, then remove
          await run('umount', [join(dir, name)]).catch(() => undefined);
          rmSync(join(dir, name), { recursive: true, force: true });
          continue;
        }
        const m = /^([0-9a-f-]+)\.img(\.tmp)?$/.exec(name);
        if (!m || live.has(m[1]!)) continue;
        await releaseImage(imagePath(m[1]!));
        n++;
      }
      for (const a of await attached()) {
        const m = a.backFile.startsWith(`${dir}/`) ? /([0-9a-f-]+)\.img$/.exec(a.backFile) : null;
        if (!m || live.has(m[1]!)) continue;
        await run('losetup', ['--detach', a.device]).catch(() => undefined);
        n++;
      }
      return n;
    },

    attached,
  };
}

export type DiskQuotas = ReturnType<typeof createDiskQuotas>;
