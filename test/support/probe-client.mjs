// Connects once and prints what the echo server answered; exit 1 on timeout or refusal.
// Usage: node probe-client.mjs tcp|udp HOST PORT [TIMEOUT_MS] [LOCAL_PORT]
// LOCAL_PORT fixes the source port, so a test knows the exact address the server must see.
import net from 'node:net';
import dgram from 'node:dgram';

const [proto, host, portText, timeoutText = '1500', localText = '0'] = process.argv.slice(2);
const localPort = Number(localText);
const port = Number(portText);
const timeout = Number(timeoutText);
const fail = (why) => {
  console.error(why);
  process.exit(1);
};
setTimeout(() => fail('timeout'), timeout).unref();
if (proto === 'tcp') {
  const s = net.connect({ host, port, ...(localPort ? { localPort } : {}) });
  let data = '';
  s.on('data', (d) => (data += d));
  s.on('end', () => {
    process.stdout.write(data);
    process.exit(0);
  });
  s.on('error', (e) => fail(e.code ?? e.message));
} else {
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  sock.on('message', (m) => {
    process.stdout.write(m.toString());
    process.exit(0);
  });
  sock.on('error', (e) => fail(e.code ?? e.message));
  const send = () => sock.send('x', port, host);
  sock.bind(localPort, () => {
    send();
    setInterval(send, 300).unref();
  });
}
