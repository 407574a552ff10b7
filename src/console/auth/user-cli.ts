import { existsSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { choiceFlag, parseFlags, UsageError } from '../../cli/args.ts';
import { printHelp } from '../../cli/help.ts';
import { readConfigFile } from '../../config/load.ts';
import { errorText } from '../../platform/error-text.ts';
import { consoleRoles } from '../types.ts';
import { AccountsFileError, accountWith, hashPassword, readAccounts, userNameSchema, writeAccounts } from './accounts.ts';

const defaultConfigPath = '/etc/village-edge/config.json';
const minPasswordLength = 8;

/**
 * `village-edge user add|passwd|remove|list`: the console's accounts, in the file beside the config. There is
 * no default account and no password on the command line (it would stay in the shell's history and `ps`):
 * the password is asked for, twice, without echo; piped in (one line, for provisioning scripts) when stdin is
 * not a terminal. The running service reads the file at each login, so no restart is needed.
 */
export async function userCommand(args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  if (verb === undefined || verb === '--help' || verb === '-h') return printHelp('user');
  const { values, positionals } = parseFlags(`user ${verb}`, rest, { config: { type: 'string' }, role: { type: 'string' } }, true);
  if (values.help) return printHelp('user');
  const configPath = values.config ?? defaultConfigPath;
  const loaded = readConfigFile(configPath);
  if (!loaded.ok) {
    console.error(
      `user: ${loaded.errors[0] ?? configPath}${loaded.errors.length > 1 ? ` (and ${loaded.errors.length - 1} more: check-config ${configPath})` : ''}`,
    );
    return 1;
  }
  const path = loaded.config.console.usersFile;
  const owner = serviceOwner(loaded.config.dataDir);
  try {
    const accounts = readAccounts(path);
    switch (verb) {
      case 'list': {
        if (positionals.length > 0) throw new UsageError('user list: takes no names (see user --help)');
        if (accounts.users.length === 0) console.log(`no accounts in ${path} (add one: village-edge user add NAME --role official)`);
        for (const user of accounts.users) console.log(`${user.name}\t${user.role}\tsince ${user.createdAt}`);
        return 0;
      }
      case 'add':
      case 'passwd': {
        const name = oneName(verb, positionals);
        const existing = accounts.users.find((u) => u.name === name);
        if (verb === 'add' && existing !== undefined) {
          console.error(`user add: "${name}" exists already (change its password with: village-edge user passwd ${name})`);
          return 1;
        }
        if (verb === 'passwd' && existing === undefined) {
          console.error(`user passwd: no user "${name}" in ${path}`);
          return 1;
        }
        if (verb === 'add' && values.role === undefined) throw new UsageError('user add: --role official|installer is required (see user --help)');
        const role = values.role === undefined ? existing!.role : choiceFlag(`user ${verb}`, 'role', values.role, consoleRoles);
        const password = await askPassword(name);
        if (password === undefined) return 1;
        const account = accountWith(name, role, await hashPassword(password));
        writeAccounts(path, { format: 1, users: [...accounts.users.filter((u) => u.name !== name), account] }, owner);
        console.log(`${verb === 'add' ? 'added' : 'changed the password of'} ${name} (${role}) in ${path}`);
        return 0;
      }
      case 'remove': {
        const name = oneName(verb, positionals);
        if (!accounts.users.some((u) => u.name === name)) {
          console.error(`user remove: no user "${name}" in ${path}`);
          return 1;
        }
        writeAccounts(path, { format: 1, users: accounts.users.filter((u) => u.name !== name) }, owner);
        console.log(`removed ${name} from ${path} (a page already open is signed out at its next request)`);
        return 0;
      }
      default:
        throw new UsageError(`user: unknown command ${JSON.stringify(verb)}: add, passwd, remove or list (see user --help)`);
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    console.error(`user: ${error instanceof AccountsFileError ? error.message : `${path}: ${errorText(error)}`}`);
    return 1;
  }
}

/**
 * Root (sudo) writes the file for the service, which runs as its own user and must read it: the file goes to
 * whoever owns the data directory (the package's StateDirectory, owned by the service's user).
 */
function serviceOwner(dataDir: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0 || !existsSync(dataDir)) return undefined;
  const { uid, gid } = statSync(dataDir);
  return { uid, gid };
}

function oneName(verb: string, positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError(`user ${verb}: give one NAME (see user --help)`);
  const parsed = userNameSchema.safeParse(positionals[0]);
  if (!parsed.success)
    throw new UsageError(`user ${verb}: NAME ${JSON.stringify(positionals[0])}: ${parsed.error.issues[0]?.message ?? 'not a valid name'}`);
  return parsed.data;
}

/** Twice without echo on a terminal; one line from a pipe. Undefined (with the reason printed) when unusable. */
async function askPassword(name: string): Promise<string | undefined> {
  let first: string;
  let again: string | undefined;
  if (process.stdin.isTTY) {
    const terminal = new HiddenInput(process.stdin);
    try {
      first = await terminal.line(`password for ${name}: `);
      again = first.length < minPasswordLength ? first : await terminal.line('again: ');
    } finally {
      terminal.close();
    }
  } else first = (await readLines(1))[0] ?? '';
  if (first.length < minPasswordLength) {
    console.error(`user: the password must have at least ${minPasswordLength} characters`);
    return undefined;
  }
  if (again !== undefined && again !== first) {
    console.error('user: the two passwords differ; nothing changed');
    return undefined;
  }
  return first;
}

function readLines(count: number): Promise<string[]> {
  return new Promise((resolve) => {
    const lines: string[] = [];
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (line) => {
      lines.push(line);
      if (lines.length >= count) rl.close();
    });
    rl.on('close', () => resolve(lines));
  });
}

/**
 * The terminal in raw mode, so nothing typed is shown, read a line at a time. What arrives in one chunk (a
 * pasted password and Enter, typed ahead of the second prompt) is kept for the next line, not lost.
 */
class HiddenInput {
  private typed = '';
  private lastWasReturn = false;
  private waiting: ((line: string) => void) | undefined;
  private readonly onData = (chunk: string) => {
    for (const ch of chunk) {
      if (ch === '\u0003') {
        this.close();
        process.stderr.write('\n');
        process.exit(130);
      }
      // Enter is CR in raw mode; a LF after it (CR LF) is the same end of line, a LF alone or Ctrl-D ends one too.
      const skip = ch === '\n' && this.lastWasReturn;
      this.lastWasReturn = ch === '\r';
      if (skip) continue;
      if (ch === '\u007f' || ch === '\b') this.typed = this.typed.slice(0, -1);
      else this.typed += ch === '\n' || ch === '\u0004' ? '\r' : ch;
    }
    this.deliver();
  };

  constructor(private readonly stdin: NodeJS.ReadStream) {
    stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    stdin.on('data', this.onData);
    stdin.resume();
  }

  line(prompt: string): Promise<string> {
    process.stderr.write(prompt);
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.deliver();
    });
  }

  close(): void {
    this.stdin.off('data', this.onData);
    this.stdin.setRawMode(false);
    this.stdin.pause();
  }

  private deliver(): void {
    const end = this.typed.indexOf('\r');
    if (end === -1 || this.waiting === undefined) return;
    const line = this.typed.slice(0, end);
    this.typed = this.typed.slice(end + 1);
    const resolve = this.waiting;
    this.waiting = undefined;
    process.stderr.write('\n');
    resolve(line);
  }
}
