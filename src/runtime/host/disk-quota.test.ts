// Finding a workspace's loop device: the device recorded before is trusted only when the kernel still has exactly
// this image behind it; otherwise every device is listed, and a missing one is attached again.
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDiskQuotas, loopBackingFile } from './disk-quota.js';

const UID = '0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b';

let dir: string;
let image: string;
let calls: string[];

/** A host with the given loop devices bound (device -> backing file); `losetup --find` attaches to /dev/loop9. */
function quotas(bound: Record<string, string>) {
  calls = [];
  return createDiskQuotas({
    dir,
    backingFile: (device) => bound[device],
    run: (cmd, args) => {
      calls.push(`${cmd} ${args.join(' ')}`);
      if (args[0] === '--list') return Promise.resolve({ stdout: Object.entries(bound).map(([d, f]) => `${d} ${f.replace(/ /g, '\\x20')}\n`).join(''), stderr: '' });
      if (args[0] === '--find') return Promise.resolve({ stdout: '/dev/loop9\n', stderr: '' });
      return Promise.resolve({ stdout: '', stderr: '' });
    },
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'disk-quota-unit-'));
  image = join(dir, `${UID}.img`);
  // An existing image of the asked size (0 bytes here): nothing is made or grown.
  closeSync(openSync(image, 'w'));
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

const listed = () => calls.filter((c) => c.startsWith('losetup --list')).length;

describe('disk quota: the workspace loop device', () => {
  it('uses the expected device without listing every loop device when the kernel has this image behind it', async () => {
    const disks = quotas({ '/dev/loop3': image, '/dev/loop4': join(dir, 'other.img') });
    const disk = await disks.ensure(UID, 0, '/dev/loop3');
    expect(disk.device).toBe('/dev/loop3');
    expect(listed()).toBe(0);
    expect(calls.some((c) => c.startsWith('losetup --find'))).toBe(false);
  });

  it('lists the devices when the expected one now carries another file (detached and reused behind our back)', async () => {
    const disks = quotas({ '/dev/loop3': join(dir, 'other.img'), '/dev/loop7': image });
    const disk = await disks.ensure(UID, 0, '/dev/loop3');
    expect(disk.device).toBe('/dev/loop7');
    expect(listed()).toBe(1);
  });

  it('attaches the image again when it is on no device (the expected one detached)', async () => {
    const disks = quotas({});
    const disk = await disks.ensure(UID, 0, '/dev/loop3');
    expect(disk.device).toBe('/dev/loop9');
    expect(listed()).toBe(1);
    expect(calls).toContain(`losetup --find --show ${image}`);
  });

  it('does not take a device whose file was deleted for the image now at that path', async () => {
    const disks = quotas({ '/dev/loop3': `${image} (deleted)` });
    await disks.ensure(UID, 0, '/dev/loop3');
    expect(listed()).toBe(1);
  });

  it('lists the devices when nothing is expected (a new workspace, a volume of an earlier version)', async () => {
    const disks = quotas({ '/dev/loop3': image });
    expect((await disks.ensure(UID, 0)).device).toBe('/dev/loop3');
    expect(listed()).toBe(1);
  });
});

describe('loopBackingFile', () => {
  it('reads only loop device names', () => {
    expect(loopBackingFile('/dev/sda')).toBeUndefined();
    expect(loopBackingFile('/dev/loop1/../sda')).toBeUndefined();
    expect(loopBackingFile('loop1')).toBeUndefined();
  });

  it('is undefined for a loop device that is not bound', () => {
    expect(loopBackingFile('/dev/loop999999')).toBeUndefined();
  });
});
