// Runs a host tool (npm, ldd) with an argument array, never a shell, under a timeout and an explicit environment,
// keeping bounded output so a chatty or hostile package cannot exhaust the gateway's memory.
import { spawn } from 'node:child_process';

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** The tail of stderr (at most `maxStderrBytes`). */
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  cwd?: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  maxStdoutBytes?: number;
  maxStderrBytes?: number;
  /** Called with each complete stderr line as it arrives. */
  onStderrLine?: (line: string) => void;
}

export function runProcess(file: string, args: readonly string[], opts: RunOptions): Promise<ProcessResult> {
  const maxOut = opts.maxStdoutBytes ?? 16 * 1024 * 1024;
  const maxErr = opts.maxStderrBytes ?? 64 * 1024;
  return new Promise((resolve, reject) => {
    // A process group of its own, so a timeout also stops whatever the tool started.
    const child = spawn(file, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], shell: false, detached: true });
    const out: Buffer[] = [];
    let outBytes = 0;
    let outOverflow = false;
    let err = '';
    let partial = '';
    let timedOut = false;

    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, opts.timeoutMs);

    child.stdout.on('data', (chunk: Buffer) => {
      if (outBytes + chunk.length > maxOut) {
        outOverflow = true;
        killGroup(child.pid);
        return;
      }
      outBytes += chunk.length;
      out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      err = (err + text).slice(-maxErr);
      if (opts.onStderrLine) {
        const lines = (partial + text).split(/\r?\n/);
        partial = lines.pop() ?? '';
        for (const line of lines) if (line.trim() !== '') opts.onStderrLine(line);
      }
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (outOverflow) {
        reject(new Error(`${file} wrote more than ${maxOut} bytes to stdout`));
        return;
      }
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: err, timedOut });
    });
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
