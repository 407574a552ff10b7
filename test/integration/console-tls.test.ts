import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { consoleConfigSchema } from '../../src/config/schema.ts';
import { accountWith, hashPassword, writeAccounts } from '../../src/console/auth/accounts.ts';
import { ConsoleServer } from '../../src/console/http/console-server.ts';
import { RecordingVillage } from '../support/console-announce-rig.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { generateTestPki, type TestPki } from '../support/tls.ts';

// The console over HTTPS with the installer's certificate: its cookies are Secure, HttpOnly and SameSite=Strict,
// and a certificate file it cannot read is a reason start() gives, never a crash.
const assetsDir = new URL('../../src/console/assets/', import.meta.url).pathname;

interface Answer {
  status: number;
  cookies: string[];
  location: string | undefined;
  body: string;
}

function httpsRequest(url: string, ca: Buffer, options: { method?: string; cookie?: string; form?: Record<string, string> } = {}): Promise<Answer> {
  const body = options.form === undefined ? undefined : new URLSearchParams(options.form).toString();
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        ca,
        headers: {
          ...(options.cookie === undefined ? {} : { cookie: options.cookie }),
          ...(body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            cookies: res.headers['set-cookie'] ?? [],
            location: res.headers.location,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const pairOf = (line: string) => line.split(';')[0]!;

describe('the console over HTTPS', () => {
  let pki: TestPki;
  let dir: string;
  let server: ConsoleServer;

  beforeAll(async () => {
    pki = await generateTestPki();
    dir = mkdtempSync(join(tmpdir(), 've-console-tls-'));
    const usersFile = join(dir, 'users.json');
    writeAccounts(usersFile, { format: 1, users: [accountWith('wang', 'official', await hashPassword('wang-secret-1'))] });
    const config = consoleConfigSchema.parse({ enabled: true, host: '127.0.0.1', usersFile, tls: pki.server });
    config.port = 0;
    server = new ConsoleServer({ config, village: new RecordingVillage(), logger: memoryLogger().logger, assetsDir });
    await server.start();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    pki?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs in over TLS; every cookie it sets is Secure, HttpOnly and SameSite=Strict', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = readFileSync(pki.ca);
    const login = await httpsRequest(`${server.url}/login`, ca);
    expect(login.status).toBe(200);
    const token = /name="_csrf" value="([^"]+)"/.exec(login.body)?.[1];
    expect(token).toBeDefined();
    const signedIn = await httpsRequest(`${server.url}/login`, ca, {
      method: 'POST',
      cookie: login.cookies.map(pairOf).join('; '),
      form: { name: 'wang', password: 'wang-secret-1', _csrf: token! },
    });
    expect([signedIn.status, signedIn.location]).toEqual([303, '/status']);
    const session = signedIn.cookies.find((c) => c.startsWith('ve_session='));
    for (const cookie of [...login.cookies, session!]) {
      expect(cookie).toMatch(/; Secure/);
      expect(cookie).toMatch(/; HttpOnly/);
      expect(cookie).toMatch(/; SameSite=Strict/);
    }
    const announce = await httpsRequest(`${server.url}/announce`, ca, { cookie: pairOf(session!) });
    expect(announce.status).toBe(200);
  });

  it('is not served to a client that does not trust its certificate', async () => {
    await expect(httpsRequest(`${server.url}/login`, readFileSync(pki.rogueCa))).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });

  it('gives the reason it cannot start when a certificate file cannot be read', async () => {
    const config = consoleConfigSchema.parse({
      enabled: true,
      usersFile: join(dir, 'users.json'),
      tls: { cert: join(dir, 'missing.pem'), key: pki.server.key },
    });
    config.port = 0;
    const broken = new ConsoleServer({ config, village: new RecordingVillage(), logger: memoryLogger().logger, assetsDir });
    await expect(broken.start()).rejects.toThrow(/missing\.pem/);
  });
});
