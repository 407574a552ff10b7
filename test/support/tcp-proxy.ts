import { connect, createServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * A loopback TCP relay between a client and a broker, to break the network in ways a broker restart cannot:
 * cut connections without an MQTT DISCONNECT (the broker then publishes the will), or swallow the broker's
 * replies (a PUBACK that never comes).
 */
export interface TcpProxy {
  readonly url: string;
  /** Drop whatever the broker sends from now on (until `thaw`), while the client's bytes still go through. */
  freeze(): void;
  thaw(): void;
  /** Close every relayed connection at once; new ones are still accepted. */
  cutAll(): void;
  /** Close each new connection as soon as it is made, as a broker host that refuses it would (until `relay`). */
  refuse(): void;
  relay(): void;
  /** performance.now() of every connection closed by `refuse`: the client's attempts, as the network saw them. */
  readonly refused: readonly number[];
  /** Cut everything and stop accepting: clients can no longer reach the broker. */
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let frozen = false;
  let refusing = false;
  const refused: number[] = [];
  const server = createServer((downstream) => {
    if (refusing) {
      refused.push(performance.now());
      downstream.on('error', () => undefined);
      downstream.resetAndDestroy();
      return;
    }
    const upstream = connect(target);
    const pair: [Socket, Socket] = [downstream, upstream];
    pairs.add(pair);
    // The relay must not add the Nagle delay the tests are careful to avoid elsewhere.
    downstream.setNoDelay(true);
    upstream.setNoDelay(true);
    downstream.on('data', (chunk: Buffer) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => {
      if (!frozen) downstream.write(chunk);
    });
    const teardown = (): void => {
      pairs.delete(pair);
      downstream.destroy();
      upstream.destroy();
    };
    for (const socket of pair) {
      socket.on('error', teardown);
      socket.on('close', teardown);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const cutAll = (): void => {
    for (const [downstream, upstream] of [...pairs]) {
      downstream.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };
  return {
    url: `mqtt://127.0.0.1:${port}`,
    freeze: () => {
      frozen = true;
    },
    thaw: () => {
      frozen = false;
    },
    cutAll,
    refuse: () => {
      refusing = true;
    },
    relay: () => {
      refusing = false;
    },
    refused,
    async close() {
      cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
