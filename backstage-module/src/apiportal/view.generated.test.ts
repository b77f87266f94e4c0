import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const GENERATOR = resolve(__dirname, '..', '..', 'scripts', 'generate-types.js');
const BRIDGE_SCHEMA = resolve(__dirname, '..', '..', '..', 'bridge', 'api', 'view.schema.json');

/** `scripts/generate-types.js --check [--schema SCHEMA]`: its exit status and what it said. */
function check(schema?: string) {
  const args = [GENERATOR, '--check', ...(schema ? ['--schema', schema] : [])];
  const run = spawnSync(process.execPath, args, { encoding: 'utf8' });
  return { status: run.status, stderr: run.stderr };
}

describe("the view's TypeScript types", () => {
  it("are exactly what the bridge's view schema of this checkout gives", () => {
    expect(check()).toStrictEqual({ status: 0, stderr: '' });
  });

  it('fail the check when the schema changes, saying what to run', () => {
    const schema = JSON.parse(readFileSync(BRIDGE_SCHEMA, 'utf8'));
    // A field renamed in the bridge's Rust types.
    const product = schema.$defs.Product;
    product.properties.title = product.properties.displayName;
    delete product.properties.displayName;
    product.required = product.required.map((f: string) => (f === 'displayName' ? 'title' : f));
    const dir = mkdtempSync(join(tmpdir(), 'apiportal-view-schema-'));
    try {
      writeFileSync(join(dir, 'view.schema.json'), JSON.stringify(schema));
      const result = check(join(dir, 'view.schema.json'));
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/src\/apiportal\/view\.generated\.ts is not what .* gives: the bridge's view types changed\. Run `npm run generate-types`/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
