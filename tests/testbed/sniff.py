"""What crosses a hypervisor's wire on a port range: run inside a hypervisor's network namespace
(testbed.sh exec I python3 sniff.py ...), it captures the TCP payload bytes sent to ports LOW..HIGH on eth0 (an
AF_PACKET socket: no tcpdump needed) for SECONDS, or until STOPFILE exists, and writes a JSON summary to OUT:
how many bytes, the first ones, and whether QEMU's migration magic (QEVM) or a TLS record header appeared.

    python3 sniff.py LOW HIGH SECONDS OUT [STOPFILE]
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import time

ETH_P_IP = 0x0800
QEMU_MAGIC = b"QEVM"  # the first bytes of an unencrypted QEMU migration stream


def main(low, high, seconds, out, stop=None):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sock.bind(("eth0", 0))
    sock.settimeout(0.5)
    with open(out + ".ready", "w", encoding="utf-8"):
        pass
    payload, deadline = bytearray(), time.monotonic() + seconds
    first = None
    while time.monotonic() < deadline and not (stop and os.path.exists(stop)):
        try:
            frame = sock.recv(65535)
        except socket.timeout:
            continue
        ip = frame[14:]
        if len(ip) < 20 or ip[9] != socket.IPPROTO_TCP:
            continue
        tcp = ip[(ip[0] & 0x0F) * 4:]
        port = struct.unpack("!H", tcp[2:4])[0]
        data = tcp[(tcp[12] >> 4) * 4:]
        if low <= port <= high and data:
            if first is None:
                first = bytes(data[:8])
            if len(payload) < 4 * 1024 * 1024:
                payload += data
    summary = {"bytes": len(payload), "first": (first or b"").hex(), "qemu_magic": QEMU_MAGIC in payload,
               "tls_record": bool(first) and first[0] == 0x16 and first[1] == 0x03}
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(summary, handle)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None)
