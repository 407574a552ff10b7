/** Arithmetic and layout for the benchmark table: figures are reported, never asserted. */

/** Something is broken (an alarm lost, out of order, a process that died), not merely slow. */
export class BenchFailure extends Error {
  override name = 'BenchFailure';
}

export interface Row {
  figure: string;
  value: string;
  target: string;
  note: string;
}

/** Nearest-rank percentile (p in 0..100) of an unsorted sample; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((sum, v) => sum + v, 0) / values.length;
}

export function ms(value: number, digits = 1): string {
  return Number.isFinite(value) ? `${value.toFixed(digits)} ms` : 'n/a';
}

/** The target cell: what was asked, and whether this run met it. */
export function target(text: string, met: boolean): string {
  return `${text} ${met ? '(met)' : '(**missed**)'}`;
}

export function renderTable(rows: readonly Row[]): string {
  const escapeCell = (cell: string): string => cell.replaceAll('|', '\\|');
  const lines = ['| figure | value | target | note |', '| --- | --- | --- | --- |'];
  for (const row of rows) lines.push(`| ${[row.figure, row.value, row.target, row.note].map(escapeCell).join(' | ')} |`);
  return lines.join('\n');
}

/** A wall-clock instant with sub-millisecond resolution that two processes on one machine agree on. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}
