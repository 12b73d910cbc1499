"""test_support: what the interop tests of libmyna-client share.

- Mynad: a real mynad on a temporary data directory, a free c2s port on
  127.0.0.1 and an http listener (the push module's REST API), written
  like tests/integration/mynad-harness.h's mynad_prepare; its log is read
  by a thread and waited on with a bound.
- Prosody: a private Prosody (`prosody --config FILE -F`) on free ports.
- Cli: one `myna-client` process; its JSON lines are read from the pipe
  with select() and a deadline (never a sleep).
- Steps: runs named checks in order, prints ok / not ok lines and, after
  a failure, the logs that explain it.

Every wait is bounded by TIMEOUT seconds (MYNA_CLIENT_TEST_TIMEOUT,
default 20).  MYNA_CLIENT_TEST_VERBOSE=1 echoes mynad's log and the
CLI's stderr (the CLI runs with -v then).
"""
import ctypes
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

SKIP = 77
TIMEOUT = float(os.environ.get('MYNA_CLIENT_TEST_TIMEOUT', '20'))
VERBOSE = bool(os.environ.get('MYNA_CLIENT_TEST_VERBOSE'))
BUILD_ROOT = Path(os.environ.get('MYNA_BUILD_ROOT', Path(__file__).resolve().parents[2] / 'build'))

TOKEN = 'client-interop-token-0123456789'
API_KEY = 'client-interop-key'
MODULES = 'auth;bind;roster;presence;register;sm;ping;disco;offline;rest;push'


class Failed(Exception):
    """A check did not hold; the text says which and why."""


class Skipped(Exception):
    """A check cannot run here, or is a known failure (text: "known: …")."""


def check(cond, what):
    if not cond:
        raise Failed(what)


def diag(text):
    for line in str(text).splitlines():
        print('# ' + line, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _die_with_parent():
    # A child started here dies with the test, whatever happens to it.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class LogReader:
    """Reads a child's stderr line by line in a thread; waits for lines."""

    def __init__(self, stream, prefix):
        self.lines = []
        self.cond = threading.Condition()
        self.prefix = prefix
        self.ended = False
        self.thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.thread.start()

    def _run(self, stream):
        for raw in stream:
            line = raw.decode('utf-8', 'replace').rstrip('\n')
            if VERBOSE:
                print('# %s| %s' % (self.prefix, line), flush=True)
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.ended = True
            self.cond.notify_all()

    def wait(self, pattern, since=0, timeout=None):
        """The first line (index >= @since) matching @pattern, or None when
        the time is up or the stream ended."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + (timeout or TIMEOUT)
        i = since
        with self.cond:
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i]):
                        return self.lines[i]
                    i += 1
                left = deadline - time.monotonic()
                if self.ended or left <= 0:
                    return None
                self.cond.wait(left)

    def mark(self):
        with self.cond:
            return len(self.lines)

    def tail(self, n=80):
        with self.cond:
            return self.lines[-n:]


class Mynad:
    """A real mynad: temp data dir, c2s on a free port, http on port 0."""

    def __init__(self, extra_modules=''):
        self.bin = BUILD_ROOT / 'core' / 'mynad'
        self.dir = Path(tempfile.mkdtemp(prefix='myna-client-interop-'))
        self.data_dir = self.dir / 'data'
        self.data_dir.mkdir()
        self.conf = self.dir / 'myna.conf'
        self.port = free_port()
        self.http_port = None
        self.proc = None
        self.log = None
        self.conf.write_text(
            '[global]\n'
            'data_dir = %s\n'
            'log_level = debug\n'
            'c2s_require_encryption = false\n'
            'scram_iterations = 4096\n'
            'modules = %s\n'
            '[module:register]\nallow_registration = true\nmin_seconds_between = 0s\n'
            '[module:rest]\ntoken = %s\n'
            '[module:push]\napi_key = %s\n'
            '[listener:c2s]\naddress = 127.0.0.1\nport = %d\n'
            '[listener:http]\nkind = http\naddress = 127.0.0.1\nport = 0\n'
            '[host:localhost]\n' % (self.data_dir, MODULES + extra_modules, TOKEN, API_KEY,
                                     self.port))

    @property
    def certificate(self):
        """The self-signed certificate mynad made for localhost."""
        return self.data_dir / 'certs' / 'localhost.crt'

    def start(self):
        self.proc = subprocess.Popen([str(self.bin), '-c', str(self.conf)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, cwd=str(self.dir),
                                     preexec_fn=_die_with_parent)
        self.log = LogReader(self.proc.stderr, 'mynad')
        if self.log.wait(r'\bstarted\b') is None:
            raise Failed('mynad did not start (exit %s):\n%s'
                         % (self.proc.poll(), '\n'.join(self.log.tail())))
        line = self.log.wait(r'listening for http on 127\.0\.0\.1 port [0-9]+')
        check(line is not None, 'mynad opened no http listener')
        self.http_port = int(re.search(r'port ([0-9]+)', line).group(1))

    def stop(self):
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            status = proc.wait()
        self.log.thread.join(timeout=5)
        return status

    def restart(self):
        status = self.stop()
        check(status == 0, 'mynad stopped with status %s for the restart' % status)
        self.start()

    def http(self, method, path, body=None):
        """(status, JSON answer) of one request to the REST API."""
        req = urllib.request.Request('http://127.0.0.1:%d%s' % (self.http_port, path),
                                     method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={'Authorization': 'Bearer ' + TOKEN,
                                              'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
                return r.status, json.loads(r.read() or b'null')
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b'null')

    def notify(self, to, title, message, uri):
        """Posts an androidpn notification; returns its id."""
        status, answer = self.http('POST', '/api/v1/notifications',
                                   {'to': to, 'title': title, 'message': message, 'uri': uri})
        check(status == 201, 'POST /api/v1/notifications: %s %s' % (status, answer))
        return answer['id']

    def notification_states(self, note_id):
        status, answer = self.http('GET', '/api/v1/notifications/' + note_id)
        check(status == 200, 'GET /api/v1/notifications/%s: %s %s' % (note_id, status, answer))
        return {r['jid']: r['state'] for r in answer['recipients']}

    def cleanup(self):
        try:
            self.stop()
        finally:
            if not os.environ.get('MYNA_CLIENT_TEST_KEEP'):
                shutil.rmtree(self.dir, ignore_errors=True)


PROSODY_CONFIG = '''-- written by tests/client/test_support.py
run_as_root = %(root)s
daemonize = false
pidfile = "%(dir)s/prosody.pid"
data_path = "%(dir)s/data"
log = { debug = "%(dir)s/prosody.log" }
plugin_paths = {}
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { %(port)d }
c2s_direct_tls_ports = {}
s2s_ports = {}
component_ports = {}
http_ports = {}
https_ports = {}
modules_enabled = {
  "roster"; "saslauth"; "disco"; "ping"; "register"; "presence"; "smacks"; "offline";
}
modules_disabled = { "s2s"; "tls"; "mam"; "carbons"; "csi_simple"; "limits"; "posix"; }
authentication = "internal_hashed"
default_iteration_count = 4096
storage = "internal"
c2s_require_encryption = false
s2s_require_encryption = false
allow_registration = true
min_seconds_between_registrations = 0
limits = {}
VirtualHost "localhost"
'''


class Prosody:
    """A private Prosody on a free c2s port and a temp data dir (no TLS:
    the client connects with tls = none on loopback)."""

    def __init__(self):
        self.bin = shutil.which('prosody')
        self.dir = Path(tempfile.mkdtemp(prefix='myna-client-prosody-'))
        (self.dir / 'data').mkdir()
        self.port = free_port()
        self.conf = self.dir / 'prosody.cfg.lua'
        self.conf.write_text(PROSODY_CONFIG % {'dir': self.dir, 'port': self.port,
                                               'root': 'true' if os.geteuid() == 0 else 'false'})
        self.proc = None
        self.log = None

    def start(self):
        self.proc = subprocess.Popen([self.bin, '--config', str(self.conf), '-F'],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=str(self.dir),
                                     preexec_fn=_die_with_parent)
        self.log = LogReader(self.proc.stdout, 'prosody')
        # Ready when the port accepts connections (each try is bounded by
        # the connect itself; the loop by the deadline).
        deadline = time.monotonic() + TIMEOUT
        while True:
            check(self.proc.poll() is None, 'prosody exited with %s:\n%s'
                  % (self.proc.returncode, self.logs()))
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise Failed('prosody does not listen on %d:\n%s' % (self.port, self.logs()))
                # Wait for Prosody's output (or 0.1 s) before the next try.
                self.log.wait(r'.', since=self.log.mark(), timeout=0.1)

    def logs(self, n=60):
        text = '\n'.join(self.log.tail(n)) if self.log else ''
        f = self.dir / 'prosody.log'
        if f.exists():
            text += '\n' + '\n'.join(f.read_text(errors='replace').splitlines()[-n:])
        return text

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not os.environ.get('MYNA_CLIENT_TEST_KEEP'):
            shutil.rmtree(self.dir, ignore_errors=True)


def account_file(path, jid, password, port, store, *, tls='none', register=None, extra=None):
    """Writes a myna-client account file (GKeyFile, group [account])."""
    lines = ['[account]', 'jid = %s' % jid]
    if password is not None:
        lines.append('password = %s' % password)
    lines += ['server = 127.0.0.1', 'port = %d' % port, 'tls = %s' % tls, 'store = %s' % store,
              'heartbeat = 30']
    if register is not None:
        lines.append('register = %s' % ('true' if register else 'false'))
    for k, v in (extra or {}).items():
        lines.append('%s = %s' % (k, v))
    Path(path).write_text('\n'.join(lines) + '\n')
    return path


class Cli:
    """One myna-client process: JSON lines on stdout read through select()
    with a deadline; stderr goes to a file (diagnostics)."""

    def __init__(self, binary, account, *args, workdir, stdin=False, name='cli'):
        self.name = name
        self.err_path = Path(workdir) / ('%s-%d.stderr' % (name, id(self)))
        self.err = open(self.err_path, 'wb')
        # -v: the library's debug log goes to the stderr file (printed on failure).
        argv = [binary, '-a', str(account), '-v'] + list(args)
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.err,
                                     preexec_fn=_die_with_parent)
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buf = b''
        self.lines = []        # every JSON object printed, in order
        self.raw = []          # every stdout line as text
        self.eof = False
        self.started = time.monotonic()

    def _pump(self, timeout):
        """Reads what is there within @timeout seconds; False at EOF."""
        if self.eof:
            return False
        r, _, _ = select.select([self.fd], [], [], max(0, timeout))
        if not r:
            return True
        chunk = os.read(self.fd, 65536)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        while b'\n' in self.buf:
            line, self.buf = self.buf.split(b'\n', 1)
            text = line.decode('utf-8', 'replace')
            self.raw.append(text)
            if VERBOSE:
                print('# %s> %s' % (self.name, text), flush=True)
            try:
                obj = json.loads(text)
            except ValueError:
                obj = {'type': '<not JSON>', 'text': text}
            self.lines.append(obj)
        return True

    def expect(self, pred, what, timeout=None, start=0):
        """The first JSON object (index >= @start) satisfying @pred;
        fails after @timeout seconds or at EOF.  Returns (index, object)."""
        deadline = time.monotonic() + (timeout or TIMEOUT)
        i = start
        while True:
            while i < len(self.lines):
                obj = self.lines[i]
                try:
                    if pred(obj):
                        return i, obj
                except (KeyError, TypeError):
                    pass
                i += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed('%s: no %s within %.0fs; it printed: %s'
                             % (self.name, what, timeout or TIMEOUT, self.raw[-20:]))
            if not self._pump(left):
                raise Failed('%s: exited (%s) before %s; it printed: %s'
                             % (self.name, self.proc.poll(), what, self.raw[-20:]))

    def drain(self, timeout=0):
        """Reads whatever arrives within @timeout seconds (for a check that
        nothing more comes: a message printed twice)."""
        deadline = time.monotonic() + timeout
        while self._pump(deadline - time.monotonic()) and time.monotonic() < deadline:
            pass
        self._pump(0)

    def write(self, obj_or_text):
        text = obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text)
        self.proc.stdin.write((text + '\n').encode())
        self.proc.stdin.flush()

    def close_stdin(self):
        self.proc.stdin.close()

    def wait_exit(self, timeout=None):
        """Reads stdout until EOF and waits for the exit; returns the status."""
        deadline = time.monotonic() + (timeout or TIMEOUT)
        while self._pump(deadline - time.monotonic()):
            if time.monotonic() >= deadline:
                self.proc.kill()
                self.proc.wait()
                raise Failed('%s: still running after %.0fs; printed %s'
                             % (self.name, timeout or TIMEOUT, self.raw[-20:]))
        try:
            return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failed('%s: closed stdout but did not exit in time' % self.name)

    def stop(self, sig=signal.SIGTERM, timeout=None):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait_exit(timeout)

    def stderr(self, n=40):
        self.err.flush()
        try:
            return '\n'.join(self.err_path.read_text(errors='replace').splitlines()[-n:])
        except OSError:
            return ''

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.err.close()


def run_cli(binary, account, *args, workdir, timeout=None, name='cli'):
    """Runs one short myna-client command; returns (status, JSON lines,
    stderr text)."""
    c = Cli(binary, account, *args, workdir=workdir, name=name)
    try:
        status = c.wait_exit(timeout)
        return status, c.lines, c.stderr(200)
    finally:
        c.kill()


class Steps:
    """Runs checks in order; prints "ok N - name" / "not ok N - name" (and
    "ok N - name # SKIP why").  After a failure the rest still run only
    if they don't depend on it (each step says so with needs_ok)."""

    def __init__(self, on_fail=None):
        self.n = 0
        self.failed = []
        self.skipped = []
        self.on_fail = on_fail

    def run(self, name, fn, needs_ok=True):
        self.n += 1
        if needs_ok and self.failed:
            print('ok %d - %s # SKIP an earlier step failed' % (self.n, name), flush=True)
            return None
        t0 = time.monotonic()
        try:
            note = fn()
        except Skipped as e:
            self.skipped.append((name, str(e)))
            print('ok %d - %s # SKIP %s' % (self.n, name, e), flush=True)
            return None
        except Failed as e:
            self._fail(name, str(e))
            return None
        except Exception as e:
            self._fail(name, '%s: %s\n%s' % (type(e).__name__, e, traceback.format_exc()))
            return None
        print('ok %d - %s (%.2fs)%s' % (self.n, name, time.monotonic() - t0,
                                         ' - %s' % note if note else ''), flush=True)
        return note

    def _fail(self, name, why):
        self.failed.append(name)
        print('not ok %d - %s' % (self.n, name), flush=True)
        diag('FAILED: %s: %s' % (name, why))
        if self.on_fail is not None:
            try:
                self.on_fail()
            except Exception as e:
                diag('(logs: %s)' % e)

    def status(self):
        print('1..%d' % self.n, flush=True)
        if self.skipped:
            diag('skipped: ' + '; '.join('%s (%s)' % s for s in self.skipped))
        return 1 if self.failed else 0
