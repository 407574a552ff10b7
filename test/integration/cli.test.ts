import { describe, expect, it } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const repoRoot = new URL('../../', import.meta.url).pathname;
/**
 * The built bundle, as the package installs it (the global setup builds it): one file to load, where tsx
 * would compile ~150 modules at every one of these ~60 starts (seconds each with both cores busy).
 */
const bundle = join(repoRoot, 'dist/main.js');
/** For a test that runs the CLI many times in a row: with both cores busy each start takes a second or more. */
const MANY_RUNS = { timeout: 120_000 };

function cli(...args: string[]) {
  return cliIn({ cwd: repoRoot }, ...args);
}

function cliIn(options: { cwd: string; env?: NodeJS.ProcessEnv }, ...args: string[]) {
  const result = spawnSync(process.execPath, [bundle, ...args], { ...options, encoding: 'utf8', timeout: 20_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function cliAsync(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [bundle, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 }, (_error, stdout, stderr) =>
      resolve({ code: child.exitCode, stdout, stderr }),
    );
  });
}

/** Every flag each command parses: its --help must name each one. */
const flagsOf: Record<string, string[]> = {
  run: ['--config', '--pretty'],
  'check-config': [],
  'migrate-config': [],
  status: ['--config', '--socket', '--json'],
  user: ['--role', '--config'],
  keygen: ['--kid', '--out'],
  announce: [
    '--key',
    '--village',
    '--all',
    '--emergency',
    '--announcement',
    '--status',
    '--zones',
    '--text',
    '--media',
    '--sha256',
    '--chime',
    '--repeat',
    '--expires',
    '--stop',
    '--no-wait',
    '--timeout',
    '--broker',
    '--prefix',
    '--protocol',
    '--username',
    '--password',
  ],
  'county watch': ['--key', '--ack', '--json', '--broker', '--prefix', '--protocol', '--username', '--password'],
  schedule: ['--key', '--village', '--all', '--file', '--show', '--public-key', '--broker', '--prefix', '--protocol', '--username', '--password'],
  'county time': ['--key', '--every', '--broker', '--prefix', '--protocol', '--username', '--password'],
};

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

  it('check-config catches what run would fail on or run crippled by, each naming its field', MANY_RUNS, () => {
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

    const syntax = check('{\n  "version": 2,\n  "village": { "id": "v1" ,, }\n}');
    expect(syntax.code).toBe(1);
    expect(syntax.stderr).toMatch(/is not valid JSON at line 3, column \d+/);

    const noKeys = check({ ...base, dataDir: join(dir, 'data'), county: { ...county, commandKeys: [] } });
    expect(noKeys.code).toBe(1);
    expect(noKeys.stderr).toMatch(/^county\.commandKeys: empty, so every ack and broadcast from the county would be refused/m);
    expect(check({ ...base, dataDir: join(dir, 'data'), county: { ...county, commandKeys: [], commandsDisabled: true } }).code).toBe(0);

    // keygen's whole public JWK, or a PEM, is taken as well as {kid, x}; the private JWK is refused.
    expect(check({ ...base, dataDir: join(dir, 'data'), county: { ...county, commandKeys: [demoKey] } }).code).toBe(0);
    const pem = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: demoKey['x']! }, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
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
        version: 2,
        village: { id: 'v 1', name: 'x', location: { lat: 25, lon: 102 } },
        county: { url: 'mqtt://127.0.0.1:1883', embeddedBroker: true, protocolVersion: 5 },
        dataDir: './data',
        buses: [
          { id: 'sim', kind: 'simulated' },
          { id: 'rtu', kind: 'modbus-rtu', path: '/dev/ttyUSB0' },
        ],
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
    writeFileSync(
      path,
      JSON.stringify({
        ...JSON.parse(readFileSync(path, 'utf8')),
        village: { id: 'v1', name: 'x', location: { lat: 25, lon: 102 } },
        county: { url: 'mqtt://127.0.0.1:1883' },
      }),
    );
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
      version: 2,
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
    // The other warning: county.commandsDisabled, set on purpose in this config.
    expect(unused.stdout).toContain('2 warning(s)');

    writeFileSync(path, JSON.stringify(config('ve-ac300-line')));
    const used = cli('check-config', path);
    expect(used.code).toBe(1);
    expect(used.stderr).toMatch(/^ve-ac300-line\.json: not valid JSON/m);
  });

  it('names a missing file and prints usage for a wrong command', () => {
    expect(cli('check-config', '/nonexistent/config.json').stderr).toMatch(/cannot read \/nonexistent\/config\.json/);
    const wrong = cli('frobnicate');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/^unknown command "frobnicate"; village-edge --help lists them$/m);
  });

  it('--help at the top level and on every command exits 0 and names every flag, with the levels, statuses and zones spelt out', MANY_RUNS, () => {
    const top = cli('--help');
    expect(top.code).toBe(0);
    for (const command of Object.keys(flagsOf)) expect(top.stdout).toContain(command);
    for (const [command, flags] of Object.entries(flagsOf)) {
      const { code, stdout, stderr } = cli(...command.split(' '), '--help');
      expect(code, command).toBe(0);
      expect(stderr).toBe('');
      for (const flag of [...flags, '--help']) expect(stdout, `${command} --help names ${flag}`).toContain(flag);
    }
    const announce = cli('announce', '-h').stdout;
    expect(announce).toMatch(/1 特别重大, 2 重大, 3 较大, 4 一般/);
    expect(announce).toMatch(/actual \(default\)[\s\S]*exercise[\s\S]*test/);
    expect(announce).toMatch(/--zones Z\s+all \(default\), or zone ids/);
  });

  it('an unknown flag, a flag without its value or a bad value is one line naming the flag, exit 2, never a stack', { timeout: 90_000 }, async () => {
    const cases: Array<[string[], RegExp]> = [
      [['keygen', '--kid'], /^keygen: --kid needs a value/],
      [['keygen', '--kid', '--out', '/tmp'], /^keygen: --kid needs a value/],
      [['keygen', '--bogus'], /^keygen: unknown flag --bogus/],
      [['keygen', '--kid', 'a/b', '--out', '/tmp'], /^keygen: --kid: "a\/b": letters, digits/],
      [['announce', '--key'], /^announce: --key needs a value/],
      [['announce', '--key', 'k', '--village', 'v', '--emergency', '7', '--text', 'x'], /^announce: --emergency "7": a whole number from 1 to 4/],
      [
        ['announce', '--key', 'k', '--village', 'v', '--emergency', '1', '--text', 'x', '--status', 'drill'],
        /^announce: --status "drill": one of actual, exercise, test/,
      ],
      [['announce', '--key', 'k', '--village', 'v', '--emergency', '1', '--text', 'x', '--protocol', '3'], /^announce: --protocol "3": one of 4, 5/],
      [['announce', '--key', 'k', '--village', 'v', '--chime=yes'], /^announce: --chime takes no value/],
      [['county', 'watch', '--nope'], /^county watch: unknown flag --nope/],
      [['county', 'watch', '--ack'], /^county watch: --ack needs --key FILE/],
      [['county'], /^county: give a subcommand/],
      [['schedule', '--key', 'k', '--village', 'v'], /^schedule: --file FILE is required/],
      [['schedule', '--show'], /^schedule: --show needs --village ID/],
      [['county', 'time', '--key', 'k', '--every', '0'], /^county time: --every "0": a whole number from 1 to 60/],
      [['run', '--config'], /^run: --config needs a value/],
      [['run'], /^run: --config FILE is required/],
      [['check-config', 'a', 'b'], /^check-config: give one config FILE/],
      [['frobnicate'], /^unknown command "frobnicate"/],
    ];
    // In parallel: each child is a tsx start of ~1.5 s.
    const results = await Promise.all(cases.map(([args]) => cliAsync(...args)));
    for (const [i, [args, message]] of cases.entries()) {
      const { code, stdout, stderr } = results[i]!;
      expect(code, args.join(' ')).toBe(2);
      expect(stdout).toBe('');
      expect(stderr.trimEnd().split('\n'), args.join(' ')).toHaveLength(1);
      expect(stderr, args.join(' ')).toMatch(message);
    }
  });

  it('keygen writes to a per-user folder, not the current one, unless --out says where; that folder never inside a checkout', () => {
    const cwd = mkdtempSync(join(tmpdir(), 've-cwd-'));
    const xdg = mkdtempSync(join(tmpdir(), 've-xdg-'));
    const made = cliIn({ cwd, env: { ...process.env, XDG_CONFIG_HOME: xdg } }, 'keygen', '--kid', 'county-x');
    expect(made.stderr).toBe('');
    expect(made.code).toBe(0);
    const keys = join(xdg, 'village-edge', 'keys');
    expect(statSync(join(keys, 'county-x.private.jwk.json')).mode & 0o777).toBe(0o600);
    expect(statSync(keys).mode & 0o777).toBe(0o700);
    expect(made.stdout).toContain(join(keys, 'county-x.private.jwk.json'));
    expect(readdirSync(cwd)).toEqual([]);

    // Without XDG_CONFIG_HOME: ~/.config.
    const home = mkdtempSync(join(tmpdir(), 've-home-'));
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
    delete env['XDG_CONFIG_HOME'];
    expect(cliIn({ cwd, env }, 'keygen', '--kid', 'county-y').code).toBe(0);
    expect(readdirSync(join(home, '.config', 'village-edge', 'keys')).sort()).toEqual(['county-y.private.jwk.json', 'county-y.public.jwk.json']);

    // A default that would land in a git checkout is refused before anything is written.
    const inCheckout = cliIn({ cwd, env: { ...process.env, XDG_CONFIG_HOME: join(repoRoot, 'no-such-config') } }, 'keygen', '--kid', 'county-z');
    expect(inCheckout.code).toBe(2);
    expect(inCheckout.stderr).toMatch(/inside the git checkout .*; give --out DIR outside it/);
    expect(existsSync(join(repoRoot, 'no-such-config'))).toBe(false);
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('git ignores key files, except the demo key, which stays tracked', () => {
    const git = (...args: string[]) => spawnSync('git', args, { cwd: repoRoot, encoding: 'utf8' });
    expect(git('check-ignore', '--no-index', 'county-2026.private.jwk.json').status).toBe(0);
    expect(git('check-ignore', '--no-index', 'config/keys/county-2026.public.jwk.json').status).toBe(0);
    expect(git('ls-files', '--error-unmatch', 'config/demo-county.private.jwk.json').status).toBe(0);
  });

  it('refuses to run on a broken config, naming the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 've-cli-'));
    const path = join(dir, 'bad.json');
    writeFileSync(path, JSON.stringify({ version: 2 }));
    const { code, stderr } = cli('run', '--config', path);
    // 78, EX_CONFIG: the unit file documents it.
    expect(code).toBe(78);
    expect(stderr).toContain('village: ');
    expect(stderr).not.toMatch(/\n\s+at /);

    // A value only the running service can judge (a small-order Ed25519 point as a county key) is one line too.
    const config = JSON.parse(readFileSync('config/example.json', 'utf8')) as { county: Record<string, unknown>; dataDir: string };
    writeFileSync(
      path,
      JSON.stringify({
        ...config,
        dataDir: join(dir, 'data'),
        county: {
          ...config.county,
          embeddedBroker: false,
          url: 'mqtt://127.0.0.1:1',
          commandKeys: [{ kid: 'k', x: 'AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
        },
      }),
    );
    const key = cli('run', '--config', path);
    expect(key.code).toBe(78);
    expect(key.stderr.trim().split('\n')).toHaveLength(1);
    expect(key.stderr).toMatch(/county\.commandKeys\[0\]\.x/);
  });

  it('migrate-config rewrites an older config at this version, keeping the old file beside it with its mode', () => {
    const dir = mkdtempSync(join(tmpdir(), 've-cli-'));
    const path = join(dir, 'config.json');
    const demo = JSON.parse(readFileSync('config/example.json', 'utf8')) as { county: Record<string, unknown> };
    const { commandKeys: _keys, ...county } = demo.county;
    const oldText = `${JSON.stringify({ ...demo, version: 1, dataDir: join(dir, 'data'), county: { ...county, embeddedBroker: false } }, null, 4)}\n`;
    writeFileSync(path, oldText, { mode: 0o640 });
    chmodSync(path, 0o640);

    // Read as version 2 already, and check-config says how to rewrite it.
    const before = cli('check-config', path);
    expect(before.code).toBe(0);
    expect(before.stderr).toMatch(/^warning: version: 1 is read as 2; `village-edge migrate-config .*config\.json` rewrites the file/m);
    expect(before.stderr).toMatch(/^warning: county\.commandsDisabled: true, so every county command is refused/m);

    const migrated = cli('migrate-config', path);
    expect(migrated.code).toBe(0);
    expect(migrated.stdout).toContain(`migrated from config version 1 to 2; the old file is ${path}.v1.bak`);
    expect(readFileSync(`${path}.v1.bak`, 'utf8')).toBe(oldText);
    expect(statSync(`${path}.v1.bak`).mode & 0o777).toBe(0o640);
    expect(statSync(path).mode & 0o777).toBe(0o640);
    const now = JSON.parse(readFileSync(path, 'utf8')) as { version: number; county: Record<string, unknown> };
    expect(now.version).toBe(2);
    expect(now.county['commandsDisabled']).toBe(true);
    expect(cli('check-config', path).stderr).not.toMatch(/warning: version:/);

    const again = cli('migrate-config', path);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already at config version 2, left as it is');

    writeFileSync(path, '{"version": 9}');
    const newer = cli('migrate-config', path);
    expect(newer.code).toBe(1);
    expect(newer.stderr).toMatch(/^version: 9 is newer than this build reads \(2\)/m);
    expect(readFileSync(path, 'utf8')).toBe('{"version": 9}');
  });
});
