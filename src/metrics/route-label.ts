/**
 * The `route` label of API metrics: the path with its version prefix removed and every name
 * or id replaced by {id}, so the label's values are a small fixed set whatever clients send.
 */
const RESOURCES = new Set(['_ping', 'version', 'info', 'events', 'metrics', 'networks', 'sandboxes', 'containers', 'system']);
const VERBS = new Set(['create', 'connect', 'disconnect', 'prune', 'json', 'stats', 'drops', 'start', 'stop', 'kill', 'wait', 'rename', 'exec', 'flows', 'inspect', 'df']);

export function routeLabel(rawPath: string): string {
  const path = rawPath.replace(/\?.*$/, '').replace(/^\/v\d+\.\d+(?=\/)/, '');
  const parts = path.split('/').filter((p) => p !== '');
  if (parts.length === 0) return '/';
  if (!RESOURCES.has(parts[0])) return 'other';
  const out = [parts[0]];
  for (const p of parts.slice(1, 4)) out.push(VERBS.has(p) ? p : '{id}');
  return `/${out.join('/')}${parts.length > 4 ? '/…' : ''}`;
}
