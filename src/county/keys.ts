import { syncDirectory } from '../platform/durable-file.ts';
import { closeSync, constants, existsSync, fchmodSync, fsyncSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { CompactSign, exportJWK, generateKeyPair, importJWK, type CryptoKey } from 'jose';
import * as z from 'zod';
import { describeIssues, InvalidInputError } from '../platform/schema-errors.ts';

/**
 * Key tooling for the county side of the command link (`village-edge keygen` / `announce`) and for tests:
 * Ed25519 key pairs as JWK files, and the signing of command claims as compact JWS. Villages only ever
 * hold the public half, as a `county.commandKeys` entry `{ kid, x }`.
 */

/** The kid becomes part of file names: no separators, no leading dot. */
const kidSchema = z.string().regex(/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/, 'letters, digits, "_", "." and "-", at most 64, not starting with "."');
const base64url32 = z.string().regex(/^[A-Za-z0-9_-]{43}$/, '32 bytes, base64url (43 characters)');

const publicJwkSchema = z
  .object({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: base64url32, kid: kidSchema, alg: z.literal('EdDSA'), use: z.literal('sig') })
  .strict();
const privateJwkSchema = publicJwkSchema.extend({ d: base64url32 }).strict();

export type CountyPublicJwk = z.infer<typeof publicJwkSchema>;
export type CountyPrivateJwk = z.infer<typeof privateJwkSchema>;
/** One entry of `county.commandKeys`. */
export interface CommandKeyEntry {
  kid: string;
  x: string;
}
export interface CountySigningKey {
  kid: string;
  key: CryptoKey;
}

/** Claims as the county sends them; the command schemas in payloads.ts say what a village will accept. */
export type CommandClaimsInput = Readonly<Record<string, unknown>>;

export async function generateCountyKeyPair(kid: string): Promise<{ privateJwk: CountyPrivateJwk; publicJwk: CountyPublicJwk }> {
  const kidCheck = kidSchema.safeParse(kid);
  if (!kidCheck.success) throw new InvalidInputError('kid', [`${JSON.stringify(kid)}: ${kidCheck.error.issues.map((i) => i.message).join('; ')}`]);
  const checkedKid = kidCheck.data;
  const { privateKey, publicKey } = await generateKeyPair('Ed25519', { extractable: true });
  const [priv, pub] = await Promise.all([exportJWK(privateKey), exportJWK(publicKey)]);
  const common = { kty: 'OKP', crv: 'Ed25519', kid: checkedKid, alg: 'EdDSA', use: 'sig' } as const;
  return {
    privateJwk: privateJwkSchema.parse({ ...common, x: priv.x, d: priv.d }),
    publicJwk: publicJwkSchema.parse({ ...common, x: pub.x }),
  };
}

/**
 * Writes `<kid>.private.jwk.json` (0600) and `<kid>.public.jwk.json` (0644) into an existing `dir`, each
 * fsync'd; never overwrites a key file (a lost private key cannot be regenerated). Returns the config entry.
 */
export async function writeKeyFiles(dir: string, kid: string): Promise<CommandKeyEntry> {
  const { privateJwk, publicJwk } = await generateCountyKeyPair(kid);
  const privatePath = resolve(join(dir, `${publicJwk.kid}.private.jwk.json`));
  const publicPath = resolve(join(dir, `${publicJwk.kid}.public.jwk.json`));
  const written: string[] = [];
  try {
    writeNewFile(privatePath, `${JSON.stringify(privateJwk, null, 2)}\n`, 0o600);
    written.push(privatePath);
    writeNewFile(publicPath, `${JSON.stringify(publicJwk, null, 2)}\n`, 0o644);
    written.push(publicPath);
    syncDirectory(resolve(dir));
  } catch (error) {
    // Half a pair is worse than none: the next run would refuse to overwrite it.
    for (const path of written) unlinkSync(path);
    throw error;
  }
  return { kid: publicJwk.kid, x: publicJwk.x };
}

/**
 * Where keygen writes without --out: a per-user folder, never the current one — run in a checkout, the cwd
 * would put the county's private key one `git add .` away from a public repository.
 */
export function defaultKeyDirectory(env: Readonly<Record<string, string | undefined>> = process.env, home: string = homedir()): string {
  const xdg = env['XDG_CONFIG_HOME'];
  const config = xdg?.startsWith('/') ? xdg : join(home, '.config');
  return join(config, 'village-edge', 'keys');
}

/** The git checkout `dir` lies in (the folder holding `.git`), or undefined. */
export function enclosingCheckout(dir: string): string | undefined {
  for (let at = resolve(dir); ; at = dirname(at)) {
    if (existsSync(join(at, '.git'))) return at;
    if (dirname(at) === at) return undefined;
  }
}

/** Makes the key folder (and its parents) if missing; a new one is the owner's alone (0700). */
export function ensureKeyDirectory(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Error messages name the file; a private key open to group or others is refused, as ssh does. */
export async function loadPrivateKey(path: string): Promise<CountySigningKey> {
  const full = resolve(path);
  const fail = (problem: string, cause?: unknown): Error => new Error(`county private key ${full}: ${problem}`, cause === undefined ? {} : { cause });
  let text: string;
  let mode: number;
  try {
    mode = statSync(full).mode & 0o777;
    text = readFileSync(full, 'utf8');
  } catch (error) {
    throw fail(`cannot read it (${error instanceof Error ? error.message : String(error)})`, error);
  }
  if ((mode & 0o077) !== 0) throw fail(`is open to group or others (mode ${mode.toString(8).padStart(4, '0')}); chmod 600 it`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw fail('is not JSON', error);
  }
  const parsed = privateJwkSchema.safeParse(json);
  if (!parsed.success) throw fail(`is not a private Ed25519 JWK: ${describeIssues(parsed.error).join('; ')}`);
  const jwk = parsed.data;
  try {
    // Node's WebCrypto checks on import that d and x belong together, which a hand-edited file can break.
    const key = await importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, d: jwk.d }, 'EdDSA');
    return { kid: jwk.kid, key };
  } catch (error) {
    throw fail(`cannot be imported (${error instanceof Error ? error.message : String(error)}; is d the private part of x?)`, error);
  }
}

/** Compact JWS of `claims`, header `{alg: 'EdDSA', kid, typ: 'JWT'}` — exactly what the command gate reads. */
export async function signCommand(privateKey: CryptoKey, kid: string, claims: CommandClaimsInput): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify(claims))).setProtectedHeader({ alg: 'EdDSA', kid, typ: 'JWT' }).sign(privateKey);
}

/** Exclusive create, exact mode (fchmod: the umask must not loosen or tighten it), fsync'd. */
function writeNewFile(path: string, text: string, mode: number): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(code === 'EEXIST' ? `${path} already exists; refusing to overwrite a key` : `cannot create ${path} (${String(error)})`, {
      cause: error,
    });
  }
  try {
    fchmodSync(fd, mode);
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
