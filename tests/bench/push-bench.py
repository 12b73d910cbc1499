#!/usr/bin/python3
"""push-bench: notifications per second posted over HTTP (the push module)
and delivered to online users.

Starts a mynad of the build tree (MYNA_BUILD_ROOT, default ./build) on a
scratch directory with plain-TCP c2s, an http listener, rest and push;
registers PUSH_USERS accounts in-band and logs them all in (SASL PLAIN,
bind, presence) as androidpn clients that answer each notification IQ with
a result; then posts PUSH_N notifications, each to one user (round robin),
PUSH_C requests in flight, and measures the time from the first post until
every IQ arrived at its client (and until every 201 came back); then one
broadcast ("to": "*") and the time until every online user had it.

  PUSH_USERS=200 PUSH_N=2000 PUSH_C=16 tests/bench/push-bench.py

Prints RESULT lines.  Not run by meson test."""
import asyncio
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BUILD = Path(os.environ.get('MYNA_BUILD_ROOT', ROOT / 'build'))
USERS = int(os.environ.get('PUSH_USERS', '200'))
N = int(os.environ.get('PUSH_N', '2000'))
C = int(os.environ.get('PUSH_C', '16'))
TOKEN = 'bench-token-0123456789'
TIMEOUT = 120

CONF = """[global]
data_dir = var
log_level = info
modules = roster;presence;ping;disco;auth;bind;register;rest;push
c2s_require_encryption = false
scram_iterations = 4096
max_connections_per_ip = 0
c2s_rate = 0
http_max_connections_per_ip = 0
[listener:c2s]
kind = c2s
address = 127.0.0.1
port = {c2s}
[listener:http]
kind = http
address = 127.0.0.1
port = {http}
[module:auth]
allow_plain_insecure = true
[module:register]
allow_registration = true
allow_insecure = true
min_seconds_between = 0s
[module:rest]
token = {token}
[module:push]
max_notifications = 10000000
[host:localhost]
"""

OPEN = ("<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")


def free_port():
    import socket
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Client:
    """A raw androidpn-style client: answers notification IQs, counts them."""

    def __init__(self, user):
        self.user = user
        self.buf = ''
        self.got = 0
        self.done = asyncio.Event()
        self.want = 0

    async def read_until(self, needle):
        while needle not in self.buf:
            data = await asyncio.wait_for(self.r.read(65536), TIMEOUT)
            if not data:
                raise RuntimeError('%s: closed waiting for %s: %s' % (self.user, needle, self.buf))
            self.buf += data.decode()

    async def connect(self, port):
        self.r, self.w = await asyncio.open_connection('127.0.0.1', port)
        self.w.write(OPEN.encode())
        await self.read_until('</stream:features>')

    async def register(self, port):
        await self.connect(port)
        self.w.write(("<iq type='set' id='r'><query xmlns='jabber:iq:register'><username>%s"
                      "</username><password>bench-pass</password></query></iq>"
                      % self.user).encode())
        await self.read_until("id='r'")
        self.w.close()

    async def login(self, port):
        await self.connect(port)
        b64 = base64.b64encode(('\0%s\0bench-pass' % self.user).encode()).decode()
        self.w.write(("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s"
                      "</auth>" % b64).encode())
        await self.read_until('<success')
        self.buf = ''
        self.w.write(OPEN.encode())
        await self.read_until('</stream:features>')
        self.w.write(b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                     b"<resource>bench</resource></bind></iq><presence/>")
        await self.read_until('</jid>')
        self.buf = ''

    async def pump(self):
        """Answers every notification IQ; counts them."""
        rx = re.compile(r"<iq [^>]*id='(push:[^']*)'")
        while True:
            data = await self.r.read(65536)
            if not data:
                return
            self.buf += data.decode()
            answers = []
            for m in rx.finditer(self.buf):
                answers.append("<iq type='result' to='localhost' id='%s'/>" % m.group(1))
            if answers:
                self.got += len(answers)
                self.w.write(''.join(answers).encode())
                if self.got >= self.want:
                    self.done.set()
            cut = self.buf.rfind('</iq>')
            if cut >= 0:
                self.buf = self.buf[cut + 5:]


async def http_post(port, path, body):
    r, w = await asyncio.open_connection('127.0.0.1', port)
    data = body.encode()
    w.write(('POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n'
             'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n'
             % (path, TOKEN, len(data))).encode() + data)
    answer = await asyncio.wait_for(r.read(), TIMEOUT)
    w.close()
    status = int(answer.split(b' ', 2)[1])
    if status != 201:
        raise RuntimeError('POST answered %d: %s' % (status, answer))


async def main():
    scratch = Path(tempfile.mkdtemp(prefix='push-bench-'))
    c2s, http = free_port(), free_port()
    (scratch / 'myna.conf').write_text(CONF.format(c2s=c2s, http=http, token=TOKEN))
    env = {k: v for k, v in os.environ.items() if k != 'MYNA_MODULE_PATH'}
    env['MYNA_MODULE_PATH'] = str(BUILD / 'modules')
    proc = subprocess.Popen([str(BUILD / 'core' / 'mynad'), '-c', 'myna.conf'], cwd=scratch,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    try:
        while True:
            line = proc.stderr.readline().decode()
            if not line:
                raise RuntimeError('mynad did not start')
            if 'started' in line:
                break
        # Drain mynad's log in the background.
        asyncio.get_running_loop().run_in_executor(None, lambda: proc.stderr.read())
        clients = [Client('u%05d' % i) for i in range(USERS)]
        for i in range(0, USERS, 50):
            await asyncio.gather(*(c.register(c2s) for c in clients[i:i + 50]))
        for i in range(0, USERS, 50):
            await asyncio.gather(*(c.login(c2s) for c in clients[i:i + 50]))
        for i, c in enumerate(clients):
            c.want = N // USERS + (1 if i < N % USERS else 0)
            if c.want == 0:
                c.done.set()
        pumps = [asyncio.ensure_future(c.pump()) for c in clients]
        queue = asyncio.Queue()
        for i in range(N):
            queue.put_nowait('{"to": "%s@localhost", "title": "T%d", "message": "bench message %d"}'
                             % (clients[i % USERS].user, i, i))

        async def worker():
            while not queue.empty():
                await http_post(http, '/api/v1/notifications', queue.get_nowait())

        t0 = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(C))), TIMEOUT)
        t_posted = time.monotonic() - t0
        await asyncio.wait_for(asyncio.gather(*(c.done.wait() for c in clients)), TIMEOUT)
        t_delivered = time.monotonic() - t0
        print('RESULT push-unicast users=%d notifications=%d concurrency=%d posted=%.2fs '
              '(%.0f posts/s) delivered=%.2fs (%.0f notifications/s)'
              % (USERS, N, C, t_posted, N / t_posted, t_delivered, N / t_delivered), flush=True)

        for c in clients:
            c.want = c.got + 1
            c.done.clear()
        t0 = time.monotonic()
        await http_post(http, '/api/v1/notifications',
                        '{"to": "*", "title": "All", "message": "broadcast"}')
        t_posted = time.monotonic() - t0
        await asyncio.wait_for(asyncio.gather(*(c.done.wait() for c in clients)), TIMEOUT)
        t_delivered = time.monotonic() - t0
        print('RESULT push-broadcast users=%d posted=%.3fs delivered-to-all=%.3fs (%.0f IQs/s)'
              % (USERS, t_posted, t_delivered, USERS / t_delivered), flush=True)
        for p in pumps:
            p.cancel()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if not os.environ.get('BENCH_KEEP'):
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == '__main__':
    asyncio.run(main())
