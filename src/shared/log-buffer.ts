// A bounded ring of timestamped lines: a server's stderr, kept by the gateway instead of the engine.
export interface LogLine {
  at: string;
  line: string;
}

export class LogBuffer {
  private lines: LogLine[] = [];
  private start = 0;

  constructor(
    private readonly capacity = 2000,
    private readonly maxLineLength = 8192,
  ) {}

  push(line: string): void {
    const entry = { at: new Date().toISOString(), line: line.length > this.maxLineLength ? line.slice(0, this.maxLineLength) + '…' : line };
    if (this.lines.length < this.capacity) {
      this.lines.push(entry);
    } else {
      this.lines[this.start] = entry;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  /** The newest `tail` lines, oldest first. */
  tail(tail = this.capacity): LogLine[] {
    const ordered = this.lines.length < this.capacity ? this.lines : [...this.lines.slice(this.start), ...this.lines.slice(0, this.start)];
    return ordered.slice(Math.max(0, ordered.length - tail));
  }
}
