import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../support/broker.ts';
import { BenchFailure } from './figures.ts';
import type { Teardown } from './teardown.ts';

/**
 * The reference the issue measured the alarm path against, run on the same line in the same bench:
 * Node-RED with node-red-contrib-modbus polling one column every 100 ms and publishing each rising edge of
 * its button to MQTT (QoS 1), nothing stored. Installed from the npm registry into a cache folder on first
 * use (pure JavaScript; serialport brings its prebuilt binding in its package), never into the project.
 */
export const NODE_RED = { 'node-red': '4.1.8', 'node-red-contrib-modbus': '5.23.3' } as const;
export const NODE_RED_TOPIC = 'bench/node-red/alarm';

async function installNodeRed(progress: (text: string) => void): Promise<string> {
  const dir = join(tmpdir(), `ve-bench-node-red-${NODE_RED['node-red']}-${NODE_RED['node-red-contrib-modbus']}`);
  const red = join(dir, 'node_modules', 'node-red', 'red.js');
  if (existsSync(red)) return red;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 've-bench-node-red', private: true }));
  progress(`node-red: npm install node-red@${NODE_RED['node-red']} node-red-contrib-modbus@${NODE_RED['node-red-contrib-modbus']} into ${dir}`);
  await promisify(execFile)(
    'npm',
    ['install', '--no-audit', '--no-fund', ...Object.entries(NODE_RED).map(([name, version]) => `${name}@${version}`)],
    { cwd: dir, timeout: 300_000 },
  ).catch((error: { stderr?: string; message?: string }) => {
    throw new BenchFailure(`could not install Node-RED for the reference row: ${(error.stderr ?? error.message ?? '').trim().slice(-500)}`);
  });
  return red;
}

/** Node-RED polling unit 1 on `path` (discrete inputs 0-1, 100 ms) and publishing button edges to `brokerPort`. */
export async function startNodeRed(options: {
  path: string;
  brokerPort: number;
  teardown: Teardown;
  progress: (text: string) => void;
}): Promise<{ output(): string }> {
  const red = await installNodeRed(options.progress);
  const userDir = mkdtempSync(join(tmpdir(), 've-bench-node-red-user-'));
  const flows = [
    { id: 'flow-tab', type: 'tab', label: 'alarm relay' },
    {
      id: 'rtu-client',
      type: 'modbus-client',
      name: 'rs485',
      clienttype: 'simpleser',
      bufferCommands: true,
      stateLogEnabled: false,
      queueLogEnabled: false,
      failureLogEnabled: false,
      serialPort: options.path,
      serialType: 'RTU',
      serialBaudrate: '9600',
      serialDatabits: '8',
      serialStopbits: '1',
      serialParity: 'none',
      serialConnectionDelay: '100',
      serialAsciiResponseStartDelimiter: '0x3A',
      unit_id: '1',
      commandDelay: '1',
      clientTimeout: '250',
      reconnectOnTimeout: true,
      reconnectTimeout: '2000',
      parallelUnitIdsAllowed: true,
      showErrors: false,
      showWarnings: true,
      showLogs: false,
    },
    {
      id: 'poll',
      type: 'modbus-read',
      z: 'flow-tab',
      name: 'column-1',
      topic: '',
      showStatusActivities: false,
      logIOActivities: false,
      showErrors: false,
      showWarnings: false,
      unitid: '1',
      dataType: 'Input',
      adr: '0',
      quantity: '2',
      rate: '100',
      rateUnit: 'ms',
      delayOnStart: false,
      startDelayTime: '',
      server: 'rtu-client',
      useIOFile: false,
      ioFile: '',
      useIOForPayload: false,
      emptyMsgOnFail: false,
      wires: [['edge'], []],
    },
    {
      id: 'edge',
      type: 'function',
      z: 'flow-tab',
      name: 'button edge',
      func: [
        'const down = msg.payload[0] === true || msg.payload[0] === 1;',
        "const was = context.get('down') === true;",
        "context.set('down', down);",
        'if (!down || was) return null;',
        "const n = (context.get('n') || 0) + 1;",
        "context.set('n', n);",
        `return { topic: '${NODE_RED_TOPIC}', payload: JSON.stringify({ terminal: 'column-1', n, at: Date.now() }) };`,
      ].join('\n'),
      outputs: 1,
      wires: [['publish']],
    },
    {
      id: 'publish',
      type: 'mqtt out',
      z: 'flow-tab',
      name: 'to the county',
      topic: '',
      qos: '1',
      retain: 'false',
      broker: 'county-broker',
      wires: [],
    },
    // Ids differ from every property value: Node-RED reads a config node's value that equals a node id as a reference.
    {
      id: 'county-broker',
      type: 'mqtt-broker',
      name: 'broker',
      broker: '127.0.0.1',
      port: String(options.brokerPort),
      clientid: '',
      usetls: false,
      protocolVersion: '4',
      keepalive: '60',
      cleansession: true,
      autoConnect: true,
    },
  ];
  writeFileSync(join(userDir, 'flows.json'), JSON.stringify(flows));
  const uiPort = await freePort();
  writeFileSync(
    join(userDir, 'settings.js'),
    `module.exports = { uiPort: ${uiPort}, uiHost: '127.0.0.1', httpAdminRoot: false, httpNodeRoot: false, flowFile: 'flows.json', credentialSecret: false, logging: { console: { level: 'info' } } };\n`,
  );
  const child = spawn(process.execPath, [red, '--userDir', userDir, '--settings', join(userDir, 'settings.js')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (output = (output + text).slice(-20_000)));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (output = (output + text).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  options.teardown.add('Node-RED', async () => {
    child.kill('SIGTERM');
    await exited;
  });
  const deadline = Date.now() + 60_000;
  while (!/Started flows/.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new BenchFailure(`Node-RED did not start its flows: ${output.slice(-1500)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { output: () => output };
}
