/*
 * A private CA and a serving certificate signed by it, made with the openssl CLI, as the bridge's would be: the
 * leaf names `localhost` and `127.0.0.1`, is for serverAuth and is not a CA itself (rustls and undici refuse a
 * self-signed certificate used as its own CA).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificates {
  /** The CA certificate (PEM) and the file that holds it. */
  ca: string;
  caFile: string;
  /** The serving certificate and key (PEM). */
  cert: string;
  key: string;
  /** Where the files are; `cleanup()` removes it. */
  dir: string;
  cleanup(): void;
}

function openssl(dir: string, args: string[]) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Makes a CA named `name` and a leaf for localhost/127.0.0.1 signed by it, in a new temporary folder. */
export function makeTestCertificates(name = 'apiportal-test-ca'): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'apiportal-certs-'));
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${name}`]);
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', '/CN=localhost']);
  writeFileSync(
    join(dir, 'leaf.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n',
  );
  openssl(dir, ['x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'tls.crt', '-days', '2', '-extfile', 'leaf.ext']);
  return {
    ca: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    caFile: join(dir, 'ca.crt'),
    cert: readFileSync(join(dir, 'tls.crt'), 'utf8'),
    key: readFileSync(join(dir, 'tls.key'), 'utf8'),
    dir,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
