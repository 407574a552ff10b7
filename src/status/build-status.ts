import { buildHealth, type HealthSources } from '../county/health-reporter.ts';
import { isoWithOffset, type Now } from '../platform/time.ts';
import type { Activity } from './activity.ts';
import type { StatusDocument } from './status-document.ts';
import { readSystemFacts } from './system-facts.ts';

export interface StatusSources {
  /** The same sources the county's health report is built from, so the two never disagree. */
  health: HealthSources;
  countyUrl: string;
  linkConnected: () => boolean;
  activity: Activity;
  devices: ReadonlyArray<{ id: string; label: string; role: string }>;
  dataDir: string;
  thermalDir: string;
  now: Now;
}

export async function buildStatusDocument(sources: StatusSources): Promise<StatusDocument> {
  const system = await readSystemFacts({ dataDir: sources.dataDir, thermalDir: sources.thermalDir });
  // Read once, so that the health part and the last replies describe the same moment.
  const deviceHealth = sources.health.devices();
  const lastReplyAt = new Map(deviceHealth.map((d) => [d.id, d.lastReplyAt]));
  return {
    format: 1,
    health: buildHealth({ ...sources.health, devices: () => deviceHealth }, sources.now()),
    link: { url: withoutCredentials(sources.countyUrl), connected: sources.linkConnected(), ...sources.activity.link() },
    devices: sources.devices.map((d) => {
      const replied = lastReplyAt.get(d.id) ?? null;
      return {
        id: d.id,
        label: d.label,
        role: d.role,
        lastReplyAt: replied === null ? null : isoWithOffset(replied),
        ...sources.activity.device(d.id),
      };
    }),
    system,
  };
}

/** A url may carry `user:password@`; the status is read by whoever stands at the Pi, and pasted into tickets. */
function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url;
  }
}
