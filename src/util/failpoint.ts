/**
 * Failpoints: named places where a test can make the daemon stop still (to kill it there)
 * or fail. Off unless BPFNET_FAILPOINTS names them: "attach:after-join=hang,x=error".
 */
const configured = new Map(
  (process.env.BPFNET_FAILPOINTS ?? '')
    .split(',')
    .filter(Boolean)
    .map((kv) => {
      const [name, action = 'hang'] = kv.split('=');
      return [name, action] as const;
    }),
);

export async function failpoint(name: string): Promise<void> {
  const action = configured.get(name);
  if (action === undefined) return;
  process.stderr.write(`failpoint ${name}: ${action}\n`);
  if (action === 'error') throw new Error(`failpoint ${name}`);
  if (action === 'hang') await new Promise(() => undefined);
}
