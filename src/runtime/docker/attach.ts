// The stdio bridge: a container's stdin/stdout/stderr over the Engine's attach API, demultiplexed into
// newline-delimited protocol lines (stdout) and log lines (stderr).
import type { Duplex } from 'node:stream';

export interface LineSink {
  onStdoutLine(line: string): void;
  onStderrLine(line: string): void;
  onClose(): void;
}

/** Lines longer than this are cut off and reported as garbage rather than buffered without bound. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

const HEADER = 8;

/**
 * Splits Docker's multiplexed attach stream (8-byte frame headers: stream id, 3 zero bytes, big-endian length)
 * and re-assembles newline-delimited lines per stream. Written by hand because it sits on the hot path.
 */
export class AttachedStdio {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly partial: [Buffer[], Buffer[]] = [[], []];
  private readonly partialBytes: [number, number] = [0, 0];
  private closed = false;

  constructor(
    private readonly stream: Duplex,
    private readonly sink: LineSink,
  ) {
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    const close = () => this.close();
    stream.on('end', close);
    stream.on('close', close);
    stream.on('error', close);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Writes one protocol message (a line without its newline). Returns false when the stream is gone. */
  writeLine(line: string): boolean {
    if (this.closed) return false;
    this.stream.write(line + '\n');
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stream.destroy();
    this.sink.onClose();
  }

  private onData(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    let buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    let offset = 0;
    while (buf.length - offset >= HEADER) {
      const kind = buf[offset]!;
      const size = buf.readUInt32BE(offset + 4);
      if (buf.length - offset - HEADER < size) break;
      const payload = buf.subarray(offset + HEADER, offset + HEADER + size);
      offset += HEADER + size;
      if (kind === 1) this.feed(0, payload);
      else if (kind === 2) this.feed(1, payload);
    }
    buf = buf.subarray(offset);
    this.pending = buf.length > 0 ? [buf] : [];
    this.pendingBytes = buf.length;
  }

  private feed(which: 0 | 1, payload: Buffer): void {
    let start = 0;
    for (let nl = payload.indexOf(10, start); nl !== -1; nl = payload.indexOf(10, start)) {
      const piece = payload.subarray(start, nl);
      start = nl + 1;
      const parts = this.partial[which];
      let line: string;
      if (parts.length > 0) {
        parts.push(piece);
        line = Buffer.concat(parts).toString('utf8');
        this.partial[which] = [];
        this.partialBytes[which] = 0;
      } else {
        line = piece.toString('utf8');
      }
      this.emit(which, line);
    }
    if (start < payload.length) {
      const rest = payload.subarray(start);
      this.partialBytes[which] += rest.length;
      if (this.partialBytes[which] > MAX_LINE_BYTES) {
        this.partial[which] = [];
        this.partialBytes[which] = 0;
        this.emit(which, '\u0000[line exceeded the size limit and was dropped]');
        return;
      }
      this.partial[which].push(Buffer.from(rest));
    }
  }

  private emit(which: 0 | 1, line: string): void {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (which === 0) this.sink.onStdoutLine(line);
    else this.sink.onStderrLine(line);
  }
}
