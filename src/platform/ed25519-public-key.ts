/**
 * Sanity check of a configured Ed25519 public key, because neither node:crypto nor jose checks one on
 * import. It matters: OpenSSL verifies against a *small-order* key without complaint, and with the
 * identity point (`AQAA…`) as the key, the signature `R = identity, S = 0` verifies for every message
 * (with the all-zero key `AAAA…`, a plausible placeholder, a fixed forgery works for a quarter of all
 * messages). A typo that is not a curve point at all would silently refuse every command instead.
 *
 * Plain BigInt arithmetic on the affine Edwards curve: slow (~1 ms) but run once per key at start-up.
 */

const p = 2n ** 255n - 19n;

function mod(a: bigint): bigint {
  const r = a % p;
  return r < 0n ? r + p : r;
}

function pow(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % p;
    b = (b * b) % p;
  }
  return result;
}

const inv = (a: bigint): bigint => pow(a, p - 2n);
const d = mod(-121665n * inv(121666n));
const sqrtMinusOne = pow(2n, (p - 1n) / 4n);

interface Point {
  x: bigint;
  y: bigint;
}

/** RFC 8032 §5.1.3; returns a problem instead of a point when the bytes are not a canonical point. */
function decode(bytes: Uint8Array): Point | string {
  if (bytes.length !== 32) return `is ${bytes.length} bytes, an Ed25519 public key is 32`;
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(bytes[i] ?? 0);
  const sign = y >> 255n;
  y &= (1n << 255n) - 1n;
  if (y >= p) return 'is not a canonical Ed25519 point encoding';
  const y2 = mod(y * y);
  const x2 = mod((y2 - 1n) * inv(d * y2 + 1n));
  let x = pow(x2, (p + 3n) / 8n);
  if (mod(x * x - x2) !== 0n) x = mod(x * sqrtMinusOne);
  if (mod(x * x - x2) !== 0n) return 'is not a point on the Ed25519 curve (a mistyped or truncated key?)';
  if (x === 0n && sign === 1n) return 'is not a canonical Ed25519 point encoding';
  if ((x & 1n) !== sign) x = p - x;
  return { x, y };
}

/** Twisted Edwards addition with a = -1; complete on Ed25519 (d is not a square), so it doubles too. */
function add(a: Point, b: Point): Point {
  const t = mod(d * a.x * b.x * a.y * b.y);
  return {
    x: mod((a.x * b.y + a.y * b.x) * inv(1n + t)),
    y: mod((a.y * b.y + a.x * b.x) * inv(1n - t)),
  };
}

/** Undefined for a usable key; otherwise what is wrong with it, phrased to follow the field's name. */
export function ed25519PublicKeyProblem(bytes: Uint8Array): string | undefined {
  const point = decode(bytes);
  if (typeof point === 'string') return point;
  let eight = point;
  for (let i = 0; i < 3; i++) eight = add(eight, eight);
  // 8·P is the identity exactly when P lies in the small torsion subgroup (order 1, 2, 4 or 8).
  if (eight.x === 0n && eight.y === 1n) return 'is a small-order point, with which anyone could forge signatures';
  return undefined;
}
