#!/usr/bin/env node
// Copies the bridge's view schema (bridge/api/view.schema.json, generated from the bridge's Rust view types) into
// this package as schema/view.schema.json, which the module validates every bridge response against and which
// `npm pack` ships. Run by `npm run build` (and so by `npm pack` and package.sh) and before the tests.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const source = path.resolve(__dirname, '..', '..', 'bridge', 'api', 'view.schema.json');
const interim = path.resolve(__dirname, 'interim-view.schema.json');
const target = path.resolve(__dirname, '..', 'schema', 'view.schema.json');

let from = source;
if (!fs.existsSync(source)) {
  // TODO(issue 14): remove once the bridge commits bridge/api/view.schema.json.
  if (!fs.existsSync(interim)) {
    console.error(`copy-schema: ${source} does not exist; generate it from the bridge's view types first`);
    process.exit(1);
  }
  console.error(`copy-schema: WARNING: ${source} does not exist yet; using the interim schema ${interim}`);
  from = interim;
}
fs.mkdirSync(path.dirname(target), { recursive: true });
fs.copyFileSync(from, target);
