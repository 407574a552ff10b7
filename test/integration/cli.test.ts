import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const repoRoot = new URL('../../', import.meta.url).pathname;

function cli(...args: string[]) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/main.ts'), ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 20_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('village-edge command line', () => {
  it('check-config accepts the shipped demo, and names what the village template still lacks on this machine', () => {
    const demo = cli('check-config', 'config/example.json');
    expect(demo.code).toBe(0);
    expect(demo.stdout).toMatch(/ok \(village /);
    // The template is to be filled in: no county key yet, TLS files that live on a village Pi.
    const template = cli('check-config', 'config/village.example.json');
    expect(template.code).toBe(1);
    const lines = template.stderr.trim().split('\n');
    expect(lines.filter((l) => !l.startsWith('warning: ') && !l.includes('error(s)')).map((l) => l.split(':')[0])).toEqual([
      'county.commandKeys',
      'county.tls.ca',
      'county.tls.cert',
      'county.tls.key',
    ]);
    expect(template.stderr).toMatch(/^warning: buses\[0\] \(rs485-1\)\.path: \/dev\/ttyUSB0 does not exist \(yet\)/m);
    expect(template.stderr).not.toMatch(/\n\s+at /);
  });

  it('check-config catches what run would fail on or run crippled by, each naming its field', () => {
    const dir = mkdtempSync(join(tmpdir(), 've-cli-'));
    const base = JSON.parse(readFileSync('config/example.json', 'utf8')) as Record<string, unknown> & { county: Record<string, unknown> };
    const write = (name: string, config: unknown) => {
      const path = join(dir, name);
      writeFileSync(path, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
      return path;
    };
    const check = (config: unknown) => cli('check-config', write('config.json', config));
    const demoKey = JSON.parse(readFileSync('config/demo-county.public.jwk.json', 'utf8')) as Record<string, string>;
    const county = { ...base.county, embeddedBroker: false };

    const syntax = check('{\n  "version": 1,\n  "village": { "id": "v1" ,, }\n}');
    expect(syntax.code).toBe(1);
    expect(syntax.stderr).toMatch(/is not valid JSON at line 3, column \d+/);

    const noKeys = check({ ...base, dataDir: join(dir, 'data'), county: { ...county, commandKeys: [] } });
    expect(noKeys.code).toBe(1);
    expect(noKeys.stderr).toMatch(/^county\.commandKeys: empty, so every ack and broadcast from the county would be refused/m);
    expect(check({ ...base, dataDir: join(dir, 'data'), county: { ...county, commandKeys: [], commandsDisabled: true } }).code).toBe(0);

    // keygen's whole public JWK, or a PEM, is taken as well as {kid, x}; the private JWK is refused.
    expect(check({ ...base, dataDir: join(dir, 'data'), county: { ...county, commandKeys: [demoKey] } }).code).toBe(0);
    const pem = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: demoKey['x']! }, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
    expect(check({ ...base, dataDir: join(dir, 'data'), county: { ...county, commandKeys: [{ kid: 'pem-key', pem }] } }).code).toBe(0);
    const privateKey = check({ ...base, dataDir: join(dir, 'data'), county: { ...county, commandKeys: [{ ...demoKey, d: 'AAAA' }] } });
    expect(privateKey.code).toBe(1);
    expect(privateKey.stderr).toMatch(/county\.commandKeys\[0\]: this is the county's PRIVATE key/);

    const badUrl = check({ ...base, dataDir: join(dir, 'data'), county: { ...county, url: 'mqtt://[::1:1883' } });
    expect(badUrl.code).toBe(1);
    expect(badUrl.stderr).toMatch(/^county\.url: "mqtt:\/\/\[::1:1883" does not parse as a URL/m);

    const blocked = write('not-a-folder', 'x');
    const badDataDir = check({ ...base, dataDir: join(blocked, 'data') });
    expect(badDataDir.code).toBe(1);
    expect(badDataDir.stderr).toMatch(/^dataDir: .*is not a folder/m);

    const devices = (base['devices'] as Array<Record<string, unknown>>).map((d, i) => (i === 0 ? { ...d, profile: 've-ac999' } : d));
    const unknownProfile = check({ ...base, dataDir: join(dir, 'data'), devices });
    expect(unknownProfile.code).toBe(1);
    expect(unknownProfile.stderr).toMatch(/no device profile named "ve-ac999" \(known: .*ve-ac100-rtu.*\)/);

    const secret = write('secret.json', { ...base, dataDir: join(dir, 'data'), county: { ...county, username: 'v1', password: 'p' } });
    chmodSync(secret, 0o644);
    const loose = cli('check-config', secret);
    expect(loose.code).toBe(0);
    expect(loose.stderr).toMatch(/^warning: .*secret\.json: readable by other users and holds the county password/m);
    for (const result of [syntax, noKeys, privateKey, badUrl, badDataDir, unknownProfile]) expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('check-config prints every error with its field path and exits 1', () => {
    const dir = mkdtempSync(join(tmpdir(), 've-cli-'));
    const path = join(dir, 'bad.json');
    writeFileSync(
      path,
      JSON.stringify({
        version: 1,
        village: { id: 'v 1', name: 'x', location: { lat: 25, lon: 102 } },
        county: { url: 'mqtt://127.0.0.1:1883', embeddedBroker: true, protocolVersion: 5 },
        dataDir: './data',
        buses: [{ id: 'sim', kind: 'simulated' }, { id: 'rtu', kind: 'modbus-rtu', path: '/dev/ttyUSB0' }],
        devices: [
          { id: 'c1', bus: 'sim', unitId: 1, profile: 'no-such-model', role: 'alarm-column', label: 'a' },
          { id: 'c2', bus: 'rtu', unitId: 2, profile: 've-ac200-line', role: 'alarm-column', label: 'b' },
          { id: 'r1', bus: 'sim', unitId: 3, profile: 've-ac100-rtu', role: 'relay-board', label: 'c' },
        ],
      }),
    );
    const first = cli('check-config', path);
    expect(first.code).toBe(1);
    expect(first.stderr).toContain('village.id: use letters, digits');
    expect(first.stderr).toContain('county.protocolVersion: the embedded broker (aedes) speaks MQTT 3.1.1 only');

    // With the schema errors fixed, the wiring errors are next, each naming the device entry.
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), village: { id: 'v1', name: 'x', location: { lat: 25, lon: 102 } }, county: { url: 'mqtt://127.0.0.1:1883' } }));
    const second = cli('check-config', path);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('devices[0] (c1): no device profile named "no-such-model"');
    expect(second.stderr).toContain('devices[1] (c2): profile "ve-ac200-line" speaks line, bus "rtu" is modbus-rtu');
    expect(second.stderr).toContain('devices[2] (r1): role relay-board needs relays; profile "ve-ac100-rtu" has none');
    expect(second.stderr).toContain('county.commandKeys: empty');
    expect(second.stderr).toContain('4 error(s)');
  });

  it('check-config fails only on a broken profile a device uses; others in profilesDir are warnings', () => {
    const dir = mkdtempSync(join(tmpdir(), 've-cli-'));
    mkdirSync(join(dir, 'profiles'));
    // A half-written model file dropped into the folder, and notes that are no profile at all.
    writeFileSync(join(dir, 'profiles', 've-ac300-line.json'), '{ "schema": 1, "model": "ve-ac3');
    writeFileSync(join(dir, 'profiles', 'README.txt'), 'notes');
    const config = (profile: string) => ({
      version: 1,
      village: { id: 'v1', name: 'x', location: { lat: 25, lon: 102 } },
      county: { url: 'mqtt://127.0.0.1:1883', commandsDisabled: true },
      dataDir: './data',
      profilesDir: './profiles',
      buses: [{ id: 'sim', kind: 'simulated' }],
      devices: [{ id: 'c1', bus: 'sim', unitId: 1, profile, role: 'alarm-column', label: 'a' }],
    });
    const path = join(dir, 'config.json');
    writeFileSync(path, JSON.stringify(config('ve-ac100-rtu')));
    const unused = cli('check-config', path);
    expect(unused.code).toBe(0);
    expect(unused.stderr).toMatch(/^warning: ve-ac300-line\.json: not valid JSON/m);
    expect(unused.stdout).toContain('1 warning(s)');

    writeFileSync(path, JSON.stringify(config('ve-ac300-line')));
    const used = cli('check-config', path);
    expect(used.code).toBe(1);
    expect(used.stderr).toMatch(/^ve-ac300-line\.json: not valid JSON/m);
  });

  it('names a missing file and prints usage for a wrong command', () => {
    expect(cli('check-config', '/nonexistent/config.json').stderr).toMatch(/cannot read \/nonexistent\/config\.json/);
    const wrong = cli('frobnicate');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('usage:');
  });

  it('refuses to run on a broken config, naming the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 've-cli-'));
    const path = join(dir, 'bad.json');
    writeFileSync(path, JSON.stringify({ version: 1 }));
    const { code, stderr } = cli('run', '--config', path);
    expect(code).toBe(1);
    expect(stderr).toContain('village: ');
  });
});
