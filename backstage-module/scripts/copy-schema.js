#!/usr/bin/env node
// Copies the bridge's view schema (bridge/api/view.schema.json, generated from the bridge's Rust view types) into
// this package as schema/view.schema.json, which the module validates every bridge response against and which
// `npm pack` ships. Run by `npm run build` (and so by `npm pack` and package.sh) and before the tests.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const source = path.resolve(__dirname, '..', '..', 'bridge', 'api', 'view.schema.json');
const target = path.resolve(__dirname, '..', 'schema', 'view.schema.json');

if (!fs.existsSync(source)) {
  console.error(
    `copy-schema: ${source} does not exist; build the package from a checkout of the apiportal repository, ` +
      'where `cargo run -p apiportal-bridge --bin apiportal-view-schema` writes it',
  );
  process.exit(1);
}
fs.mkdirSync(path.dirname(target), { recursive: true });
fs.copyFileSync(source, target);
