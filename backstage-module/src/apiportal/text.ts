/*
 * Text from a bridge is written by tenants (product owners, consumers, the owners of the documents it fetched) and
 * shown to everyone else: on Backstage's pages, in logs, and in the terminal of whoever reads the catalog with a
 * CLI. Every string the module reads from a bridge passes through `cleanStrings` once, where the answer is parsed,
 * so no control character reaches an entity, a custom transformer or a log line.
 */
import { stripVTControlCharacters } from 'node:util';

/**
 * C0 controls but TAB and LF, DEL and the C1 controls (among them the 8-bit CSI and OSC), and Unicode's
 * bidirectional controls (embeddings, overrides, isolates, marks), which make text display in another order than
 * it is stored.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROLS = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
/** Tabs and line breaks, for text that is one line. */
const BREAKS = /[\t\n\u2028\u2029]/g;

/** Fields whose text may span lines. */
const MULTILINE_FIELDS = new Set(['description', 'message']);

/**
 * `text` without terminal escape sequences (CSI, OSC such as a clipboard write or a hyperlink: removed whole, by
 * Node's `stripVTControlCharacters`) and without any other control character or bidirectional control. One-line
 * text (the default) has its tabs and line breaks turned into spaces; `multiline` keeps TAB and LF, and turns CRLF
 * and CR into LF.
 */
export function cleanText(text: string, options: { multiline?: boolean } = {}): string {
  let out = stripVTControlCharacters(text);
  if (options.multiline) out = out.replace(/\r\n?/g, '\n');
  out = out.replace(CONTROLS, '');
  return options.multiline ? out : out.replace(BREAKS, ' ');
}

/**
 * A copy of a decoded JSON answer with every string cleaned by `cleanText`, object keys included. Strings under a
 * `description` or `message` key keep their line breaks.
 */
export function cleanStrings<T>(value: T, multiline = false): T {
  if (typeof value === 'string') return cleanText(value, { multiline }) as T;
  if (Array.isArray(value)) return value.map(v => cleanStrings(v, multiline)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [cleanText(k), cleanStrings(v, MULTILINE_FIELDS.has(k))]),
    ) as T;
  }
  return value;
}
