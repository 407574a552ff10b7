import { existsSync, readFileSync, statSync } from 'node:fs';
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import * as z from 'zod';
import { writeFileDurably } from '../../platform/durable-file.ts';
import { describeIssues } from '../../platform/schema-errors.ts';
import { errorText } from '../../platform/error-text.ts';
import { consoleRoles, type ConsoleRole } from '../types.ts';

/** A login name: short, lower-case, safe in a log line, a report and a file. */
export const userNameSchema = z.string().regex(/^[a-z][a-z0-9._-]{0,31}$/, 'a lower-case letter, then up to 31 letters, digits, ".", "_" or "-"');

/** scrypt's cost: N = 2^14 uses 16 MiB and takes ~0.1 s on a Pi 4; stored per user, so it can be raised later. */
const defaultCost = { N: 16_384, r: 8, p: 1 } as const;
const keyLength = 32;

const accountSchema = z
  .object({
    name: userNameSchema,
    role: z.enum(consoleRoles),
    scrypt: z
      .object({
        N: z.number().int().min(1024),
        r: z.number().int().min(1),
        p: z.number().int().min(1),
        salt: z.base64().min(16),
        hash: z.base64().min(16),
      })
      .strict(),
    createdAt: z.iso.datetime({ offset: true }),
  })
  .strict();
export type Account = z.infer<typeof accountSchema>;

export const accountsFileSchema = z.object({ format: z.literal(1), users: z.array(accountSchema) }).strict();
export type AccountsFile = z.infer<typeof accountsFileSchema>;

/** The accounts file is read fresh at each login, so `village-edge user add` takes effect without a restart. */
export class AccountsFileError extends Error {
  override readonly name = 'AccountsFileError';
}

export function readAccounts(path: string): AccountsFile {
  if (!existsSync(path)) return { format: 1, users: [] };
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new AccountsFileError(`${path}: ${errorText(error)}`);
  }
  const parsed = accountsFileSchema.safeParse(json);
  if (!parsed.success) throw new AccountsFileError(`${path}: ${describeIssues(parsed.error).join('; ')}`);
  const names = new Set<string>();
  for (const user of parsed.data.users) {
    if (names.has(user.name)) throw new AccountsFileError(`${path}: user "${user.name}" appears twice`);
    names.add(user.name);
  }
  return parsed.data;
}

/**
 * Written whole, fsync'd, owner-only (it holds password hashes). `owner`: the service's user, when root writes
 * it for a service that runs as another user.
 */
export function writeAccounts(path: string, file: AccountsFile, owner?: { uid: number; gid: number }): void {
  writeFileDurably(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, ...owner });
}

/** A problem for health when the file is readable by more than its owner (copied by hand, a careless chmod). */
export function accountsFileExposure(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  const mode = statSync(path).mode & 0o777;
  return (mode & 0o077) === 0 ? undefined : `${path} is readable by others (mode ${mode.toString(8)}): chmod 600 it`;
}

export async function hashPassword(password: string, now: Date = new Date()): Promise<Account['scrypt'] & { createdAt: string }> {
  const salt = randomBytes(16);
  const hash = await derive(password, salt, defaultCost);
  return { ...defaultCost, salt: salt.toString('base64'), hash: hash.toString('base64'), createdAt: now.toISOString() };
}

export function accountWith(name: string, role: ConsoleRole, hashed: Awaited<ReturnType<typeof hashPassword>>): Account {
  const { createdAt, ...scryptParams } = hashed;
  return { name, role, scrypt: scryptParams, createdAt };
}

/**
 * The account if the password is its own. An unknown name costs the same scrypt as a known one, so the time a
 * refusal takes does not tell which names exist.
 */
export async function verifyPassword(accounts: AccountsFile, name: string, password: string): Promise<Account | undefined> {
  const account = accounts.users.find((u) => u.name === name);
  const params = account?.scrypt ?? { ...defaultCost, salt: decoySalt, hash: decoyHash };
  const expected = Buffer.from(params.hash, 'base64');
  const actual = await derive(password, Buffer.from(params.salt, 'base64'), params, expected.length);
  return account !== undefined && actual.length === expected.length && timingSafeEqual(actual, expected) ? account : undefined;
}

const decoySalt = Buffer.alloc(16, 7).toString('base64');
const decoyHash = Buffer.alloc(keyLength).toString('base64');

function derive(password: string, salt: Buffer, cost: { N: number; r: number; p: number }, length = keyLength): Promise<Buffer> {
  const options: ScryptOptions = { N: cost.N, r: cost.r, p: cost.p, maxmem: 256 * cost.N * cost.r + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, length, options, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

/**
 * The accounts file as it is now, read again only when it changed (size, mtime, inode): each request checks
 * that its user still exists with the same role, so `user remove` and a changed role take effect at once,
 * without reading and parsing the file on every poll of the status page.
 */
export class AccountsCache {
  private stamp = '';
  private cached: AccountsFile | AccountsFileError = { format: 1, users: [] };

  constructor(private readonly path: string) {}

  /** The accounts, or the reason the file cannot be read (a damaged file lets nobody in). */
  current(): AccountsFile | AccountsFileError {
    let stamp: string;
    try {
      const s = statSync(this.path);
      stamp = `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (error) {
      stamp = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    }
    if (stamp !== this.stamp) {
      this.stamp = stamp;
      try {
        this.cached = readAccounts(this.path);
      } catch (error) {
        this.cached = error instanceof AccountsFileError ? error : new AccountsFileError(`${this.path}: ${errorText(error)}`);
      }
    }
    return this.cached;
  }
}
