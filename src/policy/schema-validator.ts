// Validates tool arguments against the tool's own inputSchema with compiled, cached ajv validators (draft-07 and
// 2020-12). A schema that cannot be compiled refuses every call: the policy fails closed.
import { createHash } from 'node:crypto';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';

export type Validation = { ok: true } | { ok: false; reason: string };

export function createSchemaValidator(maxEntries = 5_000) {
  const draft7 = new Ajv({ strict: false, allErrors: false, validateSchema: false, validateFormats: false });
  const modern = new Ajv2020({ strict: false, allErrors: false, validateSchema: false, validateFormats: false });
  const cache = new Map<string, ValidateFunction | Error>();

  const compile = (schema: Record<string, unknown>): ValidateFunction | Error => {
    const text = JSON.stringify(schema);
    const key = createHash('sha256').update(text).digest('hex');
    let v = cache.get(key);
    if (!v) {
      try {
        const { $schema, ...rest } = schema;
        const is2020 = typeof $schema === 'string' && $schema.includes('2020-12');
        v = (is2020 ? modern : draft7).compile(rest);
      } catch (err) {
        v = err instanceof Error ? err : new Error(String(err));
      }
      if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
      cache.set(key, v);
    }
    return v;
  };

  return {
    validate(schema: unknown, args: unknown): Validation {
      if (!schema || typeof schema !== 'object') return { ok: true };
      const v = compile(schema as Record<string, unknown>);
      if (v instanceof Error) return { ok: false, reason: `the tool's inputSchema cannot be used: ${v.message}` };
      if (v(args ?? {})) return { ok: true };
      const e = v.errors?.[0];
      const where = e?.instancePath ? `arguments${e.instancePath.replace(/\//g, '.')}` : 'arguments';
      return { ok: false, reason: `${where} ${e?.message ?? 'do not match the tool\'s inputSchema'}` };
    },
  };
}

export type SchemaValidator = ReturnType<typeof createSchemaValidator>;
