/**
 * The frequency of a tone in a 16-bit PCM WAV (44-byte header) from the zero crossings of its sounding part,
 * past any silence at either end: enough to tell which tone a file holds (a microphone's, a test tone).
 */
export function dominantHz(wav: Buffer, rate: number): number {
  const samples = new Int16Array(wav.buffer, wav.byteOffset + 44, (wav.length - 44) / 2);
  const loud = (s: number) => Math.abs(s) > 1000;
  const first = samples.findIndex(loud);
  const last = samples.findLastIndex(loud);
  let crossings = 0;
  for (let i = first + 1; i <= last; i++) if (samples[i - 1]! < 0 !== samples[i]! < 0) crossings++;
  return crossings / 2 / ((last - first) / rate);
}
