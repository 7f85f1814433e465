// GET /events filters and times, as the docker CLI and older clients send them; hostile ones refused.
import { describe, expect, it } from 'vitest';
import { matchesEvent, parseEventFilters, parseEventTime } from '../../src/observe/event-filters.js';
import type { EventMessage } from '../../src/observe/network-events.js';

const create: EventMessage = { Type: 'network', Action: 'create', Actor: { ID: 'a'.repeat(64), Attributes: { name: 'lab', type: 'bridge' } }, scope: 'local', time: 1, timeNano: 1e9 };
const connect: EventMessage = { ...create, Action: 'connect', Actor: { ID: 'a'.repeat(64), Attributes: { container: 'c'.repeat(64), name: 'lab', type: 'bridge' } } };

describe('event filters', () => {
  it("reads the docker CLI's map form and the list form alike", () => {
    expect(parseEventFilters('{"type":{"network":true},"event":{"create":true}}')).toEqual(new Map([['type', new Set(['network'])], ['event', new Set(['create'])]]));
    expect(parseEventFilters('{"type":["network"]}')).toEqual(new Map([['type', new Set(['network'])]]));
    expect(parseEventFilters(null)).toEqual(new Map());
  });

  it.each([
    ['{"colour":["red"]}', "invalid filter 'colour'"],
    ['{"type":"network"}', "invalid filter 'type': values must be strings"],
    ['{"type":[1]}', "invalid filter 'type': values must be strings"],
    ['[]', 'invalid filter: expected a JSON object'],
    ['{', 'invalid filter:'],
  ])('refuses %s', (text, message) => {
    expect(() => parseEventFilters(text)).toThrow(message);
  });

  it('matches by type, event, network name, id or id prefix, container and driver', () => {
    const f = (t: string) => parseEventFilters(t);
    expect(matchesEvent(create, f('{"type":["network"]}'))).toBe(true);
    expect(matchesEvent(create, f('{"type":["container"]}'))).toBe(false);
    expect(matchesEvent(connect, f('{"event":["create"]}'))).toBe(false);
    expect(matchesEvent(create, f('{"network":["lab"]}'))).toBe(true);
    expect(matchesEvent(create, f('{"network":["aaaa"]}'))).toBe(true);
    expect(matchesEvent(create, f('{"network":["other"]}'))).toBe(false);
    expect(matchesEvent(connect, f(`{"container":["${'c'.repeat(64)}"]}`))).toBe(true);
    expect(matchesEvent(create, f('{"driver":["bridge"]}'))).toBe(true);
    expect(matchesEvent(create, f('{"label":["a=b"]}'))).toBe(false);
  });

  it('reads Unix seconds with nanoseconds, RFC 3339 and relative times', () => {
    expect(parseEventTime('since', '1700000000.5')).toBe(1_700_000_000_500_000_000n);
    expect(parseEventTime('since', '2026-12-01T00:00:00Z')).toBe(BigInt(Date.parse('2026-12-01T00:00:00Z')) * 1_000_000n);
    expect(parseEventTime('since', '10m', 1_000_000)).toBe(BigInt(1_000_000 - 600_000) * 1_000_000n);
    expect(parseEventTime('since', null)).toBeUndefined();
    expect(() => parseEventTime('until', 'yesterday')).toThrow('invalid value for until: "yesterday"');
  });
});
