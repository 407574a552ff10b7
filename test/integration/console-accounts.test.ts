import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accountsFileExposure, readAccounts, verifyPassword } from '../../src/console/auth/accounts.ts';

const repoRoot = new URL('../../', import.meta.url).pathname;
/** The built bundle (the global setup builds it), as the package installs it. */
const bundle = join(repoRoot, 'dist/main.js');
const RUNS = { timeout: 120_000 };

function village(): { dir: string; config: string; users: string } {
  const dir = mkdtempSync(join(tmpdir(), 've-accounts-'));
  const config = join(dir, 'config.json');
  const base = JSON.parse(readFileSync(join(repoRoot, 'config/example.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(config, JSON.stringify({ ...base, dataDir: join(dir, 'data'), console: { enabled: true } }));
  return { dir, config, users: join(dir, 'console-users.json') };
}

function user(config: string, input: string, ...args: string[]) {
  const result = spawnSync(process.execPath, [bundle, 'user', ...args, '--config', config], { input, encoding: 'utf8', timeout: 30_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('console accounts (village-edge user)', () => {
  it(
    'adds an account with a per-user salted scrypt hash in an owner-only file beside the config; the password verifies, another does not',
    RUNS,
    async () => {
      const v = village();
      const added = user(v.config, 'correct horse\n', 'add', 'zhang', '--role', 'official');
      expect(added.stderr).toBe('');
      expect(added.code).toBe(0);
      expect(added.stdout).toMatch(/^added zhang \(official\) in .*console-users\.json$/m);
      expect(user(v.config, 'correct horse\n', 'add', 'li', '--role', 'installer').code).toBe(0);
      expect(statSync(v.users).mode & 0o777).toBe(0o600);
      expect(accountsFileExposure(v.users)).toBeUndefined();
      const accounts = readAccounts(v.users);
      expect(accounts.users.map((u) => [u.name, u.role])).toEqual([
        ['zhang', 'official'],
        ['li', 'installer'],
      ]);
      // Same password, different salts, different hashes; and no password in the file.
      const [zhang, li] = accounts.users;
      expect(zhang!.scrypt.salt).not.toBe(li!.scrypt.salt);
      expect(zhang!.scrypt.hash).not.toBe(li!.scrypt.hash);
      expect(readFileSync(v.users, 'utf8')).not.toContain('correct horse');
      expect((await verifyPassword(accounts, 'zhang', 'correct horse'))?.name).toBe('zhang');
      expect(await verifyPassword(accounts, 'zhang', 'correct horsE')).toBeUndefined();
      expect(await verifyPassword(accounts, 'nobody', 'correct horse')).toBeUndefined();
      expect(user(v.config, '', 'list').stdout).toMatch(/^zhang\tofficial\tsince .*\nli\tinstaller\tsince /);
    },
  );

  it(
    'changes a password and a role, removes an account; refuses a duplicate, an unknown user, a short password and a bad name with one line',
    RUNS,
    async () => {
      const v = village();
      expect(user(v.config, 'first password\n', 'add', 'wang', '--role', 'official').code).toBe(0);
      const duplicate = user(v.config, 'another one\n', 'add', 'wang', '--role', 'official');
      expect([duplicate.code, duplicate.stderr.trim()]).toEqual([
        1,
        'user add: "wang" exists already (change its password with: village-edge user passwd wang)',
      ]);
      expect(user(v.config, 'second password\n', 'passwd', 'wang', '--role', 'installer').code).toBe(0);
      const accounts = readAccounts(v.users);
      expect(accounts.users[0]!.role).toBe('installer');
      expect(await verifyPassword(accounts, 'wang', 'first password')).toBeUndefined();
      expect((await verifyPassword(accounts, 'wang', 'second password'))?.role).toBe('installer');

      const short = user(v.config, 'short\n', 'add', 'zhao', '--role', 'official');
      expect([short.code, short.stderr.trim()]).toEqual([1, 'user: the password must have at least 8 characters']);
      const noRole = user(v.config, 'long enough\n', 'add', 'zhao');
      expect([noRole.code, noRole.stderr.trim()]).toEqual([2, 'user add: --role official|installer is required (see user --help)']);
      const badRole = user(v.config, 'long enough\n', 'add', 'zhao', '--role', 'admin');
      expect([badRole.code, badRole.stderr.trim()]).toEqual([2, 'user add: --role "admin": one of official, installer']);
      const badName = user(v.config, 'long enough\n', 'add', 'Zhao Li', '--role', 'official');
      expect(badName.code).toBe(2);
      expect(badName.stderr).toMatch(/^user add: NAME "Zhao Li": a lower-case letter, then up to 31 letters/);
      const unknown = user(v.config, '', 'remove', 'nobody');
      expect([unknown.code, unknown.stderr.trim()]).toEqual([1, `user remove: no user "nobody" in ${v.users}`]);

      expect(user(v.config, '', 'remove', 'wang').code).toBe(0);
      expect(readAccounts(v.users).users).toEqual([]);
      expect(user(v.config, '', 'list').stdout).toMatch(/^no accounts in /);
    },
  );

  it('a damaged accounts file is named with its problem, never a stack; one readable by others is a problem for health', RUNS, () => {
    const v = village();
    writeFileSync(v.users, '{"format": 1, "users": [{"name": "x"}]}');
    const damaged = user(v.config, '', 'list');
    expect(damaged.code).toBe(1);
    expect(damaged.stderr).toMatch(/^user: .*console-users\.json: users\[0\]\.role: /);
    expect(damaged.stderr).not.toMatch(/\n\s+at /);
    writeFileSync(v.users, '{ not json');
    expect(user(v.config, '', 'list').stderr).toMatch(/^user: .*console-users\.json: .*JSON/);
    writeFileSync(v.users, '{"format": 1, "users": []}', { mode: 0o644 });
    expect(accountsFileExposure(v.users)).toMatch(/console-users\.json is readable by others \(mode 644\): chmod 600 it/);
  });

  it('on a terminal asks twice and shows nothing of the password typed', RUNS, async () => {
    const v = village();
    // script(1) (Debian's bsdutils) gives the command a real terminal; each answer is typed after its prompt.
    const command = `${process.execPath} ${bundle} user add sun --role official --config ${v.config}`;
    const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let shown = '';
    const prompted = (text: string) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (shown.includes(text)) resolve();
        };
        child.stdout.on('data', (chunk: Buffer) => {
          shown += chunk.toString('utf8');
          check();
        });
        child.once('exit', () => reject(new Error(`exited before "${text}": ${shown}`)));
        check();
      });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await prompted('password for sun: ');
    child.stdin.write('tty-secret-9\r');
    await prompted('again: ');
    child.stdin.write('tty-secret-9\r');
    expect(await exited).toBe(0);
    expect(shown).toContain('added sun (official)');
    expect(shown).not.toContain('tty-secret-9');
    expect((await verifyPassword(readAccounts(v.users), 'sun', 'tty-secret-9'))?.name).toBe('sun');
  });
});
