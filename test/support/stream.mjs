// A long TCP transfer for continuity tests.
// Server: node stream.mjs serve PORT — counts bytes until the client half-closes, answers the count.
// Client: node stream.mjs send HOST PORT SECONDS — writes 64 KiB every 20 ms for SECONDS, then
// checks the server counted every byte; exits 0 only on a clean, complete transfer.
import net from 'node:net';

const [mode, a, b, c] = process.argv.slice(2);
if (mode === 'serve') {
  net
    .createServer((s) => {
      let n = 0;
      s.on('data', (d) => (n += d.length));
      s.on('end', () => s.end(`${n}\n`));
      s.on('error', () => {});
    })
    .listen(Number(a), () => console.log('ready'));
} else {
  const chunk = Buffer.alloc(64 * 1024, 7);
  const s = net.connect({ host: a, port: Number(b) });
  let sent = 0;
  let answer = '';
  s.on('error', (e) => {
    console.error(`transfer failed after ${sent} bytes: ${e.code ?? e.message}`);
    process.exit(1);
  });
  s.on('data', (d) => (answer += d));
  s.on('end', () => {
    const got = Number(answer.trim());
    console.log(JSON.stringify({ sent, received: got }));
    process.exit(got === sent ? 0 : 2);
  });
  s.on('connect', () => {
    const until = Date.now() + Number(c) * 1000;
    const timer = setInterval(() => {
      if (Date.now() >= until) {
        clearInterval(timer);
        s.end();
        return;
      }
      s.write(chunk);
      sent += chunk.length;
    }, 20);
  });
}
