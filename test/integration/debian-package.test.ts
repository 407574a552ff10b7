import { execFile, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The .deb really built by the packager, installed with dpkg on this machine (no systemd needed: the
 * maintainer scripts start the unit only where systemd runs), upgraded, rolled back and removed. Needs root.
 */
const repoRoot = new URL('../../', import.meta.url).pathname;
const packageVersion = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const first = `${packageVersion}+test1`;
const second = `${packageVersion}+test2`;
const config = '/etc/village-edge/config.json';
const saved = '/var/backups/village-edge';

function sh(command: string, args: string[], options: { env?: NodeJS.ProcessEnv } = {}) {
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', ...options.env },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, out: `${result.stdout}${result.stderr}` };
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: ${Version} is dpkg-query's format syntax, not JavaScript's.
const installedVersion = () => sh('dpkg-query', ['--showformat=${Version}', '--show', 'village-edge']).stdout;
/** As the unit runs it: as the service's user, so "readable" means readable by the service. */
const checkConfigAsService = () => sh('runuser', ['-u', 'village-edge', '--', 'village-edge', 'check-config', config]);

/** A village's config as an installer writes it for an earlier release: version 1, no county keys yet. */
function villageConfigV1(): string {
  const village = {
    version: 1,
    village: { id: 'package-test', name: '包测试村', location: { lat: 25.1, lon: 102.8 } },
    county: { url: 'mqtt://127.0.0.1:1883', topicPrefix: 'village-edge' },
    dataDir: '/var/lib/village-edge',
    buses: [{ id: 'sim', kind: 'simulated' }],
    devices: [{ id: 'column-1', bus: 'sim', unitId: 1, profile: 've-ac100-rtu', role: 'alarm-column', label: '村委会门口' }],
  };
  return `${JSON.stringify(village, null, 4)}\n`;
}

/** dpkg fsyncs every file it unpacks (~4,100) and the preinst repacks the installed version: slow on a busy machine. */
const dpkgTimeout = 180_000;

const root = process.getuid?.() === 0;
/** Skipped for a developer who is not root; under CI (which runs as root) a missing root fails instead. */
const unlessUnprivileged = describe.skipIf(!root && process.env['CI'] === undefined);

unlessUnprivileged('the Debian package', () => {
  let out: string;
  const debs: Record<string, string> = {};

  beforeAll(async () => {
    if (!root) return;
    if (sh('dpkg-query', ['--show', 'village-edge']).code === 0 && !installedVersion().includes('+test'))
      throw new Error('village-edge is installed on this machine for real: this test would replace it; remove it first');
    sh('dpkg', ['--purge', 'village-edge']);
    out = mkdtempSync(join(tmpdir(), 've-deb-'));
    // Both versions at once: each is a copy of node_modules pruned and compressed (~20 s).
    const build = promisify(execFile);
    await Promise.all(
      [first, second].map(async (version) => {
        const { stdout } = await build(
          process.execPath,
          ['--import', 'tsx', join(repoRoot, 'src/packaging/build-deb.ts'), '--version', version, '--out', out],
          {
            cwd: repoRoot,
            timeout: 240_000,
          },
        );
        console.log(`  ${stdout.trim()}`);
        debs[version] = stdout.split(':')[0]!;
      }),
    );
  }, 2 * dpkgTimeout);

  afterAll(() => {
    if (!root) return;
    sh('dpkg', ['--purge', 'village-edge']);
    if (out !== undefined) rmSync(out, { recursive: true, force: true });
  }, dpkgTimeout);

  it(
    'needs root to install',
    () => {
      expect(root, 'dpkg -i needs root: run the suite as root (CI does)').toBe(true);
    },
    dpkgTimeout,
  );

  it(
    'holds the bundle, the production modules only, the unit, a conffile and the commands',
    () => {
      if (!root) return;
      const deb = debs[first]!;
      expect(deb).toMatch(new RegExp(`village-edge_${first.replace(/[+.]/g, '\\$&')}_\\w+\\.deb$`));
      const info = sh('dpkg-deb', ['--info', deb]).stdout;
      expect(info).toMatch(/^ Depends: nodejs \(>= \d+\), nodejs \(<< \d+\), espeak-ng, alsa-utils, mpg123/m);
      expect(sh('dpkg-deb', ['--field', deb, 'Architecture']).stdout.trim()).toBe(sh('dpkg', ['--print-architecture']).stdout.trim());
      expect(sh('dpkg-deb', ['--ctrl-tarfile', deb]).code).toBe(0);
      const contents = sh('dpkg-deb', ['--contents', deb]).stdout;
      for (const path of [
        './opt/village-edge/dist/main.js',
        './opt/village-edge/devices/ve-ac100-rtu.json',
        './etc/village-edge/config.json',
        './lib/systemd/system/village-edge.service',
        './usr/bin/village-edge',
        './usr/sbin/village-edge-rollback',
        './opt/village-edge/node_modules/better-sqlite3/build/Release/better_sqlite3.node',
      ])
        expect(contents).toContain(path);
      for (const devOnly of [
        'node_modules/typescript/',
        'node_modules/vitest/',
        'node_modules/esbuild/',
        'node_modules/tsx/',
        'better-sqlite3/deps/',
        'better-sqlite3/src/',
      ])
        expect(contents).not.toContain(devOnly);
      const control = mkdtempSync(join(tmpdir(), 've-deb-control-'));
      sh('dpkg-deb', ['--control', deb, control]);
      expect(readFileSync(join(control, 'conffiles'), 'utf8')).toBe('/etc/village-edge/config.json\n');
      rmSync(control, { recursive: true });
      const size = statSync(deb).size;
      const installed = Number(sh('dpkg-deb', ['--field', deb, 'Installed-Size']).stdout.trim());
      console.log(`  package ${(size / 1048576).toFixed(1)} MiB, installed ${(installed / 1024).toFixed(1)} MiB`);
    },
    dpkgTimeout,
  );

  it(
    'installs with dpkg -i: the user with dialout and audio, the data folder, the config readable by the service only, the unit enabled',
    () => {
      if (!root) return;
      const install = sh('dpkg', ['--install', debs[first]!]);
      expect(install.code, install.out).toBe(0);
      // The shipped config is the template to fill in: the unit is enabled but not started on its account.
      expect(install.stderr).toMatch(/village-edge is installed, and not started: \/etc\/village-edge\/config\.json does not pass its check yet/);
      expect(installedVersion()).toBe(first);
      expect(sh('village-edge', ['--version']).stdout.trim()).toBe(first);

      const groups = sh('id', ['-nG', 'village-edge']).stdout.trim().split(' ');
      expect(groups).toEqual(expect.arrayContaining(['village-edge', 'dialout', 'audio']));
      const data = statSync('/var/lib/village-edge');
      expect(data.mode & 0o777).toBe(0o700);
      expect(sh('stat', ['-c', '%U:%G %a', '/var/lib/village-edge', '/etc/village-edge', config]).stdout.trim().split('\n')).toEqual([
        'village-edge:village-edge 700',
        'root:village-edge 750',
        'root:village-edge 640',
      ]);
      // biome-ignore lint/suspicious/noTemplateCurlyInString: ${Conffiles} is dpkg-query's format syntax, not JavaScript's.
      expect(sh('dpkg-query', ['--showformat=${Conffiles}', '--show', 'village-edge']).stdout).toMatch(
        /\/etc\/village-edge\/config\.json [0-9a-f]{32}/,
      );
      expect(existsSync('/etc/systemd/system/multi-user.target.wants/village-edge.service')).toBe(true);

      // The installed check-config, on the shipped template: each field still to fill in, named.
      const template = checkConfigAsService();
      expect(template.code).toBe(1);
      expect(template.stderr).toMatch(/^county\.commandKeys: empty/m);
      expect(template.stderr).toMatch(/^county\.tls\.ca: \/etc\/village-edge\/county-ca\.pem does not exist/m);
      expect(template.stderr).not.toMatch(/\n\s+at /);
    },
    dpkgTimeout,
  );

  it(
    'upgrades to a newer build: the changed config kept and migrated with a backup, the data kept, the old version saved',
    () => {
      if (!root) return;
      const written = villageConfigV1();
      writeFileSync(config, written);
      const check = checkConfigAsService();
      expect(check.code, check.out).toBe(0);
      expect(check.stderr).toMatch(/^warning: version: 1 is read as 2/m);
      writeFileSync('/var/lib/village-edge/outbox.sqlite', "the village's unsent alarms");

      const upgrade = sh('dpkg', ['--install', debs[second]!]);
      expect(upgrade.code, upgrade.out).toBe(0);
      expect(installedVersion()).toBe(second);
      expect(sh('village-edge', ['--version']).stdout.trim()).toBe(second);
      expect(upgrade.out).toContain(`${config}: migrated from config version 1 to 2; the old file is ${config}.v1.bak`);
      expect(readFileSync(`${config}.v1.bak`, 'utf8')).toBe(written);
      const migrated = JSON.parse(readFileSync(config, 'utf8')) as {
        version: number;
        village: { id: string };
        county: { commandsDisabled: boolean };
      };
      expect(migrated).toMatchObject({ version: 2, village: { id: 'package-test' }, county: { commandsDisabled: true } });
      expect(
        sh('stat', ['-c', '%U:%G %a', config, `${config}.v1.bak`])
          .stdout.trim()
          .split('\n'),
      ).toEqual(['root:village-edge 640', 'root:village-edge 640']);
      expect(checkConfigAsService().stderr).not.toMatch(/warning: version:/);
      expect(readFileSync('/var/lib/village-edge/outbox.sqlite', 'utf8')).toBe("the village's unsent alarms");

      expect(readdirSync(saved).sort()).toEqual(['config.json', `village-edge_${first}_${sh('dpkg', ['--print-architecture']).stdout.trim()}.deb`]);
      expect(readFileSync(join(saved, 'config.json'), 'utf8')).toBe(written);
    },
    dpkgTimeout,
  );

  it(
    'rolls back with one command: the saved version and the config it ran with',
    () => {
      if (!root) return;
      const rollback = sh('village-edge-rollback', []);
      expect(rollback.code, rollback.out).toBe(0);
      expect(rollback.stdout).toContain(`village-edge-rollback: now ${first}`);
      expect(installedVersion()).toBe(first);
      expect(sh('village-edge', ['--version']).stdout.trim()).toBe(first);
      expect(readFileSync(config, 'utf8')).toBe(villageConfigV1());
      expect(checkConfigAsService().code).toBe(0);
      expect(readFileSync('/var/lib/village-edge/outbox.sqlite', 'utf8')).toBe("the village's unsent alarms");
      // The version rolled back from is saved in its turn, with its migrated config: a second rollback undoes this one.
      expect(readdirSync(saved).filter((f) => f.endsWith('.deb'))).toEqual([expect.stringContaining(`village-edge_${second}_`)]);
      expect((JSON.parse(readFileSync(join(saved, 'config.json'), 'utf8')) as { version: number }).version).toBe(2);
    },
    dpkgTimeout,
  );

  it(
    'removes the program and keeps config and data; purge deletes them',
    () => {
      if (!root) return;
      const remove = sh('dpkg', ['--remove', 'village-edge']);
      expect(remove.code, remove.out).toBe(0);
      for (const gone of ['/opt/village-edge/dist/main.js', '/usr/bin/village-edge', '/lib/systemd/system/village-edge.service'])
        expect(existsSync(gone), gone).toBe(false);
      expect(existsSync(config)).toBe(true);
      expect(existsSync('/var/lib/village-edge/outbox.sqlite')).toBe(true);

      const purge = sh('dpkg', ['--purge', 'village-edge']);
      expect(purge.code, purge.out).toBe(0);
      for (const gone of ['/etc/village-edge', '/var/lib/village-edge', saved, '/etc/systemd/system/multi-user.target.wants/village-edge.service'])
        expect(existsSync(gone), gone).toBe(false);
    },
    dpkgTimeout,
  );
});

interface InstallBlock {
  /** `run`, or `skip <id>: <why>` */
  annotation: string;
  script: string;
}

/** The ```sh blocks of the README's install section, each with the `<!-- install-test: … -->` line before it. */
function installBlocks(): InstallBlock[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Install on a Raspberry Pi');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  return [...section.matchAll(/(?:<!-- install-test: (.+?) -->\n)?```sh\n([\s\S]*?)```/g)].map((m) => ({
    annotation: m[1] ?? '(none)',
    script: m[2]!,
  }));
}

/**
 * What the test does in place of each block it cannot run here: every skipped block must be one of these,
 * so a new block is either run or given a reason.
 */
const standIns: Record<string, string> = {
  internet: 'nothing: Node.js 20 is installed',
  clone: "copies the checkout (its tracked files) to a temporary folder, with this checkout's node_modules",
  'npm-ci': "nothing: the copy uses this checkout's node_modules, which .ci/run installed with npm ci",
  adapters: 'nothing',
  editor: 'writes a village config with the county key and a simulated bus',
  systemd: 'nothing',
  'sound-card': 'nothing',
  upgrade: 'nothing: the package test above upgrades and rolls back',
};

unlessUnprivileged("the README's install section, run as written", () => {
  let work: string;

  afterAll(() => {
    if (!root) return;
    sh('dpkg', ['--purge', 'village-edge']);
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  }, dpkgTimeout);

  it(
    'runs every block it can on this machine, in order, each exiting 0',
    () => {
      if (!root) return;
      const blocks = installBlocks();
      expect(blocks.length).toBeGreaterThan(8);
      work = mkdtempSync(join(tmpdir(), 've-readme-'));
      // The README says sudo; root on a machine without sudo runs the commands as they are.
      const bin = join(work, 'bin');
      mkdirSync(bin);
      if (sh('sh', ['-c', 'command -v sudo']).code !== 0)
        writeFileSync(join(bin, 'sudo'), '#!/bin/sh\nif [ "$1" = -u ]; then user="$2"; shift 2; exec runuser -u "$user" -- "$@"; fi\nexec "$@"\n', {
          mode: 0o755,
        });
      let cwd = repoRoot;
      const ran: string[] = [];
      for (const block of blocks) {
        const skip = /^skip ([\w-]+): (.+)$/.exec(block.annotation);
        if (skip !== null) {
          expect(Object.keys(standIns), `a skipped block needs a stand-in: ${block.annotation}`).toContain(skip[1]);
          if (skip[1] === 'clone') cwd = copyCheckout(join(work, 'village-edge'));
          if (skip[1] === 'editor') writeFileSync(config, villageConfig());
          continue;
        }
        expect(block.annotation, `every block says run or skip: ${block.script}`).toBe('run');
        const result = spawnSync('sh', ['-e', '-c', block.script], {
          cwd,
          encoding: 'utf8',
          timeout: dpkgTimeout,
          env: { ...process.env, PATH: `${bin}:${process.env['PATH']}`, DEBIAN_FRONTEND: 'noninteractive' },
        });
        expect(result.status, `${block.script}\n${result.stdout}${result.stderr}`).toBe(0);
        ran.push(block.script.trim().split('\n')[0]!);
      }
      console.log(`  ran ${ran.length} of ${blocks.length} blocks: ${ran.join(' | ')}`);
      expect(installedVersion()).toBe(packageVersion);
    },
    2 * dpkgTimeout,
  );
});

/** The tracked files of this checkout, as a clone has them, with this checkout's installed node_modules. */
function copyCheckout(to: string): string {
  const files = sh('git', ['-C', repoRoot, 'ls-files', '-z'])
    .stdout.split('\0')
    .filter((f) => f !== '');
  for (const file of files) {
    if (!existsSync(join(repoRoot, file))) continue;
    mkdirSync(dirname(join(to, file)), { recursive: true });
    cpSync(join(repoRoot, file), join(to, file));
  }
  symlinkSync(join(repoRoot, 'node_modules'), join(to, 'node_modules'));
  return to;
}

/** What an installer writes in step 4, for a village whose devices are simulated. */
function villageConfig(): string {
  const key = JSON.parse(readFileSync(join(repoRoot, 'config/demo-county.public.jwk.json'), 'utf8')) as { kid: string; x: string };
  const village = JSON.parse(villageConfigV1()) as Record<string, unknown> & { county: Record<string, unknown> };
  return `${JSON.stringify({ ...village, version: 2, county: { ...village.county, commandKeys: [{ kid: key.kid, x: key.x }] } }, null, 2)}\n`;
}
