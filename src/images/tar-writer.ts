// A tiny streaming tar (USTAR + PAX long names) writer: enough for a root filesystem and a build context,
// with ownership and modes set explicitly rather than copied from the host.
import { createReadStream } from 'node:fs';

const BLOCK = 512;

/** One archive member. Paths are relative ("usr/local/bin/node"), never absolute, never with "..". */
export type TarEntry =
  | { type: 'directory'; path: string; mode: number; uid?: number; gid?: number }
  | { type: 'symlink'; path: string; target: string; uid?: number; gid?: number }
  | {
      type: 'file';
      path: string;
      mode: number;
      uid?: number;
      gid?: number;
      /** A Buffer, or the host path to stream from; a host file must still have `size` bytes when read. */
      source: Buffer | { hostPath: string; size: number };
    };

// A fixed timestamp keeps archives byte-identical across runs, so identical inputs give identical layers.
const FIXED_MTIME = 1_700_000_000;

/** Yields the archive as Buffers; host files are streamed, never read whole into memory. */
export async function* tarStream(entries: Iterable<TarEntry> | AsyncIterable<TarEntry>): AsyncGenerator<Buffer> {
  for await (const entry of entries) {
    checkPath(entry.path);
    const uid = entry.uid ?? 0;
    const gid = entry.gid ?? 0;
    switch (entry.type) {
      case 'directory':
        yield* headers({ path: `${entry.path}/`, mode: entry.mode, uid, gid, size: 0, typeflag: '5' });
        break;
      case 'symlink':
        yield* headers({ path: entry.path, mode: 0o777, uid, gid, size: 0, typeflag: '2', linkname: entry.target });
        break;
      case 'file': {
        const src = entry.source;
        const size = Buffer.isBuffer(src) ? src.length : src.size;
        yield* headers({ path: entry.path, mode: entry.mode, uid, gid, size, typeflag: '0' });
        if (Buffer.isBuffer(src)) {
          yield src;
        } else {
          let read = 0;
          for await (const chunk of createReadStream(src.hostPath)) {
            const buf = chunk as Buffer;
            read += buf.length;
            if (read > size) throw new Error(`${src.hostPath} grew while it was being archived`);
            yield buf;
          }
          if (read !== size) throw new Error(`${src.hostPath} shrank while it was being archived`);
        }
        const pad = (BLOCK - (size % BLOCK)) % BLOCK;
        if (pad > 0) yield Buffer.alloc(pad);
        break;
      }
    }
  }
  yield Buffer.alloc(BLOCK * 2);
}

function checkPath(p: string): void {
  if (p === '' || p.startsWith('/') || p.split('/').some((seg) => seg === '..' || seg === '')) {
    throw new Error(`invalid archive path "${p}"`);
  }
}

interface HeaderFields {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  typeflag: '0' | '2' | '5';
  linkname?: string;
}

/** The USTAR header, preceded by a PAX header when a name does not fit the fixed fields. */
function* headers(h: HeaderFields): Generator<Buffer> {
  const split = splitName(h.path);
  const linkFits = h.linkname === undefined || Buffer.byteLength(h.linkname) <= 100;
  const pax: Record<string, string> = {};
  if (!split) pax.path = h.path;
  if (!linkFits && h.linkname !== undefined) pax.linkpath = h.linkname;
  if (Object.keys(pax).length > 0) {
    const body = Buffer.from(Object.entries(pax).map(([k, v]) => paxRecord(k, v)).join(''));
    yield ustarHeader({ name: 'PaxHeader', prefix: '', mode: 0o644, uid: 0, gid: 0, size: body.length, typeflag: 'x', linkname: '' });
    yield body;
    const pad = (BLOCK - (body.length % BLOCK)) % BLOCK;
    if (pad > 0) yield Buffer.alloc(pad);
  }
  yield ustarHeader({
    name: split ? split.name : h.path.slice(-100).replace(/^\/+/, ''),
    prefix: split ? split.prefix : '',
    mode: h.mode,
    uid: h.uid,
    gid: h.gid,
    size: h.size,
    typeflag: h.typeflag,
    linkname: linkFits ? (h.linkname ?? '') : '',
  });
}

/** PAX records carry their own length, which counts the digits of that length. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  const restLen = Buffer.byteLength(rest);
  let len = restLen + String(restLen).length;
  if (String(len).length + restLen !== len) len = restLen + String(len).length;
  return `${len}${rest}`;
}

function splitName(p: string): { name: string; prefix: string } | undefined {
  if (Buffer.byteLength(p) <= 100) return { name: p, prefix: '' };
  // USTAR allows a 155-byte prefix joined to the name by "/", split at a slash.
  for (let i = p.indexOf('/'); i !== -1; i = p.indexOf('/', i + 1)) {
    const prefix = p.slice(0, i);
    const name = p.slice(i + 1);
    if (Buffer.byteLength(prefix) > 155) return undefined;
    if (name !== '' && Buffer.byteLength(name) <= 100) return { name, prefix };
  }
  return undefined;
}

interface UstarFields {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  typeflag: string;
  linkname: string;
}

function ustarHeader(f: UstarFields): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(f.name, 0, 100, 'utf8');
  octal(b, 100, 8, f.mode & 0o7777);
  octal(b, 108, 8, f.uid);
  octal(b, 116, 8, f.gid);
  octal(b, 124, 12, f.size);
  octal(b, 136, 12, FIXED_MTIME);
  b.fill(0x20, 148, 156); // checksum is computed with its own field read as spaces
  b.write(f.typeflag, 156, 1, 'ascii');
  b.write(f.linkname, 157, 100, 'utf8');
  b.write('ustar\0', 257, 6, 'ascii');
  b.write('00', 263, 2, 'ascii');
  b.write(f.uid === 0 ? 'root' : '', 265, 32, 'ascii');
  b.write(f.gid === 0 ? 'root' : '', 297, 32, 'ascii');
  b.write(f.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return b;
}

function octal(b: Buffer, offset: number, width: number, value: number): void {
  const digits = value.toString(8);
  if (digits.length > width - 1) throw new Error(`value ${value} does not fit a ${width}-byte tar field`);
  b.write(`${digits.padStart(width - 1, '0')}\0`, offset, width, 'ascii');
}
