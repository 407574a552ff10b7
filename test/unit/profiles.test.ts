import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProfiles, sortProfileProblems } from '../../src/drivers/profiles.ts';

function dirWith(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 've-profiles-'));
  for (const [name, content] of Object.entries(files))
    writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  return dir;
}

const good = JSON.parse(readFileSync('devices/ve-ac100-rtu.json', 'utf8')) as Record<string, unknown>;

describe('device profile loader', () => {
  it('rejects each broken file with the file and field named, and still loads the good ones', () => {
    const dir = dirWith({
      've-ac100-rtu.json': good,
      'broken-json.json': '{ "schema": 1, ',
      'outside-poll.json': {
        schema: 1,
        model: 'outside-poll',
        protocol: 'modbus',
        poll: [{ table: 'discrete-inputs', address: 0, count: 2 }],
        inputs: { button: { table: 'discrete-inputs', address: 7 } },
      },
      'bad-coil.json': {
        schema: 1,
        model: 'bad-coil',
        protocol: 'modbus',
        poll: [{ table: 'coils', address: 0, count: 8 }],
        indicator: { sent: [{ table: 'coils', address: 1, value: 2 }] },
      },
      'bit-on-coil.json': {
        schema: 1,
        model: 'bit-on-coil',
        protocol: 'modbus',
        poll: [{ table: 'coils', address: 0, count: 8 }],
        inputs: { button: { table: 'coils', address: 0, bit: 3 } },
      },
      'misnamed.json': { ...good, model: 'something-else' },
      'unknown-field.json': { ...good, model: 'unknown-field', colour: 'red' },
      'bad-line.json': { schema: 1, model: 'bad-line', protocol: 'line', line: { talker: 've', checksum: 'crc32', events: {} } },
      'latch-no-release.json': {
        schema: 1,
        model: 'latch-no-release',
        protocol: 'line',
        line: { talker: 'VE', checksum: 'xor8-hex', events: { BTN: { kind: 'input', input: 'button', active: true } }, latchReset: 'RST' },
      },
    });
    const { profiles, errors } = loadProfiles([dir]);
    expect([...profiles.keys()]).toEqual(['ve-ac100-rtu']);
    const text = errors.join('\n');
    expect(text).toMatch(/^broken-json\.json: not valid JSON/m);
    expect(text).toContain('outside-poll.json: inputs.button.address: discrete-inputs 7 is not inside any poll block');
    expect(text).toContain('bad-coil.json: indicator.sent[0].value: a coil takes 0 or 1');
    expect(text).toContain('bit-on-coil.json: inputs.button.bit: bit is only for register tables');
    expect(text).toContain('misnamed.json: model: "something-else" must equal the file name "misnamed"');
    expect(text).toMatch(/unknown-field\.json: \(root\): Unrecognized key.*colour/);
    expect(text).toContain('bad-line.json: line.talker: two to five upper-case letters');
    expect(text).toMatch(/bad-line\.json: line\.checksum: /);
    expect(text).toContain('bad-line.json: line.events: at least one event');
    expect(text).toContain(
      'latch-no-release.json: line.latchReset: a latching column needs an event for its button\'s release (kind "input", input "button", active false)',
    );
  });

  it("adds the installer's folder to the shipped one, reads only <model>.json files, and lets a later folder replace a model", () => {
    const shipped = dirWith({ 've-ac100-rtu.json': good, 'other.json': { ...good, model: 'other' } });
    const extra = dirWith({
      'other.json': { ...good, model: 'other', description: 'the site variant' },
      'site-column.json': { ...good, model: 'site-column' },
      '.site-column.json.swp': 'not json at all',
      'site-column.json~': 'not json at all',
      'README.md': '# notes',
      'half-written.json': '{ "schema": 1, "model": "half-wr',
    });
    const set = loadProfiles([shipped, extra]);
    expect([...set.profiles.keys()].sort()).toEqual(['other', 'site-column', 've-ac100-rtu']);
    expect(set.profiles.get('other')?.description).toBe('the site variant');
    expect(set.errors).toEqual([expect.stringMatching(/^half-written\.json: not valid JSON/)]);
    // Unused, so only a warning; a device that used it would make it an error.
    expect(sortProfileProblems(set, new Set(['ve-ac100-rtu']))).toEqual({ errors: [], warnings: set.errors });
    expect(sortProfileProblems(set, new Set(['half-written'])).errors).toEqual(set.errors);
  });

  it('says so when the folder cannot be read', () => {
    expect(loadProfiles(['/nonexistent/profiles']).errors[0]).toMatch(/^profilesDir: cannot read \/nonexistent\/profiles/);
  });
});
