/*
 * How the module authenticates to a bridge and trusts its certificate:
 * - the bearer token, from config (`token`) or from a file (`tokenFile`) that is read again for every request, so
 *   a rotated file (a projected, audience-bound ServiceAccount token, which the kubelet replaces on disk) is used
 *   as soon as it changes, without a restart;
 * - the bridge's CA (`caFile`), given to an undici Agent as its only trusted root (`connect: { ca }`), and
 *   reloaded when the file changes. Without `caFile`, https uses Node's default trust store.
 * Tokens never appear in errors or logs; errors name the config key or the file instead.
 */
import { readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { Agent, type Dispatcher } from 'undici';

/** Where a bearer token comes from. */
export interface TokenSource {
  /** The current token. Throws an error naming the source (never the token) when it cannot be read. */
  token(): Promise<string>;
  /** What to name in messages: the config key or the file, e.g. `tokenFile /var/run/secrets/apiportal/token`. */
  readonly description: string;
}

/** A token given in config. */
export class StaticToken implements TokenSource {
  readonly description: string;
  private readonly value: string;
  constructor(value: string, configKey: string) {
    this.value = value;
    this.description = configKey;
  }
  async token(): Promise<string> {
    return this.value;
  }
}

/**
 * A token read from a file for every request. Reading a file of a few hundred bytes costs microseconds and is the
 * only way to never miss a rotation: the kubelet swaps projected tokens through a symlink, which file watchers
 * miss or see late.
 */
export class FileToken implements TokenSource {
  readonly description: string;
  readonly path: string;
  constructor(path: string) {
    this.path = path;
    this.description = `tokenFile ${path}`;
  }

  /** Throws when the file cannot be read now or is empty: for config validation at start-up. */
  checkNow(): void {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (e) {
      throw new Error(`cannot read ${this.description}: ${describeFsError(e)}`);
    }
    if (text.trim() === '') throw new Error(`${this.description} is empty`);
  }

  async token(): Promise<string> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      throw new Error(`cannot read ${this.description}: ${describeFsError(e)}`);
    }
    const token = text.trim();
    if (token === '') throw new Error(`${this.description} is empty`);
    return token;
  }
}

/**
 * The undici dispatcher for a bridge: an Agent trusting only the CA in `caFile`, rebuilt when the file changes
 * (checked at most once per `refresh()`), or undici's default dispatcher when there is no `caFile`.
 */
export class BridgeTls {
  readonly caFile?: string;
  private agent?: Agent;
  private signature?: string;

  constructor(caFile?: string) {
    this.caFile = caFile;
  }

  /** Throws when `caFile` cannot be read now or holds no PEM certificate: for config validation at start-up. */
  checkNow(): void {
    if (!this.caFile) return;
    let pem: string;
    try {
      pem = readFileSync(this.caFile, 'utf8');
      statSync(this.caFile);
    } catch (e) {
      throw new Error(`cannot read caFile ${this.caFile}: ${describeFsError(e)}`);
    }
    checkPem(pem, this.caFile);
  }

  /**
   * The dispatcher to use now: re-reads `caFile` when its inode, size or modification time changed since the last
   * call (a mounted Secret or ConfigMap is swapped through a symlink, which changes the inode).
   */
  async dispatcher(): Promise<Dispatcher | undefined> {
    if (!this.caFile) return undefined;
    let signature: string;
    try {
      const s = await stat(this.caFile);
      signature = `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (e) {
      throw new Error(`cannot read caFile ${this.caFile}: ${describeFsError(e)}`);
    }
    if (this.agent && signature === this.signature) return this.agent;
    let pem: string;
    try {
      pem = await readFile(this.caFile, 'utf8');
    } catch (e) {
      throw new Error(`cannot read caFile ${this.caFile}: ${describeFsError(e)}`);
    }
    checkPem(pem, this.caFile);
    const previous = this.agent;
    this.agent = new Agent({ connect: { ca: pem } });
    this.signature = signature;
    // Requests already running on the previous agent finish; it closes once they have.
    previous?.close().catch(() => undefined);
    return this.agent;
  }

  /** Closes the agent's connections. */
  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    this.signature = undefined;
    await agent?.close();
  }
}

function checkPem(pem: string, path: string): void {
  if (!/-----BEGIN CERTIFICATE-----/.test(pem)) {
    throw new Error(`caFile ${path} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)`);
  }
}

function describeFsError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOENT') return 'no such file';
  if (err?.code === 'EACCES') return 'permission denied';
  if (err?.code === 'EISDIR') return 'it is a directory';
  return err?.code ?? err?.message ?? String(e);
}
