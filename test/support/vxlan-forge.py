# Sends one hand-made VXLAN packet (an ICMP echo request inside) to a VTEP and reports whether
# anything came back to this host's port 4789 within the timeout (the encapsulated echo reply):
#   python3 vxlan-forge.py VTEP VNI INNER_SRC INNER_DST DST_MAC [TIMEOUT_S]
# Prints "reply" or "none". For tests of what a host accepts from the underlay.
import socket
import struct
import sys

vtep, vni, src, dst, dst_mac = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 1.0


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


icmp = struct.pack('!BBHHH', 8, 0, 0, 0x4242, 1) + b'bpfnet-forged'
icmp = icmp[:2] + struct.pack('!H', csum(icmp)) + icmp[4:]
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0, socket.inet_aton(src), socket.inet_aton(dst))
ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
eth = bytes.fromhex(dst_mac.replace(':', '')) + bytes.fromhex('02420a5b0063') + b'\x08\x00'
vxlan = struct.pack('!B3xI', 0x08, vni << 8)

rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.bind(('0.0.0.0', 4789))
rx.settimeout(timeout)
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
tx.sendto(vxlan + eth + ip + icmp, (vtep, 4789))
try:
    data, _ = rx.recvfrom(2048)
    print('reply')
except socket.timeout:
    print('none')
