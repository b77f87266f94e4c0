/*
 * The bridge's view contract as a JSON Schema (2020-12), generated from the bridge's Rust view types and committed
 * at bridge/api/view.schema.json. The package carries its own copy, schema/view.schema.json, copied there by
 * `npm run build` (scripts/copy-schema.js), so a module built from a checkout always validates against the
 * bridge of that same checkout. Every response the module uses is validated against it before anything is mapped.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';

/** The package's copy of the schema: `<package>/schema/view.schema.json` (the same from `src/` and `dist/`). */
export const VIEW_SCHEMA_PATH = resolve(__dirname, '..', '..', 'schema', 'view.schema.json');

/** The `$defs` the module validates responses against. */
export type ViewDefinition = 'ProductList' | 'ProductChanges' | 'KeyList' | 'Error';

const DEFINITIONS: ViewDefinition[] = ['ProductList', 'ProductChanges', 'KeyList', 'Error'];
/** At most this many schema violations are named in an error message. */
const MAX_ERRORS = 5;

/** A response that does not match the schema. */
export class ViewSchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ViewSchemaError';
  }
}

/** The bridge's view schema, compiled. */
export class ViewSchema {
  /** The file it was read from. */
  readonly path: string;
  /** The first 12 hex characters of the file's SHA-256, to tell copies apart in logs. */
  readonly digest: string;
  private readonly validators: Record<ViewDefinition, ValidateFunction>;

  /**
   * Reads and compiles the schema at `path` (default: the package's copy). Throws an error that says what to do
   * when the file is missing, is not JSON, or lacks one of the `$defs` the module needs.
   */
  static load(path: string = VIEW_SCHEMA_PATH): ViewSchema {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new Error(
        `cannot read the apiportal bridge's view schema at ${path} (${(e as NodeJS.ErrnoException).code ?? e}); ` +
          'a package built with `npm run build` or backstage-module/package.sh carries it (copied from bridge/api/view.schema.json)',
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new Error(`the apiportal bridge's view schema at ${path} is not JSON: ${(e as Error).message}`);
    }
    return new ViewSchema(json, path, createHash('sha256').update(text).digest('hex').slice(0, 12));
  }

  constructor(schema: unknown, path = '(inline)', digest = '') {
    this.path = path;
    this.digest = digest;
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
      throw new Error(`the apiportal bridge's view schema at ${path} is not a JSON object`);
    }
    const defs = (schema as { $defs?: Record<string, unknown> }).$defs ?? {};
    const missing = DEFINITIONS.filter(d => !(d in defs));
    if (missing.length) {
      throw new Error(
        `the apiportal bridge's view schema at ${path} has no $defs ${missing.join(', ')}; it is not the view schema this module expects`,
      );
    }
    // Formats (date-time, int64, ...) are annotations here: the module checks shapes and types, and schemars
    // writes formats that no validator knows. Unknown keywords are allowed for the same reason.
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    // Compiled as 2020-12 under the key `view`, whatever `$id` or `$schema` the file names, so that the module
    // never fetches a meta-schema or resolves a reference outside this file.
    const root = { ...(schema as Record<string, unknown>) };
    delete root.$id;
    delete root.$schema;
    ajv.addSchema(root, 'view');
    this.validators = Object.fromEntries(
      DEFINITIONS.map(d => [d, ajv.compile({ $ref: `view#/$defs/${d}` })]),
    ) as Record<ViewDefinition, ValidateFunction>;
  }

  /** Throws `ViewSchemaError`, naming up to five violations with their JSON paths, unless `value` matches. */
  check(definition: ViewDefinition, value: unknown): void {
    const validate = this.validators[definition];
    if (validate(value)) return;
    throw new ViewSchemaError(
      `does not match the bridge's view schema ($defs/${definition}): ${describeErrors(validate.errors ?? [])}`,
    );
  }

  /** True when `value` matches. */
  matches(definition: ViewDefinition, value: unknown): boolean {
    return this.validators[definition](value) === true;
  }
}

function describeErrors(errors: ErrorObject[]): string {
  // With allErrors, a failing `anyOf`/`oneOf` also reports every branch; the most specific messages come first.
  const messages: string[] = [];
  for (const e of errors) {
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf') continue;
    const where = e.instancePath || '/';
    const extra =
      e.keyword === 'additionalProperties'
        ? ` (${(e.params as { additionalProperty?: string }).additionalProperty})`
        : e.keyword === 'enum'
          ? ` (${JSON.stringify((e.params as { allowedValues?: unknown }).allowedValues)})`
          : '';
    const message = `${where} ${e.message ?? e.keyword}${extra}`;
    if (!messages.includes(message)) messages.push(message);
  }
  if (messages.length === 0) messages.push(...errors.map(e => `${e.instancePath || '/'} ${e.message ?? e.keyword}`));
  const shown = messages.slice(0, MAX_ERRORS);
  const more = messages.length - shown.length;
  return shown.join('; ') + (more > 0 ? `; and ${more} more` : '');
}

let defaultSchema: ViewSchema | undefined;

/** The package's copy of the schema, loaded once per process. */
export function defaultViewSchema(): ViewSchema {
  defaultSchema ??= ViewSchema.load();
  return defaultSchema;
}
