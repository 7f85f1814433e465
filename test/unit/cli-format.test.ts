// Output helpers against what the docker CLI prints (expected strings taken from docker's
// formatter code and its documented output).
import { describe, expect, it } from 'vitest';
import {
  displayablePorts,
  ellipsis,
  formatG,
  goQuote,
  goTimeString,
  humanSize,
  naturalCompare,
  renderList,
  row,
  tabwrite,
  timeAgo,
  truncateId,
  type ListSpec,
} from '../../src/cli/format.js';
import { humanDuration } from '../../src/util/human-duration.js';
import { compactJson, indentJson } from '../../src/cli/json-indent.js';
import { Template, TemplateError } from '../../src/cli/template.js';

describe('tabwrite (docker table layout: minwidth 10, padding 3)', () => {
  it('pads every column but the last to its widest cell plus 3, at least 10', () => {
    const text = 'NETWORK ID\tNAME\tDRIVER\tSCOPE\n7fca4eb8c647\tbridge\tbridge\tlocal\n9f9d1a5b2c3e\thost\thost\tlocal\n';
    expect(tabwrite(text, { minWidth: 10, padding: 3 })).toBe(
      'NETWORK ID     NAME      DRIVER    SCOPE\n' +
        '7fca4eb8c647   bridge    bridge    local\n' +
        '9f9d1a5b2c3e   host      host      local\n',
    );
  });

  it('aligns only contiguous lines that have the column (Go elastic tabstops)', () => {
    const text = 'Client:\n Version:\t1\n\nServer: x\n Engine:\n  API version:\t1.50\n';
    expect(tabwrite(text, { minWidth: 20, padding: 1 })).toBe(
      'Client:\n Version:           1\n\nServer: x\n Engine:\n  API version:      1.50\n',
    );
  });

  it('counts wide characters as two columns', () => {
    expect(tabwrite('日本\tx\nab\ty\n', { minWidth: 0, padding: 1 })).toBe('日本 x\nab   y\n');
  });
});

describe('ids, commands and names', () => {
  it('truncates ids to 12 characters, dropping an algorithm prefix', () => {
    expect(truncateId('7fca4eb8c6474fc1a2b0c3d4e5f60718293a4b5c6d7e8f9012345678901234ab')).toBe('7fca4eb8c647');
    expect(truncateId('sha256:0123456789abcdef')).toBe('0123456789ab');
    expect(truncateId('short')).toBe('short');
  });

  it('ellipsises to a display width with …', () => {
    expect(ellipsis('sleep 1000', 20)).toBe('sleep 1000');
    expect(ellipsis('python3 -m http.server 8080', 20)).toBe('python3 -m http.ser…');
    expect(ellipsis('abc', 1)).toBe('a');
  });

  it('quotes commands like strconv.Quote', () => {
    expect(goQuote('sh -c "echo hi"')).toBe('"sh -c \\"echo hi\\""');
  });

  it('sorts names naturally (net2 before net10), as docker network ls', () => {
    const names = ['net10', 'net2', 'bridge', 'host', 'net02', 'none', 'Alpha'];
    expect(names.sort(naturalCompare)).toEqual(['Alpha', 'bridge', 'host', 'net2', 'net02', 'net10', 'none']);
  });
});

describe('times', () => {
  it.each([
    [500, 'Less than a second'],
    [1_000, '1 second'],
    [5_000, '5 seconds'],
    [59_999, '59 seconds'],
    [60_000, 'About a minute'],
    [119_000, 'About a minute'],
    [120_000, '2 minutes'],
    [59 * 60_000, '59 minutes'],
    [60 * 60_000, 'About an hour'],
    [89 * 60_000, 'About an hour'],
    [90 * 60_000, '2 hours'],
    [47 * 3_600_000, '47 hours'],
    [48 * 3_600_000, '2 days'],
    [14 * 86_400_000, '2 weeks'],
    [60 * 86_400_000, '2 months'],
    [2 * 365 * 86_400_000, '2 years'],
  ])('HumanDuration(%i ms) = %s', (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });

  it('prints CREATED as "... ago" from the client clock', () => {
    const now = Date.parse('2026-11-22T12:00:00Z');
    expect(timeAgo('2026-11-22T11:59:55.123456789Z', now)).toBe('5 seconds ago');
    expect(timeAgo('2026-11-22T10:00:00Z', now)).toBe('2 hours ago');
    expect(timeAgo('garbage', now)).toBe('');
  });

  it("prints Go's time.String() for CreatedAt", () => {
    expect(goTimeString('2026-11-22T06:38:18.520000000Z')).toBe('2026-11-22 06:38:18.52 +0000 UTC');
    expect(goTimeString('2026-11-22T06:38:18Z')).toBe('2026-11-22 06:38:18 +0000 UTC');
    expect(goTimeString('2026-11-22T06:38:18.5+02:00')).toBe('2026-11-22 06:38:18.5 +0200 +0200');
    expect(goTimeString(undefined)).toBe('0001-01-01 00:00:00 +0000 UTC');
  });
});

describe('sizes (go-units, decimal)', () => {
  it.each([
    [0, 3, '0B'],
    [648, 3, '648B'],
    [1234, 3, '1.23kB'],
    [1500, 3, '1.5kB'],
    [10_500_000, 3, '10.5MB'],
    [999_999, 3, '1e+03kB'],
    [1_000_000, 4, '1MB'],
  ])('%i bytes at precision %i = %s', (bytes, precision, text) => {
    expect(humanSize(bytes, precision)).toBe(text);
  });

  it("formats %g like Go's fmt", () => {
    expect(formatG(0.0000123, 3)).toBe('1.23e-05');
    expect(formatG(100, 3)).toBe('100');
  });
});

describe('ports (docker ps PORTS column)', () => {
  const tcp = (IP: string, PrivatePort: number, PublicPort: number) => ({ IP, PrivatePort, PublicPort, Type: 'tcp' });

  it('prints published ports as host->container', () => {
    expect(displayablePorts([tcp('0.0.0.0', 80, 8080)])).toBe('0.0.0.0:8080->80/tcp');
  });

  it('groups consecutive same-numbered ports into ranges', () => {
    expect(displayablePorts([tcp('0.0.0.0', 81, 81), tcp('0.0.0.0', 80, 80), tcp('0.0.0.0', 82, 82)])).toBe(
      '0.0.0.0:80-82->80-82/tcp',
    );
  });

  it('prints unpublished ports bare, IPv6 bracketed, host mappings last', () => {
    expect(
      displayablePorts([
        tcp('0.0.0.0', 80, 8080),
        { IP: '', PrivatePort: 53, PublicPort: 0, Type: 'udp' },
        tcp('::', 443, 443),
      ]),
    ).toBe('53/udp, [::]:443->443/tcp, 0.0.0.0:8080->80/tcp');
  });

  it('is empty without ports', () => {
    expect(displayablePorts([])).toBe('');
  });
});

describe('renderList (docker formatter.Context)', () => {
  interface Item {
    id: string;
    name: string;
    labels: Record<string, string>;
  }
  const spec: ListSpec<Item> = {
    table: 'table {{.ID}}\t{{.Name}}',
    headers: { ID: 'THING ID', Name: 'NAME', Labels: 'LABELS' },
    row: (i, trunc) =>
      row(
        { ID: trunc ? truncateId(i.id) : i.id, Name: i.name, Labels: Object.keys(i.labels).join(',') },
        { Label: (k) => i.labels[String(k)] ?? '' },
      ),
  };
  const items: Item[] = [
    { id: 'a'.repeat(64), name: 'one', labels: { env: 'prod' } },
    { id: 'b'.repeat(64), name: 'two', labels: {} },
  ];

  it('prints the default table with a header', () => {
    expect(renderList(items, spec, { trunc: true })).toBe(
      `THING ID       NAME\n${'a'.repeat(12)}   one\n${'b'.repeat(12)}   two\n`,
    );
  });

  it('prints only the header for an empty list', () => {
    expect(renderList([], spec, { trunc: true })).toBe('THING ID   NAME\n');
  });

  it('prints ids only with quiet, full ones without trunc', () => {
    expect(renderList(items, spec, { quiet: true, trunc: true })).toBe(`${'a'.repeat(12)}\n${'b'.repeat(12)}\n`);
    expect(renderList(items, spec, { quiet: true, trunc: false })).toBe(`${'a'.repeat(64)}\n${'b'.repeat(64)}\n`);
  });

  it('prints one JSON object of string fields per line, keys sorted, for json', () => {
    expect(renderList(items, spec, { format: 'json', trunc: true })).toBe(
      `{"ID":"${'a'.repeat(12)}","Labels":"env","Name":"one"}\n{"ID":"${'b'.repeat(12)}","Labels":"","Name":"two"}\n`,
    );
  });

  it('renders a custom template per item, without header, \\t as a tab', () => {
    expect(renderList(items, spec, { format: '{{.Name}}\\t{{.Label "env"}}', trunc: true })).toBe('one\tprod\ntwo\t\n');
  });

  it('renders a custom table with the fields headers', () => {
    expect(renderList(items, spec, { format: 'table {{.Name}}\t{{.Labels}}', trunc: true })).toBe(
      'NAME      LABELS\none       env\ntwo       \n',
    );
  });

  it('a custom format wins over quiet', () => {
    expect(renderList(items, spec, { format: '{{.Name}}', quiet: true, trunc: true })).toBe('one\ntwo\n');
  });

  it('refuses unknown fields', () => {
    expect(() => renderList(items, spec, { format: '{{.Nope}}', trunc: true })).toThrow(/map has no entry for key "Nope"/);
  });
});

describe('Template (Go text/template subset)', () => {
  const data = { Name: 'n1', IPAM: { Config: [{ Subnet: '10.0.0.0/24' }] }, Options: { 'com.docker.network.bridge.name': 'br-x' }, On: true };

  it.each([
    ['{{.Name}}', 'n1'],
    ['{{ .Name }}', 'n1'],
    ['{{json .IPAM.Config}}', '[{"Subnet":"10.0.0.0/24"}]'],
    ['{{index .Options "com.docker.network.bridge.name"}}', 'br-x'],
    ['{{.Name | upper}}', 'N1'],
    ['{{upper .Name}}-{{lower "AB"}}', 'N1-ab'],
    ['{{.On}}', 'true'],
    ['{{.IPAM.Config}}', '[map[Subnet:10.0.0.0/24]]'],
    ['a  {{- .Name -}}  b', 'an1b'],
    ['{{join (split "a,b" ",") "-"}}', 'error'],
  ])('%s -> %s', (source, expected) => {
    if (expected === 'error') {
      expect(() => Template.parse(source)).toThrow(TemplateError);
    } else {
      expect(Template.parse(source).execute(data)).toBe(expected);
    }
  });

  it('refuses control structures and unknown functions clearly', () => {
    expect(() => Template.parse('{{range .X}}{{end}}')).toThrow(/"range" .* is not supported/);
    expect(() => Template.parse('{{nope .X}}')).toThrow('template parsing error: template: :1: function "nope" not defined');
    expect(() => Template.parse('{{.Name')).toThrow(/unclosed action/);
  });
});

describe('indentJson / compactJson (Go json.Indent / json.Compact)', () => {
  it('matches JSON.stringify(x, null, 4) for ordinary documents', () => {
    const doc = { Name: 'n', Containers: {}, Labels: { a: 'b' }, Config: [], List: [1, { x: null }] };
    expect(indentJson(JSON.stringify(doc))).toBe(JSON.stringify(doc, null, 4));
  });

  it("keeps the daemon's bytes: key order, escapes, number spelling", () => {
    const raw = '{"b":1,"10":"x","9":"\\u003c","n":1.50e3}';
    expect(indentJson(raw)).toBe('{\n    "b": 1,\n    "10": "x",\n    "9": "\\u003c",\n    "n": 1.50e3\n}');
    expect(compactJson('[ {"a" : [ ] } ,\n {"b":"x y"} ]')).toBe('[{"a":[]},{"b":"x y"}]');
  });

  it('refuses invalid JSON', () => {
    expect(() => indentJson('{"a":')).toThrow();
  });
});
