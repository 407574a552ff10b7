// Office PCs refreshing the console's status page, without a browser: run by console.ts as a child process
// of its own (`node --import tsx`), so their CPU is not the bench's. Not a test.
//
// usage: node --import tsx console-clients.ts <base url> <name> <password> <clients> <interval ms>
//   Signs each client in (a session each), prints `ready`, then every interval each client fetches the status
//   page and /api/status. On SIGTERM it prints one JSON line of figures and exits.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConsoleHttpClient } from '../support/console-http.ts';
import { percentile } from '../support/stats.ts';

const [baseUrl, name, password, clientsText, intervalText] = process.argv.slice(2);
const clients = Number(clientsText);
const intervalMs = Number(intervalText);
if (baseUrl === undefined || name === undefined || password === undefined || !(clients >= 1) || !(intervalMs >= 10)) {
  console.error('usage: console-clients <base url> <name> <password> <clients> <interval ms>');
  process.exit(2);
}

const byStatus: Record<string, number> = {};
const timesMs: number[] = [];
let errors = 0;
let running = true;

const sessions: ConsoleHttpClient[] = [];
for (let i = 0; i < clients; i++) {
  const client = new ConsoleHttpClient(baseUrl);
  const answer = await client.login(name, password);
  if (answer.status !== 303) {
    console.error(`client ${i + 1}: sign-in answered ${answer.status}`);
    process.exit(1);
  }
  sessions.push(client);
}
console.log('ready');

const loop = async (client: ConsoleHttpClient, offsetMs: number): Promise<void> => {
  // Spread over the interval, as twenty people who opened the page at different moments would be.
  await sleep(offsetMs);
  let next = performance.now();
  while (running) {
    for (const path of ['/status', '/api/status']) {
      const startedAt = performance.now();
      try {
        const answer = await client.get(path, path.startsWith('/api/') ? { accept: 'application/json' } : {});
        byStatus[`${path} ${answer.status}`] = (byStatus[`${path} ${answer.status}`] ?? 0) + 1;
        timesMs.push(performance.now() - startedAt);
      } catch {
        errors++;
      }
    }
    next += intervalMs;
    await sleep(Math.max(0, next - performance.now()));
  }
};
const loops = sessions.map((client, i) => loop(client, (i * intervalMs) / sessions.length));

process.once('SIGTERM', () => {
  running = false;
  void Promise.allSettled(loops).then(() => {
    const cpu = process.cpuUsage();
    console.log(
      JSON.stringify({
        requests: timesMs.length,
        errors,
        byStatus,
        p50Ms: percentile(timesMs, 50),
        p99Ms: percentile(timesMs, 99),
        maxMs: timesMs.length === 0 ? Number.NaN : Math.max(...timesMs),
        cpuS: (cpu.user + cpu.system) / 1e6,
      }),
    );
    process.exit(0);
  });
});
