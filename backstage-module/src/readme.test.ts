/*
 * README.md's claims that code can check: the example entity is exactly what the module makes of the example
 * product, the example configuration is valid and is the one that entity came through, and the dependency table
 * is package.json's.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigReader } from '@backstage/config';
import { parse } from 'yaml';
import { readProviderConfigs } from './providers/ApiportalEntityProviderConfig';
import { README_CONTEXT, README_PRODUCT } from './testing/readmeExample';
import { defaultApiportalEntityTransformer } from './transformers/defaultApiportalEntityTransformer';

const root = resolve(__dirname, '..');
const readme = readFileSync(resolve(root, 'README.md'), 'utf8');

/** The text between `<!-- NAME:start ... -->` and `<!-- NAME:end -->`, without a surrounding code fence. */
function section(name: string, text = readme): string {
  const match = new RegExp(`<!-- ${name}:start[^>]*-->\\n([\\s\\S]*?)<!-- ${name}:end -->`).exec(text);
  if (!match) throw new Error(`README.md has no ${name} section`);
  return match[1].replace(/^```\w*\n/, '').replace(/```\n?$/, '');
}

/** The commands of a shell block, without its comments. */
const commands = (block: string) => block.split('\n').filter(line => line.trim() && !line.startsWith('#'));

it("the repository README's install commands are the module README's, which the end-to-end test carries out", () => {
  const top = readFileSync(resolve(root, '..', 'README.md'), 'utf8');
  expect(commands(section('backstage-install-steps', top))).toStrictEqual(commands(section('install-steps')));
});

it('the example entity is exactly what the module makes of the example product', () => {
  expect(parse(section('entity-example'))).toStrictEqual(defaultApiportalEntityTransformer(README_PRODUCT, README_CONTEXT));
});

it('the example configuration is valid, and the example entity came through its eu bridge', () => {
  const configs = readProviderConfigs(new ConfigReader(parse(section('config-example'))));
  expect(configs.map(c => [c.id, c.cluster, c.baseUrl])).toStrictEqual([
    ['eu', 'eu-west', README_CONTEXT.baseUrl],
    ['us', 'us', 'https://apiportal-bridge.us.example.com'],
  ]);
  // Two bridges: names carry the cluster, as in the example.
  expect(README_CONTEXT.clusterInName).toBe(configs.length > 1);
  const { owner, defaultOwner, system, allowedHosts, lifecycle } = configs[0];
  expect({ owner, defaultOwner, system, allowedHosts, lifecycle }).toStrictEqual({
    owner: README_CONTEXT.owner,
    defaultOwner: README_CONTEXT.defaultOwner,
    system: README_CONTEXT.system,
    allowedHosts: README_CONTEXT.allowedHosts,
    lifecycle: README_CONTEXT.lifecycle,
  });
});

it('the dependency table is package.json\'s dependencies', () => {
  const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const rows = [...section('dependencies').matchAll(/^\| `([^`]+)` \| `([^`]+)` \|$/gm)].map(m => [m[1], m[2].replace(/\\\|/g, '|')]);
  expect(Object.fromEntries(rows)).toStrictEqual(pkg.dependencies);
});
