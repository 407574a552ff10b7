import type { LineProfile } from '../device/profile-schema.ts';

/**
 * The line protocol of alarm columns, NMEA-like:
 *
 *     $<talker>,<unit>,<verb>[,<arg>...]*<XX><delimiter>
 *
 * XX is the XOR of every byte between `$` and `*`, as two hex digits (written upper-case, read in either
 * case). Pure functions only: the serial port lives in line-bus.ts.
 */

/** What a verb means, as the profile maps it. */
export type LineEvent = NonNullable<LineProfile['line']['events'][string]>;

export type LineErrorKind = 'checksum' | 'garbage' | 'overlong';

export interface LineError {
  ok: false;
  kind: LineErrorKind;
  reason: string;
  /**
   * The unit the line claims to come from, when that field could be read. With a bad checksum the
   * field itself may be corrupt, so it only says where to count the error, never what to act on.
   */
  unit?: number;
}

/** A line whose structure and checksum are good; talker and verb not yet checked against a profile. */
export interface LineFrame {
  ok: true;
  talker: string;
  unit: number;
  verb: string;
  args: string[];
}

export type ParsedLine = { ok: true; unit: number; verb: string; args: string[]; event: LineEvent } | LineError;

const TALKER = /^[A-Z]{2,5}$/;
const VERB = /^[A-Z]{2,8}$/;
const UNIT = /^\d{1,3}$/;
const MAX_UNIT = 247;
const CHECKSUM_FIELD = /^[0-9A-Fa-f]{2}$/;

export function xor8Checksum(body: string): number {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i) & 0xff;
  return sum;
}

function hex2(value: number): string {
  return value.toString(16).toUpperCase().padStart(2, '0');
}

/**
 * A controller→device line without the delimiter (each profile has its own). `body` is the verb and
 * its arguments, e.g. `LED,ON`. Bad input is a programming or profile error, so it throws.
 */
export function formatLine(talker: string, unit: number, body: string): string {
  if (!TALKER.test(talker)) throw new RangeError(`talker "${talker}" must be two to five upper-case letters`);
  if (!Number.isInteger(unit) || unit < 0 || unit > MAX_UNIT) throw new RangeError(`unit ${unit} must be an integer 0-${MAX_UNIT}`);
  const verb = body.split(',')[0] ?? '';
  if (!VERB.test(verb)) throw new RangeError(`body "${body}" must start with a verb of two to eight upper-case letters`);
  if (!/^[\x20-\x7e]*$/.test(body) || /[$*]/.test(body)) {
    throw new RangeError(`body "${body}" must be printable ASCII without "$" or "*"`);
  }
  const inner = `${talker},${unit},${body}`;
  return `$${inner}*${hex2(xor8Checksum(inner))}`;
}

/**
 * The unit field of a line that may be broken (cut short, overlong, bad checksum): where to count the
 * error so an installer can find the faulty column, never something to act on.
 */
export function claimedUnit(text: string): number | undefined {
  if (!text.startsWith('$')) return undefined;
  const field = text.slice(1).split(/[,*]/)[1];
  if (field === undefined || !UNIT.test(field)) return undefined;
  const unit = Number(field);
  return unit <= MAX_UNIT ? unit : undefined;
}

function fail(kind: LineErrorKind, reason: string, unit?: number): LineError {
  return unit === undefined ? { ok: false, kind, reason } : { ok: false, kind, reason, unit };
}

/** Checks structure and checksum only, so a bus shared by several models can find the unit first. */
export function parseFrame(text: string, maxLength: number): LineFrame | LineError {
  if (text.length > maxLength) return fail('overlong', `line of ${text.length} bytes is longer than ${maxLength}`, claimedUnit(text));
  if (!text.startsWith('$')) return fail('garbage', `does not start with "$": ${preview(text)}`);
  const star = text.lastIndexOf('*');
  if (star < 0) return fail('garbage', `no "*" before the checksum: ${preview(text)}`, claimedUnit(text));
  const inner = text.slice(1, star);
  const unit = claimedUnit(text);
  const given = text.slice(star + 1);
  if (!CHECKSUM_FIELD.test(given)) return fail('garbage', `checksum field ${preview(given)} is not two hex digits`, unit);
  const bad = inner.search(/[^\x20-\x7e]|[$*]/);
  if (bad >= 0) {
    const code = inner.charCodeAt(bad);
    // Columns are counted from 1 at the "$", as an installer reading the line would count them.
    return fail('garbage', `byte 0x${hex2(code)} at column ${bad + 2} does not belong in a line`, unit);
  }
  const computed = xor8Checksum(inner);
  if (parseInt(given, 16) !== computed) return fail('checksum', `checksum: got ${given}, computed ${hex2(computed)}`, unit);

  const [talker = '', unitField = '', verb = '', ...args] = inner.split(',');
  if (!TALKER.test(talker)) return fail('garbage', `talker "${talker}" is not two to five upper-case letters`, unit);
  if (unit === undefined) return fail('garbage', `unit "${unitField}" is not a number 0-${MAX_UNIT}`);
  if (!VERB.test(verb)) return fail('garbage', `verb "${verb}" is not two to eight upper-case letters`, unit);
  return { ok: true, talker, unit, verb, args };
}

/** Checks a good frame against one device's profile. */
export function interpretFrame(frame: LineFrame, profile: LineProfile): ParsedLine {
  const { talker, unit, verb, args } = frame;
  if (talker !== profile.line.talker) return fail('garbage', `talker "${talker}" is not "${profile.line.talker}"`, unit);
  const event = profile.line.events[verb];
  if (event === undefined) return fail('garbage', `unknown verb "${verb}"`, unit);
  return { ok: true, unit, verb, args, event };
}

/** One line (delimiter already removed) read from a device with this profile. */
export function parseLine(text: string, profile: LineProfile): ParsedLine {
  const frame = parseFrame(text, profile.line.maxLength);
  return frame.ok ? interpretFrame(frame, profile) : frame;
}

/** A short, quoted, escaped rendering of a line for reasons and logs. */
export function preview(text: string): string {
  const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
  return JSON.stringify(shown);
}

/** What the framer makes of the byte stream. */
export type FramerOutput =
  | { kind: 'line'; text: string }
  /** A line that passed `maxLength` (reported once; the rest of it up to the next `$` or delimiter is dropped). */
  | { kind: 'overlong'; length: number; head: string }
  /** A line cut short by the `$` of the next one (noise, or a device restarting mid-line). */
  | { kind: 'cut'; text: string }
  /** Bytes left over from before the port was (re)opened; not the device's fault, so not an error. */
  | { kind: 'stale'; text: string };

const DOLLAR = 0x24;
const LF = 0x0a;
const CR = 0x0d;
/** Enough of an overlong line to read its talker and unit. */
const HEAD_LENGTH = 16;

/**
 * Splits bytes into lines. Written instead of @serialport/parser-readline because that parser buffers
 * without limit (an endless line grows memory and costs O(n²) in Buffer.concat) and cannot resync on `$`.
 * Memory here is bounded by `maxLength`.
 *
 * Reading is tolerant of the delimiter (`\n` with or without `\r`): the checksum, not the delimiter,
 * is what proves a line intact, and a column with the wrong delimiter setting should still be heard.
 */
export class LineFramer {
  private readonly buffer: Buffer;
  private length = 0;
  /** Bytes of an overlong line seen so far; > 0 while the rest of that line is being dropped. */
  private dropping = 0;
  private resyncing = true;

  constructor(private readonly maxLength: number) {
    this.buffer = Buffer.alloc(maxLength + 1);
  }

  /** Call on every (re)open: what arrives before the first delimiter may be a leftover from before. */
  reset(): void {
    this.length = 0;
    this.dropping = 0;
    this.resyncing = true;
  }

  push(chunk: Buffer): FramerOutput[] {
    const out: FramerOutput[] = [];
    for (const byte of chunk) {
      if (byte === DOLLAR && (this.length > 0 || this.dropping > 0)) {
        if (this.length > 0) out.push({ kind: this.resyncing ? 'stale' : 'cut', text: this.take() });
        this.dropping = 0;
      }
      if (byte === LF) {
        this.endLine(out);
        continue;
      }
      if (this.dropping > 0) {
        this.dropping++;
        continue;
      }
      if (this.length === this.buffer.length) {
        // Room for maxLength bytes plus a `\r`; one more means the line is too long whatever follows.
        this.dropping = this.length + 1;
        out.push({ kind: 'overlong', length: this.dropping, head: this.take().slice(0, HEAD_LENGTH) });
        continue;
      }
      this.buffer[this.length++] = byte;
    }
    return out;
  }

  private endLine(out: FramerOutput[]): void {
    const wasResyncing = this.resyncing;
    this.resyncing = false;
    if (this.dropping > 0) {
      this.dropping = 0;
      return;
    }
    if (this.length > 0 && this.buffer[this.length - 1] === CR) this.length--;
    const text = this.take();
    if (text.length > this.maxLength) out.push({ kind: 'overlong', length: text.length, head: text.slice(0, HEAD_LENGTH) });
    else if (wasResyncing && !text.startsWith('$')) {
      if (text.length > 0) out.push({ kind: 'stale', text });
    } else if (text.length > 0) out.push({ kind: 'line', text });
  }

  private take(): string {
    // latin1 keeps one char per byte, so the checksum is computed over the bytes as sent.
    const text = this.buffer.toString('latin1', 0, this.length);
    this.length = 0;
    return text;
  }
}
