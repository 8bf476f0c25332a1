"""A local syslog socket (unix datagram) that reads and counts what HAProxy logs."""
import os
import socket
import sys

path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
print("READY", flush=True)
n = 0
while True:
    s.recv(65536)
    n += 1
