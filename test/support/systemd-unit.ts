import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const repoRoot = new URL('../../', import.meta.url).pathname;

/**
 * The node flags production runs with: those between `node` and the script on the unit's ExecStart line,
 * so tests and the bench run the service as the Pi does and the unit stays the one place they are set.
 */
export function productionNodeFlags(): string[] {
  const unit = readFileSync(join(repoRoot, 'systemd/village-edge.service'), 'utf8');
  const execStart = /^ExecStart=(.*)$/m.exec(unit)?.[1];
  if (execStart === undefined) throw new Error('systemd/village-edge.service has no ExecStart line');
  const words = execStart.trim().split(/\s+/);
  const script = words.findIndex((w) => w.endsWith('/dist/main.js'));
  if (script < 1) throw new Error(`cannot find node and dist/main.js in ExecStart=${execStart}`);
  return words.slice(1, script);
}
