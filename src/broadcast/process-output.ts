import { spawn as nodeSpawn } from 'node:child_process';
import type { BroadcastConfig } from '../config/schema.ts';
import type { Logger } from '../platform/logger.ts';
import { launchGroup, type SpawnProcess } from './process-group.ts';
import type { AudioOutput, OutputCheck } from './types.ts';

export interface ProcessOutputOptions {
  output: BroadcastConfig['output'];
  logger: Logger;
  /** SIGTERM to SIGKILL, as for the players. */
  killTimeoutMs: number;
  spawn?: SpawnProcess;
}

/**
 * Checks the output by running the configured check command (by default `aplay` writing one silent
 * sample to the device): exit 0 within `checkTimeoutMs` means the device opened. A missing card, a wrong
 * name or a device that fails on open exits non-zero with ALSA's reason on stderr, which becomes ours.
 */
export function createProcessOutput(options: ProcessOutputOptions): AudioOutput {
  const { device, check, checkTimeoutMs } = options.output;
  const spawn = options.spawn ?? nodeSpawn;
  const log = options.logger.child({ component: 'audio-output' });
  const argv = check.map((arg) => arg.split('{device}').join(device));
  const command = argv[0] ?? '';
  return {
    device,
    async check(): Promise<OutputCheck> {
      const startedAt = Date.now();
      const child = launchGroup(spawn, argv, options.killTimeoutMs);
      const guard = setTimeout(() => void child.terminate(), checkTimeoutMs);
      const end = await child.ended.finally(() => clearTimeout(guard));
      const said = end.lastStderrLine === '' ? '' : `: ${end.lastStderrLine}`;
      let result: OutputCheck;
      if (end.startError !== undefined)
        result = {
          ok: false,
          reason:
            end.startError.code === 'ENOENT'
              ? `check command not found: ${command} (is it installed?)`
              : `cannot start ${command}: ${end.startError.code ?? end.startError.message}`,
        };
      else if (end.terminated) result = { ok: false, reason: `${command} did not open the device within ${checkTimeoutMs} ms` };
      else if (end.signal !== null) result = { ok: false, reason: `${command} was killed by ${end.signal}${said}` };
      else if (end.code !== 0) result = { ok: false, reason: `${command} exited with code ${end.code ?? 'unknown'}${said}` };
      else result = { ok: true };
      log.debug({ device, ok: result.ok, durationMs: Date.now() - startedAt }, 'audio output checked');
      return result;
    },
  };
}
