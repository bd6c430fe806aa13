// Reads the Engine's newline-delimited JSON progress streams (import, build, pull); an error reported inside the
// stream arrives with HTTP 200, so it has to be found in the messages and turned into a rejection.

export interface EngineMessage {
  stream?: string;
  status?: string;
  id?: string;
  progress?: string;
  error?: string;
  errorDetail?: { message?: string; code?: number };
  aux?: { ID?: string };
}

/** Resolves once the stream ends; rejects on the first error message, with the Engine's own text. */
export function consumeEngineStream(stream: NodeJS.ReadableStream, onMessage: (m: EngineMessage) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let failed: string | undefined;
    const handle = (line: string) => {
      const trimmed = line.trim();
      if (trimmed === '') return;
      let msg: EngineMessage;
      try {
        msg = JSON.parse(trimmed) as EngineMessage;
      } catch {
        msg = { stream: trimmed };
      }
      if (msg.errorDetail !== undefined || msg.error !== undefined) {
        failed ??= msg.errorDetail?.message ?? msg.error ?? 'unknown error';
        return;
      }
      onMessage(msg);
    };
    stream.on('data', (chunk: Buffer | string) => {
      buffered += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      const lines = buffered.split(/\r?\n/);
      buffered = lines.pop() ?? '';
      for (const line of lines) handle(line);
    });
    stream.on('end', () => {
      handle(buffered);
      if (failed !== undefined) reject(new Error(failed));
      else resolve();
    });
    stream.on('error', (e: Error) => reject(e));
  });
}

/** The Engine's explanation from a dockerode error (its JSON body), else the error's own message. */
export function engineErrorMessage(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    if ('json' in err && typeof err.json === 'object' && err.json !== null && 'message' in err.json && typeof err.json.message === 'string') {
      return err.json.message;
    }
    if (err instanceof Error) return err.message;
  }
  return String(err);
}

export function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'statusCode' in err && err.statusCode === 404;
}
