import { readdir, readFile, statfs } from 'node:fs/promises';
import { freemem, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import type { StatusDocument } from './status-document.ts';

type Temperature = StatusDocument['system']['temperatures'][number];

/**
 * `thermal_zoneN/temp` in millidegrees Celsius, with the zone's `type` (`cpu-thermal` on a Pi). A zone
 * whose sensor does not answer (some return EAGAIN or ENODATA) is left out, not reported as 0 °C.
 */
export async function readTemperatures(thermalDir: string): Promise<Temperature[]> {
  let zones: string[];
  try {
    zones = (await readdir(thermalDir)).filter((name) => /^thermal_zone\d+$/.test(name));
  } catch {
    return [];
  }
  zones.sort((a, b) => Number(a.slice(12)) - Number(b.slice(12)));
  const readings = await Promise.all(
    zones.map(async (zone): Promise<Temperature | undefined> => {
      try {
        const milli = Number((await readFile(join(thermalDir, zone, 'temp'), 'utf8')).trim());
        if (!Number.isFinite(milli)) return undefined;
        const type = await readFile(join(thermalDir, zone, 'type'), 'utf8').then(
          (t) => t.trim() || null,
          () => null,
        );
        return { zone, type, celsius: Math.round(milli / 100) / 10 };
      } catch {
        return undefined;
      }
    }),
  );
  return readings.filter((r): r is Temperature => r !== undefined);
}

export async function readSystemFacts(options: { dataDir: string; thermalDir: string }): Promise<StatusDocument['system']> {
  const [free, temperatures] = await Promise.all([
    statfs(options.dataDir).then(
      (s) => s.bavail * s.bsize,
      () => null,
    ),
    readTemperatures(options.thermalDir),
  ]);
  const load = loadavg();
  return {
    dataDir: { path: options.dataDir, freeBytes: free },
    memory: { totalBytes: totalmem(), availableBytes: freemem() },
    loadAverage: load.map((l) => Math.round(l * 100) / 100),
    temperatures,
  };
}
