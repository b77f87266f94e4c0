import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestCertificates, type TestCertificates } from '../testing/certs';
import { makeProduct, startFakeBridge, type FakeBridge } from '../testing/fakeBridge';
import { BridgeTls, FileToken, StaticToken } from './credentials';
import { BridgeClient } from './read';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'apiportal-credentials-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('FileToken', () => {
  it('reads the file for every call, so a rotated token is used at once', async () => {
    const path = join(dir, 'token');
    writeFileSync(path, 'first-token\n');
    const token = new FileToken(path);
    expect(await token.token()).toBe('first-token');
    writeFileSync(path, 'second-token');
    expect(await token.token()).toBe('second-token');
  });

  it('follows the kubelet swapping a projected token through a symlink', async () => {
    // The kubelet's layout: token -> ..data/token, ..data -> ..<timestamp>/; a rotation swaps ..data atomically.
    const first = join(dir, '..2026_11_26_10_00_00');
    const second = join(dir, '..2026_11_26_10_48_00');
    mkdirSync(first);
    mkdirSync(second);
    writeFileSync(join(first, 'token'), 'token-one');
    writeFileSync(join(second, 'token'), 'token-two');
    symlinkSync(first, join(dir, '..data'));
    symlinkSync(join('..data', 'token'), join(dir, 'token'));
    const token = new FileToken(join(dir, 'token'));
    expect(await token.token()).toBe('token-one');
    symlinkSync(second, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    expect(await token.token()).toBe('token-two');
  });

  it('errors name the file, never a token', async () => {
    const path = join(dir, 'token');
    const token = new FileToken(path);
    expect(() => token.checkNow()).toThrow(`cannot read tokenFile ${path}: no such file`);
    await expect(token.token()).rejects.toThrow(`cannot read tokenFile ${path}: no such file`);
    writeFileSync(path, '  \n');
    expect(() => token.checkNow()).toThrow(`tokenFile ${path} is empty`);
    await expect(token.token()).rejects.toThrow(`tokenFile ${path} is empty`);
    expect(token.description).toBe(`tokenFile ${path}`);
  });
});

it('StaticToken describes itself by its config key', async () => {
  const token = new StaticToken('s3cret', 'the apiportal provider "default" token setting');
  expect(await token.token()).toBe('s3cret');
  expect(token.description).toBe('the apiportal provider "default" token setting');
});

describe('BridgeTls', () => {
  let certs: TestCertificates;
  let newCerts: TestCertificates;
  let bridge: FakeBridge;
  let renewed: FakeBridge;
  beforeAll(async () => {
    certs = makeTestCertificates('first-ca');
    newCerts = makeTestCertificates('second-ca');
    bridge = await startFakeBridge({ products: [makeProduct({ namespace: 'a', name: 'b' })], tls: certs });
    renewed = await startFakeBridge({ products: [makeProduct({ namespace: 'a', name: 'b' })], tls: newCerts });
  });
  afterAll(async () => {
    await bridge.close();
    await renewed.close();
    certs.cleanup();
    newCerts.cleanup();
  });

  it('without caFile there is no dispatcher of its own (Node trusts its default CAs)', async () => {
    const tls = new BridgeTls();
    expect(await tls.dispatcher()).toBeUndefined();
    expect(() => tls.checkNow()).not.toThrow();
  });

  it('reuses its agent while the file is unchanged and reloads it when the CA file changes', async () => {
    const caFile = join(dir, 'ca.crt');
    writeFileSync(caFile, certs.ca);
    const tls = new BridgeTls(caFile);
    try {
      const read = (b: FakeBridge) =>
        new BridgeClient({ baseUrl: b.url, token: new StaticToken(b.token, 'x'), tls }).readProducts();
      const first = await tls.dispatcher();
      expect(await tls.dispatcher()).toBe(first);
      await expect(read(bridge)).resolves.toMatchObject({ notModified: false });
      await expect(read(renewed)).rejects.toThrow(/UNABLE_TO_VERIFY_LEAF_SIGNATURE/);

      // A Secret update swaps the file: new inode.
      writeFileSync(join(dir, 'ca.new'), newCerts.ca);
      renameSync(join(dir, 'ca.new'), caFile);
      await expect(read(renewed)).resolves.toMatchObject({ notModified: false });
      expect(await tls.dispatcher()).not.toBe(first);
      await expect(read(bridge)).rejects.toThrow(/UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    } finally {
      await tls.close();
    }
  });

  it('a missing or wrong CA file is an error that names it', async () => {
    const caFile = join(dir, 'ca.crt');
    const tls = new BridgeTls(caFile);
    expect(() => tls.checkNow()).toThrow(`cannot read caFile ${caFile}: no such file`);
    await expect(tls.dispatcher()).rejects.toThrow(`cannot read caFile ${caFile}: no such file`);
    writeFileSync(caFile, 'not a certificate');
    expect(() => tls.checkNow()).toThrow(
      `caFile ${caFile} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)`,
    );
    unlinkSync(caFile);
  });
});
