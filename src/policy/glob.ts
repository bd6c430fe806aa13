// Globs for names and URIs: `*` is any run of characters (including none), `?` one character; nothing else is
// special. Pure.
const cache = new Map<string, RegExp>();

export function globToRegExp(glob: string): RegExp {
  let re = cache.get(glob);
  if (!re) {
    let src = '';
    for (const ch of glob) {
      if (ch === '*') src += '.*';
      else if (ch === '?') src += '.';
      else src += ch.replace(/[.+^${}()|[\]\\/-]/g, '\\$&');
    }
    re = new RegExp(`^${src}$`, 's');
    if (cache.size > 10_000) cache.clear();
    cache.set(glob, re);
  }
  return re;
}

export function matchesAny(globs: readonly string[], name: string): boolean {
  for (const g of globs) if (globToRegExp(g).test(name)) return true;
  return false;
}
