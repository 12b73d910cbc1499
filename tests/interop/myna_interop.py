"""myna_interop: the harness of the interoperability tests.

It runs a real mynad on a configuration derived from the shipped
conf/myna.conf (only data_dir and the listener addresses and ports are
rewritten), drives real client libraries against it, and reports TAP.
Every wait is bounded; mynad is always stopped (SIGTERM, then SIGKILL) and
its temporary data directory removed.

Environment:
  MYNA_BUILD_ROOT, MYNA_SOURCE_ROOT   set by meson
  MYNA_INTEROP_TIMEOUT                seconds per wait (default 15)
  MYNA_INTEROP_LOG_LEVEL              override mynad's log_level (e.g. debug)
  MYNA_INTEROP_VERBOSE                echo mynad's log and client debug logs
  MYNA_INTEROP_KEEP                   keep the temporary directory
"""
import asyncio
import base64
import collections
import ctypes
import logging
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE_ROOT = Path(os.environ.get('MYNA_SOURCE_ROOT', HERE.parent.parent))
BUILD_ROOT = Path(os.environ.get('MYNA_BUILD_ROOT', SOURCE_ROOT / 'build'))
TIMEOUT = float(os.environ.get('MYNA_INTEROP_TIMEOUT', '15'))
VERBOSE = bool(os.environ.get('MYNA_INTEROP_VERBOSE'))

NS_DELAY = 'urn:xmpp:delay'
NS_ROSTER = 'jabber:iq:roster'
NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'


class StepFailed(Exception):
    """A check did not hold; the message says which and why."""


class Skip(Exception):
    """The step cannot run here (a missing tool); the message says why."""


def known_failure(why, fn):
    """Marks step @fn as failing for a known server defect @why: its
    failure is reported as TAP "not ok ... # TODO known: @why" (meson: an
    expected failure; the steps after it still run), its success as
    "ok ... # TODO" (meson: an unexpected pass, which fails the test: the
    defect is fixed, remove the marker)."""
    async def step():
        return await fn()
    step.known = why
    return step


def check(cond, what):
    if not cond:
        raise StepFailed(what)


async def bounded(aw, what, timeout=None):
    """Awaits @aw for at most @timeout seconds; a timeout names @what."""
    try:
        return await asyncio.wait_for(aw, timeout or TIMEOUT)
    except asyncio.TimeoutError:
        raise StepFailed('timed out after %.0fs waiting for %s' % (timeout or TIMEOUT, what)) from None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _die_with_parent():
    # mynad is killed if the test dies, whatever happens to the test.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def derive_config(shipped, data_dir, ports):
    """The shipped configuration with data_dir and every listener's address
    and port rewritten; @ports maps a listener name (c2s, c2s_tls) to a
    port.  Fails if the shipped file lacks one of those keys, so a changed
    layout cannot silently make the test use the shipped ports."""
    out, section, done = [], None, set()
    for line in Path(shipped).read_text().splitlines():
        m = re.match(r'\s*\[([^\]]+)\]\s*$', line)
        if m:
            section = m.group(1).strip()
        m = re.match(r'\s*([A-Za-z0-9_]+)\s*=', line)
        key = m.group(1) if m else None
        listener = section.split(':', 1)[1] if section and section.startswith('listener:') else None
        if section == 'global' and key == 'data_dir':
            line = 'data_dir = %s' % data_dir
            done.add('data_dir')
        elif section == 'global' and key == 'log_level' and os.environ.get('MYNA_INTEROP_LOG_LEVEL'):
            line = 'log_level = %s' % os.environ['MYNA_INTEROP_LOG_LEVEL']
        elif listener in ports and key == 'port':
            line = 'port = %d' % ports[listener]
            done.add(listener + '.port')
        elif listener in ports and key == 'address':
            line = 'address = 127.0.0.1'
            done.add(listener + '.address')
        out.append(line)
    want = {'data_dir'} | {n + '.port' for n in ports} | {n + '.address' for n in ports}
    missing = want - done
    if missing:
        raise StepFailed('%s lacks %s' % (shipped, ', '.join(sorted(missing))))
    return '\n'.join(out) + '\n'


class Mynad:
    """A real mynad on a temporary data directory and free ports."""

    def __init__(self, name='interop'):
        self.bin = BUILD_ROOT / 'core' / 'mynad'
        self.ctl = BUILD_ROOT / 'core' / 'mynactl'
        self.dir = Path(tempfile.mkdtemp(prefix='myna-%s-' % name))
        self.data_dir = self.dir / 'var'
        self.conf = self.dir / 'myna.conf'
        self.ports = {}
        self.proc = None
        self.lines = []            # every log line of every run
        self.run_start = 0         # index in lines where this run began
        self.cond = threading.Condition()
        self.reader = None
        self.starts = []           # seconds each start took

    # -- configuration -------------------------------------------------------
    def configure(self):
        self.ports = {'c2s': free_port(), 'c2s_tls': free_port()}
        while self.ports['c2s_tls'] == self.ports['c2s']:
            self.ports['c2s_tls'] = free_port()
        self.conf.write_text(derive_config(SOURCE_ROOT / 'conf' / 'myna.conf',
                                           self.data_dir, self.ports))

    @property
    def c2s(self):
        return ('127.0.0.1', self.ports['c2s'])

    @property
    def c2s_tls(self):
        return ('127.0.0.1', self.ports['c2s_tls'])

    # -- log -----------------------------------------------------------------
    def _read(self, stream):
        for raw in stream:
            line = raw.decode('utf-8', 'replace').rstrip('\n')
            if VERBOSE:
                print('# mynad| ' + line, flush=True)
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)     # end of this run's stderr
            self.cond.notify_all()

    def wait_log(self, pattern, timeout=None, since=None):
        """Waits (blocking) for a log line of the current run matching
        @pattern; returns it, or None on timeout or end of output."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + (timeout or TIMEOUT)
        i = self.run_start if since is None else since
        with self.cond:
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    i += 1
                    if line is None:
                        return None
                    if rx.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def log_has(self, pattern, since=None):
        rx = re.compile(pattern)
        with self.cond:
            return any(l is not None and rx.search(l) for l in self.lines[since or 0:])

    def tail(self, n=60):
        with self.cond:
            return [l for l in self.lines if l is not None][-n:]

    # -- life cycle ----------------------------------------------------------
    def _spawn(self):
        # Spawned from the main thread: the child's parent-death signal
        # follows the thread that forked it.
        if not self.ports:
            self.configure()
        with self.cond:
            self.run_start = len(self.lines)
        # Modules are found as the shipped configuration finds them.
        env = {k: v for k, v in os.environ.items() if k != 'MYNA_MODULE_PATH'}
        self.proc = subprocess.Popen([str(self.bin), '-c', str(self.conf)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, cwd=str(self.dir), env=env,
                                     preexec_fn=_die_with_parent)
        self.reader = threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True)
        self.reader.start()

    def _started(self, line, t0):
        if line is None:
            raise StepFailed('mynad did not log "started" within %.0fs (exit status %s)'
                             % (TIMEOUT, self.proc.poll()))
        self.starts.append(time.monotonic() - t0)

    def stop(self, require_clean=True):
        """SIGTERM, then waits for "stopped" and the exit; SIGKILL after a
        bound.  Returns the exit status; fails the step on an unclean stop
        if @require_clean."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        stopped = self.wait_log(r'\bstopped\b', timeout=10)
        try:
            status = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            status = proc.wait(timeout=10)
            if require_clean:
                raise StepFailed('mynad did not exit within 10s of SIGTERM (killed)')
        if self.reader is not None:
            self.reader.join(timeout=5)
        proc.stderr.close()
        if require_clean and (status != 0 or stopped is None):
            raise StepFailed('mynad did not stop cleanly: exit status %s, "stopped" %s'
                             % (status, 'logged' if stopped else 'never logged'))
        return status

    async def astart(self):
        """Starts mynad and waits until it logs "started".  On its first
        start, a port taken between free_port() and mynad's bind (another
        test run on this machine) gets new ports, up to three times."""
        first = not self.starts
        for attempt in range(3):
            t0 = time.monotonic()
            self._spawn()
            line = await asyncio.get_running_loop().run_in_executor(
                None, self.wait_log, r'\bstarted\b')
            if (line is None and first and attempt < 2
                    and self.log_has(r'Address already in use', since=self.run_start)):
                self.stop(require_clean=False)
                self.configure()
                continue
            return self._started(line, t0)

    async def astop(self, require_clean=True):
        return await asyncio.get_running_loop().run_in_executor(None, self.stop, require_clean)

    def mynactl(self, *args, input=None):
        r = subprocess.run([str(self.ctl), '-c', str(self.conf)] + list(args),
                           input=input, capture_output=True, text=True, timeout=TIMEOUT,
                           cwd=str(self.dir))
        return r.returncode, r.stdout, r.stderr

    def cleanup(self):
        try:
            if self.proc is not None:
                self.stop(require_clean=False)
        finally:
            if os.environ.get('MYNA_INTEROP_KEEP'):
                print('# kept %s' % self.dir, flush=True)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)


CLIENT_LOG = collections.deque(maxlen=1000)


def diag(text):
    """Prints @text as TAP diagnostics."""
    for line in str(text).splitlines():
        print('# ' + line, flush=True)


class _RingHandler(logging.Handler):
    def emit(self, record):
        try:
            CLIENT_LOG.append('%7.0fms %s %s' % (record.relativeCreated, record.name,
                                                 record.getMessage()))
        except Exception:
            pass


def setup_client_log():
    """Client libraries log at debug level into a ring buffer, printed
    when a step fails (and to stdout with MYNA_INTEROP_VERBOSE)."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    h = _RingHandler()
    root.addHandler(h)
    if VERBOSE:
        s = logging.StreamHandler(sys.stdout)
        s.setFormatter(logging.Formatter('# %(relativeCreated)7.0fms %(name)s %(message)s'))
        root.addHandler(s)


class Tap:
    """Runs named steps in order and prints TAP.  After a failed step the
    rest are reported as skipped (they depend on it), and mynad's log tail
    is printed."""

    def __init__(self, steps, mynad=None):
        self.steps = steps
        self.mynad = mynad
        self.failed = False

    def diag(self, text):
        diag(text)

    async def run(self):
        print('1..%d' % len(self.steps), flush=True)
        t_all = time.monotonic()
        for n, (name, fn) in enumerate(self.steps, 1):
            if self.failed:
                print('ok %d - %s # SKIP an earlier step failed' % (n, name), flush=True)
                continue
            CLIENT_LOG.append('==== step %d: %s' % (n, name))
            t0 = time.monotonic()
            known = getattr(fn, 'known', None)
            try:
                note = await fn()
            except Skip as e:
                print('ok %d - %s # SKIP %s' % (n, name, e), flush=True)
                continue
            except Exception as e:
                if known is not None:
                    print('not ok %d - %s # TODO known: %s' % (n, name, known), flush=True)
                    self.diag('expected failure: %s: %s' % (type(e).__name__, e))
                elif isinstance(e, StepFailed):
                    self.fail(n, name, str(e))
                else:
                    self.fail(n, name, '%s: %s' % (type(e).__name__, e), traceback.format_exc())
                continue
            if known is not None:
                print('ok %d - %s # TODO known: %s (it passes now: remove the marker)'
                      % (n, name, known), flush=True)
                continue
            dt = time.monotonic() - t0
            print('ok %d - %s (%.2fs)%s' % (n, name, dt, ' - ' + note if note else ''), flush=True)
        self.diag('total %.2fs' % (time.monotonic() - t_all))
        return not self.failed

    def fail(self, n, name, why, tb=None):
        self.failed = True
        print('not ok %d - %s' % (n, name), flush=True)
        self.diag('FAILED: %s: %s' % (name, why))
        if tb:
            self.diag(tb)
        if CLIENT_LOG:
            self.diag('---- client log tail (slixmpp SEND/RECV) ----')
            self.diag('\n'.join(list(CLIENT_LOG)[-150:]))
        if self.mynad is not None:
            self.diag('---- mynad log tail ----')
            self.diag('\n'.join(self.mynad.tail()))
            self.diag('---- end of mynad log ----')


def main(make_steps, needs=('slixmpp',), name='interop'):
    """Entry point of a scenario script: skips (TAP "1..0 # SKIP") if a
    needed Python module is missing, else runs make_steps(mynad) -> list of
    (name, coroutine function), or (that list, cleanup coroutine function),
    against a fresh mynad."""
    for mod in needs:
        try:
            __import__(mod)
        except ImportError as e:
            print('1..0 # SKIP %s is not importable by %s: %s' % (mod, sys.executable, e))
            return 0
    setup_client_log()
    mynad = Mynad(name)
    ok = False
    try:
        async def run():
            made = make_steps(mynad)
            steps, cleanup = made if isinstance(made, tuple) else (made, None)
            try:
                return await Tap(steps, mynad).run()
            finally:
                if cleanup is not None:
                    try:
                        await asyncio.wait_for(cleanup(), 30)
                    except Exception as e:
                        print('# cleanup: %s: %s' % (type(e).__name__, e), flush=True)
        ok = asyncio.run(run())
    finally:
        mynad.cleanup()
    return 0 if ok else 1


# ---------------------------------------------------------------------------
# slixmpp clients
# ---------------------------------------------------------------------------

def gs2_header(auth_value):
    """The gs2 header ("n,,", "y,,", "p=tls-unique,,") of a SCRAM
    client-first message, given the <auth/> payload slixmpp holds (bytes
    or base64 text)."""
    if isinstance(auth_value, str):
        auth_value = base64.b64decode(auth_value)
    parts = auth_value.split(b',', 2)
    return (parts[0] + b',' + parts[1] + b',').decode() if len(parts) == 3 else auth_value.decode()


def make_slixmpp_client(jid, password, *, register=False, mech=None, channel_binding=True,
                        tls_max=None, resource=None, verify_with=None, plugins=()):
    """A slixmpp ClientXMPP wired for these tests:
     - accepts the self-signed development certificate;
     - records every stanza in and out (for waits and assertions): the
       <auth mechanism=…> sent, the SASL failures, the stream errors;
     - @register: registers the account in-band first (XEP-0077);
     - @mech: the only SASL mechanism to use (use_mech);
     - @channel_binding False: the client claims no channel-binding
       support (gs2 flag "n"); slixmpp otherwise sends "y" with a
       non -PLUS mechanism, which a server offering -PLUS must refuse
       (RFC 5802 section 6);
     - @tls_max: e.g. ssl.TLSVersion.TLSv1_2;
     - @verify_with: a certificate file to trust (with host name checks)
       instead of accepting any certificate;
     - @plugins: more slixmpp plugins, registered before the stream opens
       (so that their stream-feature handlers run: xep_0115's, say)."""
    import slixmpp

    class Client(slixmpp.ClientXMPP):
        pass

    full = '%s/%s' % (jid, resource) if resource else jid
    c = Client(full, password)
    if verify_with is not None:
        # Trust exactly this certificate and check it names the domain.
        c.ssl_context = ssl.create_default_context(cafile=str(verify_with))
        c.ssl_context.check_hostname = True
        c.ca_certs = None
    else:
        c.ssl_context.check_hostname = False
        c.ssl_context.verify_mode = ssl.CERT_NONE
    if tls_max is not None:
        c.ssl_context.maximum_version = tls_max
    c.auto_authorize = None          # answer subscriptions ourselves
    c.auto_subscribe = False
    c.whitespace_keepalive = False
    for p in ('xep_0030', 'xep_0077', 'xep_0199', 'xep_0203') + tuple(plugins):
        c.register_plugin(p)
    if register:
        c['xep_0077'].force_registration = True
        # slixmpp 1.8 holds every stanza but bind/session until a session
        # exists: without this the registration iq is never sent.
        c._always_send_everything = True
    if mech is not None:
        c['feature_mechanisms'].use_mech = mech
    if not channel_binding:
        base = c['feature_mechanisms'].sasl_callback

        def creds(required, optional):
            r = base(required, optional)
            if 'channel_binding' in r:
                r['channel_binding'] = None
            return r
        c['feature_mechanisms'].sasl_callback = creds

    c.received = []                  # stanzas in
    c.auths = []                     # (mechanism, gs2 header) sent
    c.sasl_failures = []             # failure conditions received
    c.stream_errors = []
    c.registered = None              # registration iq result / error text
    c.changed = asyncio.Event()
    loop = asyncio.get_running_loop()
    c.session = loop.create_future()  # True on session start, else an error text

    def settle(value):
        if not c.session.done():
            c.session.set_result(value)

    def inbound(stanza):
        c.received.append(stanza)
        tag = stanza.xml.tag
        if tag == '{%s}failure' % NS_SASL:
            conds = [child.tag.split('}')[-1] for child in stanza.xml
                     if child.tag != '{%s}text' % NS_SASL]
            c.sasl_failures.append(','.join(conds))
        c.changed.set()
        return stanza

    def outbound(stanza):
        if stanza.xml.tag == '{%s}auth' % NS_SASL:
            value = stanza.xml.text or ''
            try:
                hdr = gs2_header(value) if stanza['mechanism'].startswith('SCRAM') else ''
            except Exception:
                hdr = '?'
            c.auths.append((stanza['mechanism'], hdr))
        return stanza

    c.add_filter('in', inbound)
    c.add_filter('out', outbound)
    c.add_event_handler('session_start', lambda _e: settle(True))
    c.add_event_handler('failed_all_auth',
                        lambda _e: settle('authentication failed (SASL failures: %s)'
                                          % (c.sasl_failures or 'none')))
    c.add_event_handler('connection_failed', lambda e: settle('connection failed: %s' % (e,)))
    c.add_event_handler('stream_error', lambda e: c.stream_errors.append(e['condition']))
    c.add_event_handler('disconnected',
                        lambda e: settle('disconnected before the session started: %s' % (e,)))

    def on_disconnect(_e):
        c.changed.set()
    c.add_event_handler('disconnected', on_disconnect)

    if register:
        async def do_register(_form):
            iq = c.Iq()
            iq['type'] = 'set'
            iq['register']['username'] = c.boundjid.user
            iq['register']['password'] = c.password
            try:
                await iq.send(timeout=TIMEOUT)
                c.registered = True
            except Exception as e:
                cond = getattr(e, 'condition', None)
                c.registered = 'registration refused: %s %s' % (cond or type(e).__name__,
                                                               getattr(e, 'text', '') or '')
                settle(c.registered)
                c.disconnect(wait=1)
        c.add_event_handler('register', do_register)
    return c


async def login(jid, password, addr, *, direct_tls=False, expect=True, **kw):
    """Connects a slixmpp client to @addr (STARTTLS, or direct TLS) and
    waits for the session (expect=True) or for the login to fail
    (expect=False).  Returns the client."""
    c = make_slixmpp_client(jid, password, **kw)
    c.connect(address=addr, use_ssl=direct_tls, force_starttls=not direct_tls,
              disable_starttls=direct_tls)
    result = await bounded(asyncio.shield(c.session), 'the login of %s to be decided' % jid)
    if expect and result is not True:
        await close(c)
        raise StepFailed('login of %s failed: %s; <auth/> sent: %s'
                         % (jid, result, c.auths))
    if not expect and result is True:
        await close(c)
        raise StepFailed('login of %s succeeded but must fail; <auth/> sent: %s' % (jid, c.auths))
    return c


async def close(c, timeout=5):
    """Ends the stream (or aborts the connection after @timeout), and
    stops the client's background tasks (a connection attempt slixmpp
    would otherwise retry, the send queue)."""
    c.cancel_connection_attempt()
    if c.transport is not None:
        done = c.disconnected if not c.disconnected.done() else None
        c.disconnect(wait=timeout)
        if done is not None:
            try:
                await asyncio.wait_for(asyncio.shield(done), timeout + 1)
            except asyncio.TimeoutError:
                c.abort()
    task = getattr(c, '_run_out_filters', None)
    if task is not None and not task.done():
        task.cancel()
        try:
            await task
        except BaseException:
            pass


async def wait_stanza(c, pred, what, timeout=None, start=0):
    """Waits for a received stanza (index >= @start) satisfying @pred;
    returns it."""
    async def scan():
        i = start
        while True:
            while i < len(c.received):
                s = c.received[i]
                i += 1
                try:
                    if pred(s):
                        return s
                except (KeyError, AttributeError):
                    pass
            c.changed.clear()
            if i < len(c.received):
                continue
            if c.transport is None:
                raise StepFailed('%s: disconnected while waiting for %s (stream errors: %s)'
                                 % (c.boundjid, what, c.stream_errors or 'none'))
            await c.changed.wait()
    return await bounded(scan(), '%s at %s' % (what, c.boundjid))


async def roster_items(c):
    """The whole roster, fetched with a get without `ver` (a versioned get
    may be answered empty): {bare jid: (subscription, ask)}."""
    iq = c.Iq()
    iq['type'] = 'get'
    iq.append(__import__('xml.etree.ElementTree', fromlist=['x']).Element('{%s}query' % NS_ROSTER))
    res = await iq.send(timeout=TIMEOUT)
    q = res.xml.find('{%s}query' % NS_ROSTER)
    check(q is not None, 'roster result without <query/>: %s' % res)
    return {i.get('jid'): (i.get('subscription', 'none'), i.get('ask'))
            for i in q.findall('{%s}item' % NS_ROSTER)}


def is_presence(frm, ptype=None):
    def pred(s):
        if s.xml.tag != '{jabber:client}presence':
            return False
        if str(s['from']) != frm and s['from'].bare != frm:
            return False
        return (s.xml.get('type') or 'available') == (ptype or 'available')
    return pred


def is_message(frm, body):
    def pred(s):
        return (s.xml.tag == '{jabber:client}message' and s['from'].bare == frm
                and s['body'] == body)
    return pred
