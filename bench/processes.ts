// Child processes of the benchmark (the baseline bridges and the servers they spawn) and the run's clean-up:
// every helper is started in its own process group, tracked by pid, and killed on every way out of the run; and which
// other test or bench runs share the machine.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';

type Cleanup = { sync(): void; async(): Promise<void> };

const cleanups = new Set<Cleanup>();
let interrupted = false;

/** True once SIGINT/SIGTERM arrived: loops stop and the run unwinds through its `finally` blocks. */
export const isInterrupted = (): boolean => interrupted;

/** Polls `check` until it holds: bounded by `timeoutMs`, and ended by an interrupt of the run. */
export async function until(check: () => Promise<boolean>, timeoutMs: number, everyMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    if (interrupted) throw new Error('interrupted');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Registers clean-up work; `sync` is the last resort when the process exits without unwinding. */
export function onCleanup(c: Cleanup): () => void {
  cleanups.add(c);
  return () => cleanups.delete(c);
}

/** Installs the signal and exit handlers once: first signal = unwind, second = kill what is left and exit. */
export function installInterruptHandlers(): void {
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) {
      runSyncCleanups();
      process.exit(130);
    }
    interrupted = true;
    console.error(`bench: ${sig} received, stopping and cleaning up (send it again to force)`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', runSyncCleanups);
}

function runSyncCleanups(): void {
  for (const c of [...cleanups].reverse()) {
    try {
      c.sync();
    } catch {
      // best effort: the process is leaving
    }
  }
  cleanups.clear();
}

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released for the helper to bind). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    sock.setTimeout(1000);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
    sock.once('timeout', () => {
      sock.destroy();
      resolve(false);
    });
  });
}

/** Pids of every live descendant of `root` (from /proc), so that grandchildren in other process groups are found. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) follows the command name, which is in parentheses and may contain spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // the process ended while we looked
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const signal = (pid: number, sig: NodeJS.Signals) => {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
};

export interface Helper {
  name: string;
  port: number;
  child: ChildProcess;
  /** The last few KB of its stderr, for error messages. */
  stderrTail(): string;
  stop(): Promise<void>;
}

/**
 * Starts `node <args>` in its own process group and waits until 127.0.0.1:`port` accepts connections (bounded).
 * stop(): SIGTERM to the group (the helper's own shutdown also stops its server), then SIGKILL to the group and to
 * every descendant seen while it ran, which catches servers a helper spawned in a process group of their own.
 */
export async function startHelper(name: string, args: string[], port: number, readyTimeoutMs = 60_000): Promise<Helper> {
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NODE_ENV: 'production' } });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: could not start`);
  let tail = '';
  child.stderr?.on('data', (c: Buffer) => {
    tail = (tail + c.toString()).slice(-4000);
  });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const seen = new Set<number>();
  const remember = () => {
    if (!exited) for (const d of descendants(pid)) seen.add(d);
  };
  const killAll = () => {
    remember();
    signal(-pid, 'SIGKILL');
    for (const d of seen) signal(d, 'SIGKILL');
  };
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      remember();
      signal(-pid, 'SIGTERM');
      for (let i = 0; i < 60 && !exited; i++) await new Promise((r) => setTimeout(r, 50));
      killAll();
      for (let i = 0; i < 40 && [...seen].some(alive); i++) await new Promise((r) => setTimeout(r, 50));
      unregister();
    })();
    return stopping;
  };
  const unregister = onCleanup({ sync: killAll, async: stop });

  const deadline = Date.now() + readyTimeoutMs;
  try {
    while (!(await canConnect(port))) {
      if (exited) throw new Error(`${name} exited before listening: ${tail.slice(-1500)}`);
      if (Date.now() > deadline || interrupted) throw new Error(`${name} did not listen on 127.0.0.1:${port} within ${readyTimeoutMs} ms: ${tail.slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { name, port, child, stderrTail: () => tail, stop };
}

/** Runs every registered async clean-up, newest first (used at the end of the run and after a failure). */
export async function cleanupAll(): Promise<void> {
  for (const c of [...cleanups].reverse()) {
    try {
      await c.async();
    } catch (err) {
      console.error('bench: clean-up step failed:', err instanceof Error ? err.message : err);
    }
    cleanups.delete(c);
  }
}

/** This process, its ancestors (the shell that started it) and its descendants. */
export function ownProcessTree(): Set<number> {
  const parent = new Map<number, number>();
  const children = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const pp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(e), pp);
      children.set(pp, [...(children.get(pp) ?? []), Number(e)]);
    } catch {
      // gone
    }
  }
  const mine = new Set<number>();
  for (let p: number | undefined = process.pid, n = 0; p && p > 1 && n < 64; p = parent.get(p), n++) mine.add(p);
  const todo = [process.pid];
  while (todo.length > 0) {
    for (const c of children.get(todo.pop()!) ?? []) {
      if (!mine.has(c)) todo.push(c);
      mine.add(c);
    }
  }
  return mine;
}

/** Other test or bench runs: `pgrep -f vitest` and `pgrep -f bench/`, without this run's own processes or editors. */
export function otherRuns(): string[] {
  const mine = ownProcessTree();
  const found: string[] = [];
  for (const pattern of ['vitest', 'bench/']) {
    let out: string;
    try {
      out = execFileSync('pgrep', ['-af', pattern], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).toString();
    } catch {
      continue; // exit code 1: none
    }
    for (const line of out.split('\n').filter(Boolean)) {
      const pid = Number(line.split(' ')[0]);
      const cmd = line.slice(line.indexOf(' ') + 1);
      if (mine.has(pid) || !/\b(node|npm|npx|tsx|vitest)\b/.test(cmd)) continue;
      found.push(`${pid} ${cmd.slice(0, 120)}`);
    }
  }
  return [...new Set(found)];
}
