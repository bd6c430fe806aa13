// docs/benchmarks.md as marked sections: each section sits between `<!-- key:start -->` and `<!-- key:end -->` and
// names the command that wrote it ("Written by `command` on date"), so a run can replace its own sections, keep the
// ones it left out as they were, and list at the top which command produced each.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const DOC_FILE = join(resolve(import.meta.dirname, '..'), 'docs/benchmarks.md');

export interface MarkedSection {
  key: string;
  /** From the start marker to the end marker, both included. */
  text: string;
}

export function readDoc(file = DOC_FILE): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

export function markedSections(doc: string): MarkedSection[] {
  return [...legacySections(doc), ...[...doc.matchAll(/<!-- ([a-z-]+):start -->[\s\S]*?<!-- \1:end -->/g)].map((m) => ({ key: m[1]!, text: m[0] }))];
}

/** Headings of the sections `npm run bench` wrote before the file had markers. */
const LEGACY: [string, string][] = [
  ['## Workspace create to `ready`', 'create-to-ready'],
  ['## Request latency', 'request-latency'],
  ['## Throughput', 'throughput'],
];

/**
 * The unmarked sections of a file written before sections had markers (above the first marker), as marked ones,
 * with the command and date of the file's old head ("Written by `command` on date") put under their heading.
 */
function legacySections(doc: string): MarkedSection[] {
  const first = doc.indexOf('<!-- ');
  const top = first >= 0 ? doc.slice(0, first) : doc;
  if (top.includes(':start -->')) return [];
  const source = /^Written by (`[^`]+`) on (\d{4}-\d{2}-\d{2})/m.exec(top);
  const parts = top.split(/^(?=## )/m).slice(1);
  return parts.flatMap((part) => {
    const key = LEGACY.find(([heading]) => part.startsWith(heading))?.[1];
    if (!key) return [];
    const [heading, ...body] = part.trim().split('\n');
    const written = source ? `\n\nWritten by ${source[1]} on ${source[2]} (before this file had section markers).` : '';
    return [marked(key, `${heading}${written}\n${body.join('\n')}`)];
  });
}

export function marked(key: string, body: string): MarkedSection {
  return { key, text: `<!-- ${key}:start -->\n${body.trim()}\n<!-- ${key}:end -->` };
}

/** Replaces the section `key` of the file where it stands, or appends it; the rest of the file is left as it is. */
export function writeSection(section: MarkedSection, file = DOC_FILE): void {
  const doc = readDoc(file) || '# Benchmarks\n';
  const start = `<!-- ${section.key}:start -->`;
  const end = `<!-- ${section.key}:end -->`;
  const at = doc.indexOf(start);
  const endAt = doc.indexOf(end);
  const next = at >= 0 && endAt > at ? `${doc.slice(0, at)}${section.text}${doc.slice(endAt + end.length)}` : `${doc.trimEnd()}\n\n${section.text}\n`;
  writeFileSync(file, next);
}

/** A section's heading and the commands (with dates) it says wrote it or a row of it. */
export function sectionSources(section: MarkedSection): { title: string; sources: string[] } {
  const title = /^## (.+)$/m.exec(section.text)?.[1] ?? section.key;
  const sources = [...section.text.matchAll(/(?:Written|measured) by `([^`]+)` on (\d{4}-\d{2}-\d{2})/g)].map((m) => `\`${m[1]}\` on ${m[2]}`);
  return { title, sources: [...new Set(sources)] };
}

/**
 * The whole file: `head` (given the sections in their final order), then the sections of `order` (the fresh one
 * if this run wrote it, else the previous text), then every other previous section in its previous order. Text
 * outside markers is not kept.
 */
export function composeDoc(previous: string, fresh: readonly MarkedSection[], order: readonly string[], head: (sections: MarkedSection[]) => string): string {
  const old = markedSections(previous);
  const pick = (key: string) => fresh.find((s) => s.key === key) ?? old.find((s) => s.key === key);
  const sections = [...order.map(pick).filter((s): s is MarkedSection => s !== undefined), ...old.filter((s) => !order.includes(s.key))];
  return `${[head(sections).trimEnd(), ...sections.map((s) => s.text)].join('\n\n')}\n`;
}
