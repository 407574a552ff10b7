import type { DeviceHealth } from '../drivers/device/types.ts';
import { isoWithOffset } from '../platform/time.ts';
import type { DeviceDiagnostics } from './types.ts';

/**
 * The installer's view of each running device: the health the county gets, its label and role from the
 * config, and its last raw answer (register values or the last line) with its time.
 */
export function deviceDiagnostics(
  health: readonly DeviceHealth[],
  devices: ReadonlyArray<{ id: string; label: string; role: string }>,
): DeviceDiagnostics[] {
  const configured = new Map(devices.map((d) => [d.id, d]));
  return health.map((h) => {
    const raw = h.lastRaw ?? null;
    return {
      id: h.id,
      label: configured.get(h.id)?.label ?? h.id,
      role: configured.get(h.id)?.role ?? 'unknown',
      model: h.model,
      online: h.online,
      errors: Object.fromEntries(Object.entries(h.errors).filter((e): e is [string, number] => e[1] !== undefined)),
      lastRaw:
        raw === null
          ? null
          : {
              at: isoWithOffset(raw.at),
              ...(raw.registers === undefined ? {} : { registers: { ...raw.registers } }),
              ...(raw.line === undefined ? {} : { line: raw.line }),
            },
    };
  });
}
