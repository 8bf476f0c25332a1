"""Opens N idle TCP connections to HOST:PORT, prints "OPEN n" once all are open, then
holds them until stdin closes. Used by bench/se/run.sh for memory per idle connection."""
import resource
import socket
import sys

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
socks = []
for i in range(n):
    s = socket.socket()
    s.setblocking(True)
    s.connect((host, port))
    socks.append(s)
print("OPEN %d" % len(socks), flush=True)
sys.stdin.read()
