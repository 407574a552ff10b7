import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const repoRoot = new URL('../../', import.meta.url).pathname;

function cli(...args: string[]) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/main.ts'), ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 20_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('village-edge command line', () => {
  it('check-config accepts the shipped examples', () => {
    for (const file of ['config/example.json', 'config/village.example.json']) {
      const { code, stdout } = cli('check-config', file);
      expect(code).toBe(0);
      expect(stdout).toMatch(/ok \(village /);
    }
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
    expect(second.stderr).toContain('3 error(s)');
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
      county: { url: 'mqtt://127.0.0.1:1883' },
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
