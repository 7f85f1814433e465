// A tiny server for traffic tests: answers every TCP connection and UDP datagram with the
// peer's address as it sees it ("198.18.0.2:41234\n"), so tests can check NAT from both ends.
// Usage: node echo-server.mjs tcp|udp PORT[,PORT...] [HOST]
import net from 'node:net';
import dgram from 'node:dgram';

const [proto, portText, host = '0.0.0.0'] = process.argv.slice(2);
const ports = portText.split(',').map(Number);
let pending = ports.length;
const ready = () => {
  if (--pending === 0) console.log('ready');
};
for (const port of ports) {
  if (proto === 'tcp') {
    net
      .createServer((s) => {
        s.on('error', () => {});
        s.end(`${s.remoteAddress?.replace(/^::ffff:/, '')}:${s.remotePort}\n`);
      })
      .listen(port, host, ready);
  } else {
    // On "::" one socket serves both families (IPv4 peers appear as ::ffff:a.b.c.d).
    const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    sock.on('message', (_m, rinfo) => sock.send(`${rinfo.address.replace(/^::ffff:/, '')}:${rinfo.port}\n`, rinfo.port, rinfo.address));
    sock.bind(port, host, ready);
  }
}
