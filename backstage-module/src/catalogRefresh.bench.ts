/*
 * Benchmark (run by bench.sh, not by the tests): what one changed product among many costs a REAL Backstage
 * backend (the app e2e/backend.sh made like Backstage's template, in-memory SQLite), a refresh that applies what
 * changed (a delta mutation) beside one that reads and applies everything (a full mutation, the baseline: what
 * the module did on every change before it asked for changes, and what it still does after a failure or a 410).
 *
 * One backend, one provider, a fake bridge serving APIPORTAL_BENCH_CATALOG_PRODUCTS products (10,000). After the
 * first (full) load has been processed, it alternates, APIPORTAL_BENCH_CATALOG_ROUNDS times (5): one product
 * changed, applied as a delta; one product changed with the bridge made to forget its versions (as a restarted
 * bridge), applied in full. For each refresh it reads:
 * - its duration, from the module's own log line (reading the bridge, transforming, applying the mutation);
 * - the catalog's database statements from the change until the catalog is quiet again (the mutation, and the
 *   catalog processing the entity it changed), counted by e2e/start.js's APIPORTAL_BACKSTAGE_QUERY_LOG: writes
 *   (insert, update, delete) to the catalog's tables, and rows the catalog read from its refresh tables.
 * It prints medians as a Markdown table, full beside delta, and asserts nothing about time.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeKey, makeProduct, startFakeBridge, type FakeBridge } from './testing/fakeBridge';
import { countLogs, startBackstage, type RunningBackstage } from './testing/backstage';

const PRODUCTS = Number(process.env.APIPORTAL_BENCH_CATALOG_PRODUCTS ?? 10_000);
const ROUNDS = Number(process.env.APIPORTAL_BENCH_CATALOG_ROUNDS ?? 5);
/** The catalog is quiet when it wrote nothing for this long. */
const QUIET_MS = 3_000;
/** The scheduler's own bookkeeping, not the catalog's. */
const SCHEDULER_TABLES = /^backstage_backend_tasks/;

interface Statement {
  verb: string;
  table: string;
  rows: number;
}

function statements(file: string): Statement[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map(line => {
      const [verb, table, rows] = line.split(' ');
      return { verb, table, rows: Number(rows) || 0 };
    });
}

const isWrite = (s: Statement) => ['insert', 'update', 'delete'].includes(s.verb);

/**
 * Waits until the catalog has written nothing (the scheduler's bookkeeping aside) for QUIET_MS: its processing
 * loops keep polling, but write only when there is something to do.
 */
async function quiet(file: string, timeoutMs = 30 * 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = -1;
  let since = Date.now();
  for (;;) {
    const catalog = statements(file).filter(s => isWrite(s) && !SCHEDULER_TABLES.test(s.table));
    if (catalog.length !== seen) {
      seen = catalog.length;
      since = Date.now();
    } else if (Date.now() - since >= QUIET_MS) {
      return;
    }
    if (Date.now() > deadline) throw new Error(`the catalog was not quiet within ${timeoutMs} ms`);
    await new Promise(r => setTimeout(r, 250));
  }
}

interface Measured {
  ms: number;
  writes: number;
  refreshWrites: number;
  rowsRead: number;
}

/** Statements logged from `from` on: the catalog's writes, those to the refresh tables, rows read from them. */
function counted(file: string, from: number): Omit<Measured, 'ms'> {
  const catalog = statements(file)
    .slice(from)
    .filter(s => !SCHEDULER_TABLES.test(s.table));
  const writes = catalog.filter(isWrite);
  const refresh = (s: Statement) => s.table.startsWith('refresh_state');
  return {
    writes: writes.length,
    refreshWrites: writes.filter(refresh).length,
    rowsRead: catalog.filter(s => s.verb === 'select' && refresh(s)).reduce((n, s) => n + s.rows, 0),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** Changes product `index`'s display name; resolves to what the refresh that applies it cost. */
async function oneChange(
  bridge: FakeBridge,
  backstage: RunningBackstage,
  file: string,
  index: number,
  kind: 'delta' | 'full',
  round: number,
): Promise<Measured> {
  const pattern =
    kind === 'delta'
      ? /applied changes to API entities from cluster bench \(.*?\): 1 added or changed, 0 removed, \d+ in all, in (\d+) ms/g
      : new RegExp(`applied ${PRODUCTS} API entities from cluster bench \\(.*?\\), in full, in (\\d+) ms`, 'g');
  const before = countLogs(backstage, pattern);
  const from = statements(file).length;
  if (kind === 'full') bridge.forgetVersions();
  bridge.products = bridge.products.map((p, i) => (i === index ? { ...p, displayName: `Product ${i}, round ${round}` } : p));
  const deadline = Date.now() + 10 * 60_000;
  while (countLogs(backstage, pattern) <= before) {
    if (Date.now() > deadline) throw new Error(`no ${kind} refresh logged within 10 minutes:\n${backstage.logs().slice(-4000)}`);
    await new Promise(r => setTimeout(r, 100));
  }
  const ms = Number([...backstage.logs().matchAll(pattern)].at(-1)?.[1]);
  await quiet(file);
  return { ms, ...counted(file, from) };
}

// eslint-disable-next-line jest/expect-expect -- a benchmark: it prints figures and asserts nothing about them
it(`a real Backstage backend, ${PRODUCTS} products, one changed: a delta refresh beside a full one`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'apiportal-bench-'));
  const queryLog = join(dir, 'queries.log');
  const products = Array.from({ length: PRODUCTS }, (_, i) =>
    makeProduct({
      namespace: `team-${String(i % 100).padStart(2, '0')}`,
      name: `product-${String(i).padStart(5, '0')}`,
      displayName: `Product ${i}`,
      description: 'A product for the benchmark: browse, order and track what the team sells.',
      tags: ['bench', 'retail'],
      plans: [
        { tier: 'gold', description: null, limits: { daily: 10000, monthly: 200000 } },
        { tier: 'bronze', description: null, limits: { daily: 100 } },
      ],
      documentation: {
        openAPISpecURL: null,
        swaggerUI: null,
        docsURL: `https://docs.example.com/product-${i}`,
        gitRepository: null,
        techdocsRef: null,
      },
    }),
  );
  const keys = products
    .filter((_, i) => i % 5 === 0)
    .map((p, i) => makeKey(`${p.namespace}/${p.name}`, i % 2 ? 'gold' : 'bronze', `user-${i % 50}`));
  const bridge = await startFakeBridge({ products, keys });
  let backstage: RunningBackstage | undefined;
  try {
    const started = Date.now();
    backstage = await startBackstage(
      {
        catalog: {
          // Entities are processed once when they arrive, not again during the benchmark.
          processingInterval: { hours: 1 },
          providers: {
            apiportal: {
              bench: {
                baseUrl: bridge.url,
                token: bridge.token,
                schedule: { frequency: { seconds: 2 }, timeout: { minutes: 5 } },
              },
            },
          },
        },
      },
      { env: { APIPORTAL_BACKSTAGE_QUERY_LOG: queryLog } },
    );
    const first = new RegExp(`applied ${PRODUCTS} API entities from cluster bench`);
    while (countLogs(backstage, first) === 0) {
      if (Date.now() - started > 10 * 60_000) throw new Error(`no first load:\n${backstage.logs().slice(-4000)}`);
      await new Promise(r => setTimeout(r, 200));
    }
    await quiet(queryLog);
    const loaded = Math.round((Date.now() - started) / 1000);

    const delta: Measured[] = [];
    const full: Measured[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      delta.push(await oneChange(bridge, backstage, queryLog, (round * 7919) % PRODUCTS, 'delta', round));
      full.push(await oneChange(bridge, backstage, queryLog, (round * 7919 + 1) % PRODUCTS, 'full', round));
    }

    const row = (name: string, m: Measured[]) =>
      `| ${name} | ${median(m.map(x => x.ms))} ms | ${median(m.map(x => x.writes))} | ${median(m.map(x => x.refreshWrites))} | ${median(
        m.map(x => x.rowsRead),
      )} |`;
    const ratio = (f: (m: Measured) => number) => {
      const d = median(delta.map(f));
      return d > 0 ? `${(median(full.map(f)) / d).toFixed(1)}x` : 'n/a';
    };
    const out = [
      '',
      `## 5. Backstage catalog: one product changed among ${PRODUCTS.toLocaleString('en-US')}, a delta refresh vs a full one`,
      `A real Backstage backend (the template's app, in-memory SQLite; first load and its processing: ${loaded} s), one provider reading a fake bridge; medians of ${ROUNDS} refreshes each.`,
      'Duration: the provider\'s refresh (read the bridge, transform, apply the mutation). Writes: the catalog\'s insert/update/delete statements from the change until it is quiet (the mutation and the processing of the entity it changed); rows read: what the catalog read from its refresh tables meanwhile.',
      '| refresh | duration | catalog writes | of them to refresh tables | rows read from refresh tables |',
      '|---|---|---|---|---|',
      row('delta (what changed)', delta),
      row('full (baseline: read and apply everything)', full),
      `| full ÷ delta | ${ratio(m => m.ms)} | ${ratio(m => m.writes)} | ${ratio(m => m.refreshWrites)} | ${ratio(m => m.rowsRead)} |`,
      '',
    ].join('\n');
    process.stdout.write(`${out}\n`);
  } finally {
    await backstage?.stop();
    await bridge.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, 60 * 60_000);
