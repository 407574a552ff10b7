import type { Logger } from 'pino';
import type { CommandClaims, CommandGate, GateResult, VerifiedCommand } from './command-gate.ts';
import type { CommandKind } from './topics.ts';
import type { InboundCommand } from './types.ts';

/**
 * What the village does with each verified command. A record keyed by every command kind, so a kind
 * added to the gate fails to compile here until something handles it (a `switch` would drop it silently).
 * Handlers are synchronous: the gate settles broadcasts and stops in arrival order, and a handler that
 * awaited could let a stop overtake its broadcast.
 */
export type CommandHandlers = { readonly [K in CommandKind]: (claims: CommandClaims[K], source: CommandSource) => void };

/**
 * Which topic a verified command came on. A schedule needs it: the village's own topic wins over the one
 * for all villages, and `aud: "all"` is accepted on both, so the claims alone cannot tell.
 */
export interface CommandSource {
  topic: string;
  audienceTopic: 'village' | 'all';
}

export type CommandRejection = Extract<GateResult, { ok: false }> & { kind: CommandKind; topic: string };

export interface CommandRouterOptions {
  gate: CommandGate;
  handlers: CommandHandlers;
  /** Every refused message, to be reported to the county (which rate-limits its own log lines). */
  onRejected: (rejection: CommandRejection) => void;
  /** The `iat` (seconds) of every verified command: signed by the county, so time is at least that from now on. */
  onIssuedAt: (iat: number) => void;
  logger: Logger;
}

/** The uplink's `command` listener: every county→village message passes the gate first; nothing unverified is acted on. */
export function createCommandRouter(options: CommandRouterOptions): (message: InboundCommand) => void {
  const { gate, handlers, onRejected, onIssuedAt, logger } = options;
  return (message) => {
    const input = {
      kind: message.command,
      audienceTopic: message.audienceTopic,
      payload: message.payload,
      ...(message.discardedBytes === undefined ? {} : { discardedBytes: message.discardedBytes }),
    };
    gate
      .verify(input)
      .then((result) => {
        if (!result.ok) {
          onRejected({ ...result, kind: message.command, topic: message.topic });
          return;
        }
        onIssuedAt(result.command.claims.iat);
        dispatch(handlers, result.command, { topic: message.topic, audienceTopic: message.audienceTopic });
      })
      .catch((error: unknown) => logger.error({ err: error, topic: message.topic }, 'county command handler failed'));
  };
}

/** Generic over the kind, so TypeScript pairs each command's claims with its own handler without a cast. */
function dispatch<K extends CommandKind>(
  handlers: CommandHandlers,
  command: VerifiedCommand & { kind: K; claims: CommandClaims[K] },
  source: CommandSource,
): void {
  handlers[command.kind](command.claims, source);
}
