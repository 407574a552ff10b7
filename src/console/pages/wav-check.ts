/**
 * The check a recording from the page passes before it is stored or played: a WAV that `aplay` plays as it is
 * (RIFF/WAVE, 16-bit PCM, mono or stereo, a speech-to-CD sample rate), neither empty nor longer than allowed,
 * and whose header tells the truth about its length. The browser's encoder writes exactly this; anything
 * else reaching the route was made by something other than our page.
 */

export interface WavInfo {
  sampleRate: number;
  channels: number;
  /** Sample frames in the data chunk. */
  frames: number;
  seconds: number;
}

export type WavCheck = { ok: true; info: WavInfo } | { ok: false; reason: string };

export const wavSampleRates = { min: 8000, max: 48_000 } as const;

const formatPcm = 1;
const formatExtensible = 0xfffe;

export function checkWav(wav: Buffer, limits: { maxSeconds: number }): WavCheck {
  if (wav.length === 0) return refuse('empty: no bytes were sent');
  if (wav.length < 12 || wav.toString('latin1', 0, 4) !== 'RIFF' || wav.toString('latin1', 8, 12) !== 'WAVE')
    return refuse('not a WAV file (no RIFF/WAVE header)');
  let fmt: { format: number; channels: number; sampleRate: number; blockAlign: number; bits: number } | undefined;
  let offset = 12;
  while (offset + 8 <= wav.length) {
    const id = wav.toString('latin1', offset, offset + 4);
    const size = wav.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + size > wav.length) return refuse('truncated: the format chunk is cut short');
      let format = wav.readUInt16LE(body);
      // WAVE_FORMAT_EXTENSIBLE carries the real format in the first two bytes of its sub-format GUID.
      if (format === formatExtensible && size >= 40) format = wav.readUInt16LE(body + 24);
      fmt = {
        format,
        channels: wav.readUInt16LE(body + 2),
        sampleRate: wav.readUInt32LE(body + 4),
        blockAlign: wav.readUInt16LE(body + 12),
        bits: wav.readUInt16LE(body + 14),
      };
      const wrong = formatProblem(fmt);
      if (wrong !== undefined) return refuse(wrong);
    } else if (id === 'data') {
      if (fmt === undefined) return refuse('not a playable WAV: the data chunk comes before the format chunk');
      if (body + size > wav.length) return refuse(`truncated: the header announces ${size} bytes of sound, ${wav.length - body} arrived`);
      if (size === 0) return refuse('empty: the recording holds no sound');
      if (size % fmt.blockAlign !== 0) return refuse(`truncated: ${size} bytes of sound is not a whole number of ${fmt.blockAlign}-byte frames`);
      const frames = size / fmt.blockAlign;
      const seconds = frames / fmt.sampleRate;
      if (seconds > limits.maxSeconds) return refuse(`too long: ${seconds.toFixed(1)} s, at most ${limits.maxSeconds} s`);
      if (isSilent(wav, body, size)) return refuse('silent: every sample is zero (is the microphone muted?)');
      return { ok: true, info: { sampleRate: fmt.sampleRate, channels: fmt.channels, frames, seconds } };
    }
    // Chunks are padded to an even length.
    offset = body + size + (size % 2);
  }
  return refuse(fmt === undefined ? 'not a playable WAV: no format chunk' : 'truncated: no data chunk');
}

function formatProblem(fmt: { format: number; channels: number; sampleRate: number; blockAlign: number; bits: number }): string | undefined {
  if (fmt.format !== formatPcm) return `not PCM (format ${fmt.format}): record 16-bit PCM`;
  if (fmt.bits !== 16) return `${fmt.bits}-bit samples: record 16-bit PCM`;
  if (fmt.channels !== 1 && fmt.channels !== 2) return `${fmt.channels} channels: mono or stereo only`;
  if (fmt.sampleRate < wavSampleRates.min || fmt.sampleRate > wavSampleRates.max)
    return `sample rate ${fmt.sampleRate} Hz: ${wavSampleRates.min}–${wavSampleRates.max} Hz only`;
  if (fmt.blockAlign !== fmt.channels * 2) return `inconsistent header: ${fmt.blockAlign} bytes a frame for ${fmt.channels} channel(s) of 16 bits`;
  return undefined;
}

function isSilent(wav: Buffer, start: number, size: number): boolean {
  for (let i = start; i < start + size; i += 2) if (wav.readInt16LE(i) !== 0) return false;
  return true;
}

function refuse(reason: string): WavCheck {
  return { ok: false, reason };
}
