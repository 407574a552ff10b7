import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { PlayRequest } from '../broadcast/types.ts';
import { writeFileDurably } from '../platform/durable-file.ts';
import { errorText } from '../platform/error-text.ts';
import { uuidv7, type Now } from '../platform/time.ts';
import type { ActionResult, AuditEntry, ConsoleUser } from './types.ts';

/** The test tone: long enough to walk to the loudspeaker's window and hear it, short enough not to alarm anyone. */
export const testTone = { frequencyHz: 1000, durationMs: 2000, sampleRate: 16_000, file: 'console/tone-1khz.wav' } as const;

/** The id prefix that marks a loudspeaker test in every report of it (see contract.md, office console audit). */
export const speakerTestPrefix = 'speaker-test:';

/**
 * A 16-bit mono PCM WAV of a sine at half of full scale, with 10 ms ramps so the loudspeaker does not click.
 * Made in code rather than shipped: the same bytes on every Pi, so its sha256 is known without reading a file.
 */
export function toneWav(frequencyHz: number, durationMs: number, sampleRate: number): Buffer {
  const samples = Math.round((sampleRate * durationMs) / 1000);
  const ramp = Math.round(sampleRate / 100);
  const wav = Buffer.alloc(44 + samples * 2);
  wav.write('RIFF', 0, 'ascii');
  wav.writeUInt32LE(36 + samples * 2, 4);
  wav.write('WAVEfmt ', 8, 'ascii');
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // mono
  wav.writeUInt32LE(sampleRate, 24);
  wav.writeUInt32LE(sampleRate * 2, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write('data', 36, 'ascii');
  wav.writeUInt32LE(samples * 2, 40);
  for (let i = 0; i < samples; i++) {
    const envelope = Math.min(1, i / ramp, (samples - 1 - i) / ramp);
    wav.writeInt16LE(Math.round(0.5 * 32767 * envelope * Math.sin((2 * Math.PI * frequencyHz * i) / sampleRate)), 44 + i * 2);
  }
  return wav;
}

export interface SpeakerTestOptions {
  /** The media library's folder: the tone is written once under `console/` in it. */
  library: string;
  zones: readonly string[];
  /** The controller's: the reason it refused the request, or undefined when it took it. */
  submit(request: PlayRequest): string | undefined;
  /** The refusal the controller applies (quiet hours): asked first, so a refused test is said before anything is stored. */
  refusal(request: PlayRequest): string | undefined;
  report(entry: AuditEntry): void;
  logger: Logger;
  now: Now;
}

/**
 * The installer's loudspeaker test: the tone on one zone at `announcement` priority (an emergency or a local
 * alarm preempts it; quiet hours refuse it). It really sounds, so its reports say `actual`: `status: test`
 * would leave the loudspeakers out and prove nothing about them. It is marked a test by its id,
 * `speaker-test:<uuid>`, which every playback report carries as its jti, and by the `console` audit report
 * naming that id, stored before the request is submitted so it comes first in the county's order.
 */
export class SpeakerTest {
  private tone: { wav: Buffer; sha256: string } | undefined;

  constructor(private readonly options: SpeakerTestOptions) {}

  run(zone: string, user: ConsoleUser): ActionResult {
    const { options } = this;
    const audit = (subject: string, detail: string) =>
      options.report({ action: 'speaker-test', user: user.name, role: user.role, address: user.address, subject, detail });
    if (!options.zones.includes(zone)) {
      audit(zone, `refused: no zone "${zone}"`);
      return { ok: false, reason: `no zone "${zone}"` };
    }
    let content: PlayRequest['content'];
    try {
      content = this.toneContent();
    } catch (error) {
      options.logger.error({ err: errorText(error) }, 'test tone could not be written to the media library');
      audit(zone, `refused: the test tone could not be written: ${errorText(error)}`);
      return { ok: false, reason: `the test tone could not be written: ${errorText(error)}` };
    }
    const id = `${speakerTestPrefix}${uuidv7(options.now())}`;
    const request: PlayRequest = { id, priority: 'announcement', status: 'actual', zones: [zone], content, chime: false, repeat: 1, origin: 'local' };
    const refused = options.refusal(request);
    if (refused !== undefined) {
      audit(id, `refused: ${refused}; zone ${zone}`);
      return { ok: false, reason: refused };
    }
    audit(id, `${testTone.frequencyHz / 1000} kHz tone, ${testTone.durationMs / 1000} s, zone ${zone}`);
    // Refused by the controller for a reason of its own: its `rejected` report, with this jti, tells the county.
    const refusedByController = options.submit(request);
    return refusedByController === undefined ? { ok: true, id } : { ok: false, reason: refusedByController };
  }

  /** Written when the card lacks it (or holds other bytes), fsync'd; checked again by its sha256 at play time. */
  private toneContent(): PlayRequest['content'] {
    if (this.tone === undefined) {
      const wav = toneWav(testTone.frequencyHz, testTone.durationMs, testTone.sampleRate);
      this.tone = { wav, sha256: createHash('sha256').update(wav).digest('hex') };
    }
    const path = join(this.options.library, testTone.file);
    if (!sameBytes(path, this.tone.wav)) {
      mkdirSync(join(this.options.library, 'console'), { recursive: true });
      writeFileDurably(path, this.tone.wav, { mode: 0o644 });
    }
    return { kind: 'media', file: testTone.file, sha256: this.tone.sha256 };
  }
}

function sameBytes(path: string, expected: Buffer): boolean {
  try {
    return readFileSync(path).equals(expected);
  } catch {
    return false;
  }
}
