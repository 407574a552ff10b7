import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommandGate } from '../../src/county/command-gate.ts';
import { type CommandKeyEntry, generateCountyKeyPair, loadPrivateKey, signCommand, writeKeyFiles } from '../../src/county/keys.ts';
import { countySchema } from '../../src/config/schema.ts';
import { InvalidInputError } from '../../src/platform/schema-errors.ts';
import { splitToken, toPayload } from '../support/county-signer.ts';
import { memoryReplayGuard } from '../support/memory-replay-guard.ts';

const mode = (path: string) => statSync(path).mode & 0o777;

describe('county key tooling', () => {
  let dir = '';
  let n = 0;
  const freshDir = () => mkdtempSync(join(dir, `keys-${++n}-`));
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 've-keys-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the private key 0600 and the public key 0644 whatever the umask, and returns a valid config entry', async () => {
    for (const umask of [0o022, 0o077, 0o000]) {
      const keyDir = freshDir();
      const previous = process.umask(umask);
      let entry: CommandKeyEntry;
      try {
        entry = await writeKeyFiles(keyDir, 'county-2026');
      } finally {
        process.umask(previous);
      }
      const privatePath = join(keyDir, 'county-2026.private.jwk.json');
      const publicPath = join(keyDir, 'county-2026.public.jwk.json');
      expect([mode(privatePath), mode(publicPath)], `umask ${umask.toString(8)}`).toEqual([0o600, 0o644]);
      const publicJwk = JSON.parse(readFileSync(publicPath, 'utf8')) as Record<string, unknown>;
      const privateJwk = JSON.parse(readFileSync(privatePath, 'utf8')) as Record<string, unknown>;
      expect(publicJwk).toEqual({ kty: 'OKP', crv: 'Ed25519', kid: 'county-2026', alg: 'EdDSA', use: 'sig', x: entry.x });
      expect(privateJwk).toMatchObject({ ...publicJwk, d: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
      // The entry goes straight into the village config and passes its schema.
      expect(countySchema.parse({ url: 'mqtts://county.example:8883', commandKeys: [entry] }).commandKeys).toEqual([entry]);
    }
  });

  it('never overwrites a key, and leaves no half pair behind', async () => {
    const keyDir = freshDir();
    await writeKeyFiles(keyDir, 'k1');
    const before = readFileSync(join(keyDir, 'k1.private.jwk.json'), 'utf8');
    await expect(writeKeyFiles(keyDir, 'k1')).rejects.toThrow(/k1\.private\.jwk\.json already exists; refusing to overwrite a key/);
    expect(readFileSync(join(keyDir, 'k1.private.jwk.json'), 'utf8')).toBe(before);

    writeFileSync(join(keyDir, 'k2.public.jwk.json'), '{}');
    await expect(writeKeyFiles(keyDir, 'k2')).rejects.toThrow(/k2\.public\.jwk\.json already exists/);
    expect(() => statSync(join(keyDir, 'k2.private.jwk.json'))).toThrow(/ENOENT/);
  });

  it('refuses a kid that cannot be a file name', async () => {
    for (const kid of ['../evil', '.hidden', 'a/b', '', 'x'.repeat(65)]) {
      await expect(generateCountyKeyPair(kid)).rejects.toThrow(InvalidInputError);
    }
    await expect(writeKeyFiles(freshDir(), '../evil')).rejects.toThrow(/^kid: "\.\.\/evil": letters, digits/);
  });

  it('round trip: the loaded private key signs, the gate built from the returned entry accepts', async () => {
    const keyDir = freshDir();
    const entry = await writeKeyFiles(keyDir, 'county-rt');
    const { kid, key } = await loadPrivateKey(join(keyDir, 'county-rt.private.jwk.json'));
    expect(kid).toBe('county-rt');
    const iat = Math.floor(Date.now() / 1000);
    const claims = {
      jti: 'announce-0001',
      iat,
      exp: iat + 300,
      aud: 'dongcun',
      cmd: 'broadcast',
      priority: 'announcement',
      status: 'actual',
      zones: ['north'],
      content: { kind: 'tts', text: '明早八点停水。' },
    };
    const token = await signCommand(key, kid, claims);
    expect(splitToken(token).header).toEqual({ alg: 'EdDSA', kid: 'county-rt', typ: 'JWT' });
    const gate = createCommandGate({ villageId: 'dongcun', keys: [entry], maxClockSkewSeconds: 60, maxBytes: 4096, replay: memoryReplayGuard() });
    expect(await gate.verify({ kind: 'broadcast', audienceTopic: 'village', payload: toPayload(token) })).toEqual({
      ok: true,
      command: { kind: 'broadcast', claims: { ...claims, chime: false, repeat: 1 } },
    });
  });

  describe('loadPrivateKey names the file and the problem', () => {
    it('a private key open to group or others', async () => {
      const keyDir = freshDir();
      await writeKeyFiles(keyDir, 'k');
      const path = join(keyDir, 'k.private.jwk.json');
      chmodSync(path, 0o644);
      await expect(loadPrivateKey(path)).rejects.toThrow(`county private key ${path}: is open to group or others (mode 0644); chmod 600 it`);
    });

    it('a public key file given instead', async () => {
      const keyDir = freshDir();
      await writeKeyFiles(keyDir, 'k');
      const path = join(keyDir, 'k.public.jwk.json');
      chmodSync(path, 0o600);
      await expect(loadPrivateKey(path)).rejects.toThrow(`county private key ${path}: is not a private Ed25519 JWK: d: `);
    });

    it('not JSON, and missing', async () => {
      const path = join(freshDir(), 'broken.json');
      writeFileSync(path, '{"kty":', { mode: 0o600 });
      await expect(loadPrivateKey(path)).rejects.toThrow(`county private key ${path}: is not JSON`);
      await expect(loadPrivateKey(`${path}.missing`)).rejects.toThrow(/: cannot read it \(ENOENT/);
    });

    it('a private part that does not belong to its public part', async () => {
      const [one, two] = await Promise.all([generateCountyKeyPair('k'), generateCountyKeyPair('k')]);
      const path = join(freshDir(), 'mixed.json');
      writeFileSync(path, JSON.stringify({ ...one.privateJwk, x: two.publicJwk.x }), { mode: 0o600 });
      await expect(loadPrivateKey(path)).rejects.toThrow(
        `county private key ${path}: cannot be imported (Invalid keyData; is d the private part of x?)`,
      );
    });
  });
});
