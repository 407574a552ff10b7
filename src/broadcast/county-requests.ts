import type { Logger } from 'pino';
import type { BroadcastCommand, StopCommand } from '../contract/payloads.ts';
import type { PlayRequest } from './types.ts';

/** A verified county broadcast as the controller's request; `zones: 'all'` becomes every zone this village has. */
export function toPlayRequest(command: BroadcastCommand, zoneIds: readonly string[]): PlayRequest {
  return {
    id: command.jti,
    priority: command.priority,
    ...(command.level === undefined ? {} : { level: command.level }),
    status: command.status,
    zones: command.zones === 'all' ? zoneIds : command.zones,
    content: command.content,
    chime: command.chime,
    repeat: command.repeat,
    expiresAt: command.exp * 1000,
    origin: 'county',
  };
}

/** The broadcast side's handlers for the county's verified `broadcast` and `stop` commands. */
export function countyBroadcastHandlers(options: {
  zoneIds: readonly string[];
  /** The durable path: journalled first, so a restart in the middle resumes or reports it. */
  submit: (request: PlayRequest) => void;
  stopPlayback: (target: { requestId: string } | 'all', reason: string) => void;
  logger: Logger;
}): { broadcast: (command: BroadcastCommand) => void; stop: (command: StopCommand) => void } {
  return {
    broadcast: (command) => {
      options.logger.info({ jti: command.jti, priority: command.priority, status: command.status }, 'county broadcast accepted by the gate');
      options.submit(toPlayRequest(command, options.zoneIds));
    },
    stop: (command) => {
      const { target } = command;
      options.stopPlayback(target === 'all' ? 'all' : { requestId: target.jti }, `stopped by the county (${command.jti})`);
    },
  };
}
