import { describe, expect, it } from 'vitest';
import { countyBroadcastHandlers } from '../../src/broadcast/county-requests.ts';
import { broadcastCommandSchema } from '../../src/contract/payloads.ts';
import { memoryLogger } from '../support/log-sink.ts';

describe('county broadcast handler', () => {
  it('logs each broadcast the gate let through, with its jti, priority and status', () => {
    const { logger, lines } = memoryLogger();
    const handlers = countyBroadcastHandlers({ zoneIds: ['square'], submit: () => undefined, stopPlayback: () => undefined, logger });
    const iat = 1_800_000_000;
    handlers.broadcast(
      broadcastCommandSchema.parse({
        jti: 'bcast-0007',
        iat,
        exp: iat + 600,
        aud: 'dongcun',
        cmd: 'broadcast',
        priority: 'announcement',
        status: 'exercise',
        zones: 'all',
        content: { kind: 'tts', text: '演习' },
      }),
    );
    expect(lines.filter((l) => l.msg === 'county broadcast accepted by the gate')).toEqual([
      expect.objectContaining({ jti: 'bcast-0007', priority: 'announcement', status: 'exercise' }),
    ]);
  });
});
