/** Sizes and durations as a county engineer reads them in a reason or a log line: "1.2 MB", "0.3 s". */

export function bytesText(bytes: number): string {
  if (bytes < 1000) return `${bytes} bytes`;
  const [unit, scale] = bytes < 1e6 ? ['kB', 1e3] : bytes < 1e9 ? ['MB', 1e6] : ['GB', 1e9];
  return `${Number((bytes / scale).toFixed(1))} ${unit}`;
}

export function secondsText(ms: number): string {
  return `${Number((Math.max(0, ms) / 1000).toFixed(1))} s`;
}
