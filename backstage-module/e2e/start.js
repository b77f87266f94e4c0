#!/usr/bin/env node
/*
 * Starts a real Backstage backend: the app's own packages/backend/src/index.ts (Backstage's template with the
 * apiportal module added as README.md says), in the app that backstage-module/e2e/backend.sh prepared in this
 * folder (see the contract there). Node.js runs index.ts itself (it strips the types), with the app's Node.js.
 *
 *   node start.js CONFIG.yaml [MORE.yaml ...]
 *
 * - The configs are Backstage app-configs (later ones win), on top of a base config that sets an in-memory SQLite
 *   database and one static external-access token, then the app's app-config.yaml, and under one that sets the
 *   port (so CONFIG cannot move it).
 * - The REST API accepts `Authorization: Bearer $APIPORTAL_BACKSTAGE_TOKEN` (default `apiportal-e2e-token`), unless
 *   CONFIG sets backend.auth.externalAccess itself.
 * - It listens on 127.0.0.1, on $APIPORTAL_BACKSTAGE_PORT or else a free port, and prints exactly one line on
 *   stdout, `listening on http://127.0.0.1:PORT`, once Backstage reports itself ready. Everything else (the
 *   backend's logs) goes to stderr.
 * - SIGTERM or SIGINT stops the backend and exits 0. A backend that cannot start exits 1 with the reason on stderr.
 * - With $APIPORTAL_BACKSTAGE_QUERY_LOG set to a file, every SQL statement the backend runs (through knex) is
 *   appended to it as one line, `VERB TABLE ROWS` (rows read by a select, rows changed by a write), e.g.
 *   `update refresh_state 1`: what the benchmark counts the catalog's database work with.
 */
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

/** The app's Node.js, which backend.sh installed beside this file. */
const APP_NODE = path.join(__dirname, 'node', 'bin', 'node');

// Run by another Node.js (`node start.js ...`): run again with the app's, passing signals on and its exit status back.
if (fs.existsSync(APP_NODE) && fs.realpathSync(process.execPath) !== fs.realpathSync(APP_NODE)) {
  const child = spawn(APP_NODE, [__filename, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  return;
}

// stdout is the contract's one line; the backend logs through console and winston, which write to stdout.
const writeStdout = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitReady(url, token, deadline) {
  let last = '';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
      if (response.ok) return;
      last = `${response.status} ${await response.text()}`;
    } catch (e) {
      last = String(e && e.cause ? e.cause : e);
    }
    await new Promise(resolve => setTimeout(resolve, 100));
  }
  throw new Error(`Backstage did not report ready at ${url} within 60 s; last answer: ${last}`);
}

async function main() {
  const configs = process.argv.slice(2);
  if (configs.length === 0) {
    console.error('usage: node start.js CONFIG.yaml [MORE.yaml ...]');
    process.exit(2);
  }
  for (const config of configs) {
    if (!fs.existsSync(config)) {
      console.error(`start.js: no such config file: ${config}`);
      process.exit(2);
    }
  }
  const port = Number(process.env.APIPORTAL_BACKSTAGE_PORT) || (await freePort());
  const token = process.env.APIPORTAL_BACKSTAGE_TOKEN || 'apiportal-e2e-token';

  // JSON is YAML: no YAML library needed to write the two configs of our own.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apiportal-backstage-'));
  const base = path.join(dir, 'base.yaml');
  const listen = path.join(dir, 'listen.yaml');
  fs.writeFileSync(
    base,
    JSON.stringify({
      app: { baseUrl: 'http://127.0.0.1:3000' },
      backend: {
        database: { client: 'better-sqlite3', connection: ':memory:' },
        auth: { externalAccess: [{ type: 'static', options: { token, subject: 'apiportal-e2e' } }] },
      },
    }),
  );
  fs.writeFileSync(
    listen,
    JSON.stringify({ backend: { baseUrl: `http://127.0.0.1:${port}`, listen: { host: '127.0.0.1', port } } }),
  );
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  process.on('exit', cleanup);

  const configPaths = configs.map(c => path.resolve(c));
  const backendDir = path.join(__dirname, 'packages', 'backend');
  // Backstage finds its package (and the config schemas of its dependencies) from the working directory, and reads
  // its --config arguments from process.argv, as `node packages/backend --config ...` gives them in the template.
  process.chdir(backendDir);
  const entry = path.join(backendDir, 'src', 'index.ts');
  process.argv = [process.argv[0], entry];
  for (const config of [base, path.join(__dirname, 'app-config.yaml'), ...configPaths, listen]) {
    process.argv.push('--config', config);
  }
  const queryLog = process.env.APIPORTAL_BACKSTAGE_QUERY_LOG;
  if (queryLog) countQueries(backendDir, queryLog);
  // index.ts calls backend.start(); createBackend() stops the backend and exits on SIGTERM and SIGINT itself.
  await import(pathToFileURL(entry).href);
  await waitReady(`http://127.0.0.1:${port}/.backstage/health/v1/readiness`, token, Date.now() + 60_000);
  writeStdout(`listening on http://127.0.0.1:${port}\n`);
}

/**
 * Appends `VERB TABLE ROWS` to `file` for every statement knex (the app's copy, which every plugin's database
 * client is made by) runs, after it ran.
 */
function countQueries(backendDir, file) {
  const Client = require(require.resolve('knex/lib/client', { paths: [backendDir] }));
  const query = Client.prototype.query;
  Client.prototype.query = async function countedQuery(connection, queryParam) {
    const result = await query.call(this, connection, queryParam);
    const sql = String(result?.sql ?? queryParam?.sql ?? '');
    // A statement that starts with a common table expression is the write it ends with, if any.
    const first = (/^\s*(\w+)/.exec(sql)?.[1] ?? '?').toLowerCase();
    const write = first === 'with' ? /\b(insert\s+into|update|delete\s+from)\s/i.exec(sql) : null;
    const verb = first !== 'with' ? first : write ? write[1].split(/\s/)[0].toLowerCase() : 'select';
    const table = /\b(?:into|from|update)\s+[`"']?([\w.]+)/i.exec(write ? sql.slice(write.index) : sql)?.[1] ?? '?';
    const rows = Array.isArray(result?.response) ? result.response.length : (result?.context?.changes ?? 0);
    fs.appendFileSync(file, `${verb} ${table} ${rows}\n`);
    return result;
  };
}

main().catch(error => {
  console.error('start.js: the Backstage backend did not start:', error);
  process.exit(1);
});
