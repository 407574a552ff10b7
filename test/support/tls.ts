import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertFiles {
  cert: string;
  key: string;
}

/** Throw-away certificates made with `openssl` at test time; every value is a file path. */
export interface TestPki {
  dir: string;
  /** The CA the village trusts and that signs the client certificate. */
  ca: string;
  /** Signed by `ca`, for 127.0.0.1 and localhost. */
  server: CertFiles;
  /** Signed by `ca`, for TLS client authentication. */
  client: CertFiles;
  /** A CA the village does not know, and a server certificate it signed (same names as `server`). */
  rogueCa: string;
  rogueServer: CertFiles;
  cleanup(): void;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export async function generateTestPki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 've-pki-'));
  const path = (name: string): string => join(dir, name);
  try {
    await Promise.all([makeCa(dir, 'ca', 'village-edge test CA'), makeCa(dir, 'rogue-ca', 'unrelated test CA')]);
    const serverExt = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n';
    await Promise.all([
      makeLeaf(dir, 'server', 'ca', 'localhost', serverExt),
      makeLeaf(dir, 'client', 'ca', 'village-test', 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n'),
      makeLeaf(dir, 'rogue-server', 'rogue-ca', 'localhost', serverExt),
    ]);
    // Mosquitto reads its certificate and key as user `mosquitto`; these keys protect nothing.
    chmodSync(dir, 0o755);
    for (const name of readdirSync(dir)) chmodSync(path(name), 0o644);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    ca: path('ca.crt'),
    server: { cert: path('server.crt'), key: path('server.key') },
    client: { cert: path('client.crt'), key: path('client.key') },
    rogueCa: path('rogue-ca.crt'),
    rogueServer: { cert: path('rogue-server.crt'), key: path('rogue-server.key') },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function makeCa(dir: string, name: string, commonName: string): Promise<void> {
  await openssl(dir, [
    'req',
    '-x509',
    '-new',
    ...EC_KEY,
    '-days',
    '2',
    '-subj',
    `/CN=${commonName}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
  ]);
}

async function makeLeaf(dir: string, name: string, ca: string, commonName: string, extensions: string): Promise<void> {
  writeFileSync(join(dir, `${name}.ext`), `basicConstraints=CA:FALSE\n${extensions}`);
  await openssl(dir, ['req', '-new', ...EC_KEY, '-subj', `/CN=${commonName}`, '-keyout', `${name}.key`, '-out', `${name}.csr`]);
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-set_serial',
    `0x${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  ]);
}

async function openssl(cwd: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || String(error)}`);
  }
}
