#!/usr/bin/env node
// README.md's install steps, as e2e/backend.sh carries them out in a Backstage app made like the template's:
//
//   node e2e/readme.js steps                  # prints the shell block between the install-steps markers
//   node e2e/readme.js code INDEX.ts          # adds the backend.add line(s) of install-code before backend.start()
//   node e2e/readme.js config IN.yaml OUT.yaml   # IN with install-config merged in, key by key, as a person would
//
// A block that is missing, or a code line that does not fit the template's index.ts, is an error: the README and
// the test must change together.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const YAML = require('yaml');

const README = path.resolve(__dirname, '..', 'README.md');

/** The fenced block between `<!-- NAME:start ... -->` and `<!-- NAME:end -->`, without its fence. */
function block(name) {
  const readme = fs.readFileSync(README, 'utf8');
  const match = new RegExp(`<!-- ${name}:start[^>]*-->\\n\`\`\`\\w*\\n([\\s\\S]*?)\`\`\`\\n<!-- ${name}:end -->`).exec(readme);
  if (!match) throw new Error(`${README} has no fenced block between <!-- ${name}:start --> and <!-- ${name}:end -->`);
  return match[1];
}

/** `base` with every leaf of `addition` set at its path: maps merge, anything else replaces. */
function merge(document, addition, at = []) {
  for (const [key, value] of Object.entries(addition)) {
    if (value && typeof value === 'object' && !Array.isArray(value) && YAML.isMap(document.getIn([...at, key]))) {
      merge(document, value, [...at, key]);
    } else {
      document.setIn([...at, key], value);
    }
  }
}

const [command, ...args] = process.argv.slice(2);
if (command === 'steps') {
  process.stdout.write(block('install-steps'));
} else if (command === 'code') {
  const [file] = args;
  const lines = block('install-code')
    .split('\n')
    .filter(line => line.startsWith('backend.add('));
  if (lines.length === 0) throw new Error('the install-code block has no backend.add(...) line');
  const source = fs.readFileSync(file, 'utf8');
  const start = 'backend.start();';
  if (!source.includes(start)) throw new Error(`${file} has no ${start} line to add the module before`);
  const missing = lines.filter(line => !source.includes(line));
  fs.writeFileSync(file, source.replace(start, [...missing, start].join('\n')));
} else if (command === 'config') {
  const [input, output] = args;
  const document = YAML.parseDocument(fs.readFileSync(input, 'utf8'));
  merge(document, YAML.parse(block('install-config')));
  fs.writeFileSync(output, document.toString());
} else {
  console.error('usage: readme.js steps | code INDEX.ts | config IN.yaml OUT.yaml');
  process.exit(2);
}
