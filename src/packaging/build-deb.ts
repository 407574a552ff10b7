/**
 * `npm run package`: builds village-edge_<version>_<arch>.deb for this machine's architecture with dpkg-deb,
 * from the bundle `npm run build` made. What goes where is the table in `layout` below; the maintainer
 * scripts are `debian/`, the two commands on the PATH `bin/`. Run on the architecture it is for (a Pi, or
 * an arm64 build machine): node_modules holds native modules compiled for it.
 *
 *   tsx src/packaging/build-deb.ts [--version V] [--out DIR]
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const repoRoot = resolve(new URL('../../', import.meta.url).pathname);
const here = (name: string) => join(repoRoot, 'src/packaging', name);

/** What the .deb installs: staged path ← file in the checkout (a folder is copied whole), with its mode. */
const layout: { to: string; from: string; mode?: number }[] = [
  { to: 'opt/village-edge/dist', from: 'dist' },
  { to: 'opt/village-edge/devices', from: 'devices' },
  { to: 'opt/village-edge/README.md', from: 'README.md' },
  { to: 'opt/village-edge/config/village.example.json', from: 'config/village.example.json' },
  // The village's config, a conffile: dpkg never overwrites it once the installer has changed it.
  { to: 'etc/village-edge/config.json', from: 'config/village.example.json', mode: 0o640 },
  { to: 'lib/systemd/system/village-edge.service', from: 'systemd/village-edge.service', mode: 0o644 },
  { to: 'usr/bin/village-edge', from: 'src/packaging/bin/village-edge', mode: 0o755 },
  { to: 'usr/sbin/village-edge-rollback', from: 'src/packaging/bin/village-edge-rollback', mode: 0o755 },
];

const conffiles = ['/etc/village-edge/config.json'];
const maintainerScripts = ['preinst', 'postinst', 'prerm', 'postrm'];

/**
 * What the SD card does not need of the production node_modules: what node-gyp left after compiling
 * (objects, static libraries, the sources it compiled: 26 MB in better-sqlite3 alone) and the prebuilt
 * binaries for other systems. Paths inside node_modules; a missing one is skipped.
 */
function leftovers(modules: string, arch: string): string[] {
  const prebuilds = 'prebuilds';
  const serialport = '@serialport/bindings-cpp';
  const keepPrebuild = `linux-${arch}`;
  const prebuildDir = join(modules, serialport, prebuilds);
  const foreign = existsSync(prebuildDir) ? readdirSync(prebuildDir).filter((d) => d !== keepPrebuild) : [];
  return [
    'better-sqlite3/deps',
    'better-sqlite3/src',
    'better-sqlite3/build/deps',
    'better-sqlite3/build/Release/obj',
    'better-sqlite3/build/Release/obj.target',
    'better-sqlite3/build/Release/.deps',
    'better-sqlite3/build/Release/sqlite3.a',
    'better-sqlite3/build/Release/test_extension.node',
    'unix-dgram/src',
    'unix-dgram/test',
    'unix-dgram/build/Release/obj.target',
    'unix-dgram/build/Release/.deps',
    `${serialport}/src`,
    ...foreign.map((d) => `${serialport}/${prebuilds}/${d}`),
  ].map((path) => join(modules, path));
}

interface Options {
  version: string;
  out: string;
}

function main(argv: string[]): number {
  const { values } = parseArgs({ args: argv, options: { version: { type: 'string' }, out: { type: 'string' } } });
  const manifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { name: string; version: string; description: string };
  const options: Options = { version: values.version ?? manifest.version, out: resolve(values.out ?? '.') };
  if (!/^[0-9][A-Za-z0-9.+~-]*$/.test(options.version))
    return fail(`--version: "${options.version}" is not a Debian version (digits first, then letters, digits, . + ~ -)`);
  if (!existsSync(join(repoRoot, 'dist/main.js'))) return fail('dist/main.js is missing: npm run package builds it first (npm run build)');
  for (const tool of ['dpkg-deb', 'dpkg', 'npm'])
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return fail(`${tool} is not on the PATH (Debian's dpkg package, Node's npm)`);

  const started = performance.now();
  const debArch = run('dpkg', ['--print-architecture']).trim();
  const stage = mkdtempSync(join(tmpdir(), 'village-edge-deb-'));
  try {
    const root = join(stage, 'root');
    for (const item of layout) {
      const target = join(root, item.to);
      mkdirSync(dirname(target), { recursive: true });
      cpSync(join(repoRoot, item.from), target, { recursive: true });
      if (item.mode !== undefined) chmodSync(target, item.mode);
    }
    // The installed build reads its version from here (`village-edge --version`, the county birth message).
    writeFileSync(
      join(root, 'opt/village-edge/package.json'),
      `${JSON.stringify({ name: manifest.name, version: options.version, description: manifest.description, type: 'module', private: true }, null, 2)}\n`,
    );
    const modules = productionModules(stage);
    renameSync(modules, join(root, 'opt/village-edge/node_modules'));

    const debian = join(root, 'DEBIAN');
    mkdirSync(debian);
    for (const script of maintainerScripts) {
      copyFileSync(here(`debian/${script}`), join(debian, script));
      chmodSync(join(debian, script), 0o755);
    }
    writeFileSync(join(debian, 'conffiles'), `${conffiles.join('\n')}\n`);
    const installedKiB = installedSize(root, debian);
    writeFileSync(join(debian, 'control'), control(manifest.description, options.version, debArch, installedKiB));

    mkdirSync(options.out, { recursive: true });
    const deb = join(options.out, `village-edge_${options.version}_${debArch}.deb`);
    run('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', root, deb]);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`${deb}: ${(statSync(deb).size / 1048576).toFixed(1)} MiB, ${(installedKiB / 1024).toFixed(1)} MiB installed, built in ${seconds} s`);
    return 0;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/**
 * The production dependencies as the lockfile pins them, with their native modules as compiled here: the
 * checkout's node_modules copied, pruned of dev dependencies (TypeScript, vitest, esbuild stay off the
 * card) and of build leftovers. Copying, not `npm ci --omit=dev`, so nothing is downloaded or compiled again.
 */
function productionModules(stage: string): string {
  const scratch = join(stage, 'modules');
  mkdirSync(scratch);
  for (const file of ['package.json', 'package-lock.json']) copyFileSync(join(repoRoot, file), join(scratch, file));
  // realpath: a checkout whose node_modules is a link to another's is copied from the folder linked to.
  cpSync(realpathSync(join(repoRoot, 'node_modules')), join(scratch, 'node_modules'), { recursive: true, verbatimSymlinks: true });
  run('npm', ['prune', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], scratch);
  const modules = join(scratch, 'node_modules');
  for (const path of leftovers(modules, process.arch)) rmSync(path, { recursive: true, force: true });
  rmSync(join(modules, '.package-lock.json'), { force: true });
  return modules;
}

/**
 * Native modules are built for this Node's ABI, so the package needs a node of the same major version;
 * the player programs are what the default config starts.
 */
function control(description: string, version: string, arch: string, installedKiB: number): string {
  const major = Number(process.versions.node.split('.')[0]);
  return [
    'Package: village-edge',
    `Version: ${version}`,
    `Architecture: ${arch}`,
    'Maintainer: village-edge maintainers <village-edge@county.example>',
    `Installed-Size: ${installedKiB}`,
    `Depends: nodejs (>= ${major}), nodejs (<< ${major + 1}), espeak-ng, alsa-utils, mpg123, passwd, init-system-helpers`,
    'Section: misc',
    'Priority: optional',
    'Description: village controller: alarm columns, loudspeakers and the county link',
    ` ${description}`,
    ' Relays alarm-column presses to the county over MQTT, plays county emergencies and',
    ' announcements on the village loudspeakers, and reports devices and faults.',
    '',
  ].join('\n');
}

/** Installed-Size as dpkg-gencontrol counts it: KiB, each file rounded up, each folder and link one. */
function installedSize(root: string, skip: string): number {
  let kib = 0;
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (path === skip) continue;
      const stat = lstatSync(path);
      if (stat.isDirectory()) {
        kib += 1;
        walk(path);
      } else if (stat.isFile()) kib += Math.ceil(stat.size / 1024);
      else kib += 1;
    }
  };
  walk(root);
  return kib;
}

function run(command: string, args: string[], cwd = repoRoot): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (exit ${result.status}): ${result.stderr.trim()}`);
  return result.stdout;
}

function fail(message: string): number {
  console.error(`package: ${message}`);
  return 1;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (error) {
  console.error(`package: ${(error as Error).message}`);
  process.exitCode = 1;
}
