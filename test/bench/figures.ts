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
