# Sends one hand-made VXLAN packet with an IPv6 echo request inside, under any outer source
# address (a raw socket writes the IPv4 header itself), to a VTEP:
#   python3 vxlan-forge6.py OUTER_SRC VTEP VNI INNER_SRC INNER_DST SRC_MAC DST_MAC
# Prints "sent". The receiving sandbox's own counters (Icmp6InEchos) tell whether it arrived:
# for tests of what a host accepts from the underlay over IPv6.
import socket
import struct
import sys

outer_src, vtep, vni = sys.argv[1], sys.argv[2], int(sys.argv[3])
src, dst, src_mac, dst_mac = sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s >> 16) + (s & 0xFFFF)
    return ~s & 0xFFFF


s6, d6 = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
icmp = struct.pack('!BBHHH', 128, 0, 0, 0x4243, 1) + b'bpfnet-forged-6'
pseudo = s6 + d6 + struct.pack('!I3xB', len(icmp), 58)
icmp = icmp[:2] + struct.pack('!H', csum(pseudo + icmp)) + icmp[4:]
ip6 = struct.pack('!IHBB', 0x60000000, len(icmp), 58, 64) + s6 + d6
eth = bytes.fromhex(dst_mac.replace(':', '')) + bytes.fromhex(src_mac.replace(':', '')) + b'\x86\xdd'
vxlan = struct.pack('!B3xI', 0x08, vni << 8)
payload = vxlan + eth + ip6 + icmp
# UDP checksum 0: allowed over IPv4.
udp = struct.pack('!HHHH', 4789, 4789, 8 + len(payload), 0)
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp) + len(payload), 1, 0, 64, 17, 0, socket.inet_aton(outer_src), socket.inet_aton(vtep))
ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
tx.sendto(ip + udp + payload, (vtep, 0))
print('sent')
