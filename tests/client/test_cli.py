#!/usr/bin/python3
"""test_cli: the `myna-client` command line against real servers.

    test_cli.py MYNA_CLIENT mynad|prosody|slixmpp

mynad    a mynad started here (register;sm;offline;push …, an http
         listener for the push API): `register` (given and generated
         credentials), `roster`, `send` (acknowledged: exit 0; a wrong
         password: exit 3; no server: non-zero after --timeout), `listen`
         (each message once, offline ones too; an androidpn notification
         posted through the HTTP API, answered: the API then says
         `delivered`), `chat` (each stdin line sent once, a malformed line
         reported, through a restart of mynad with the state lines, a line
         written while mynad is down sent after the reconnection), and
         STARTTLS with the accepted self-signed certificate (refused without).
prosody  the same register / send / listen against a private Prosody;
         exit 77 (skip) when prosody is not installed.
slixmpp  an independent client (slixmpp) and the CLI against mynad: a
         message from slixmpp reaches `listen` once (and its receipt
         request is answered); one from `send` reaches slixmpp.

Exit status 0 (all passed), 1 (a check failed), 77 (skipped).
"""
import asyncio
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_support import (SKIP, TIMEOUT, Cli, Failed, Mynad, Prosody, Skipped, Steps,  # noqa: E402
                          account_file, check, diag, free_port, run_cli)

SOURCE_ROOT = Path(os.environ.get('MYNA_SOURCE_ROOT', Path(__file__).resolve().parents[2]))
# The interop harness's slixmpp helpers (make_slixmpp_client, login, …).
sys.path.insert(0, str(SOURCE_ROOT / 'tests' / 'interop'))

RECONNECT_TIMEOUT = TIMEOUT * 2   # a reconnection waits up to a few backoff steps


def is_message(frm, body):
    return lambda o: o.get('type') == 'message' and o.get('body') == body \
        and o.get('from', '').split('/')[0] == frm


def is_state(state):
    return lambda o: o.get('type') == 'state' and o.get('state') == state


def count_bodies(cli, body):
    return sum(1 for o in cli.lines if o.get('type') == 'message' and o.get('body') == body)


class Scenario:
    """What every scenario holds: the CLI's path, a work dir, the server
    and the long-running CLI processes (killed at the end)."""

    def __init__(self, binary, server):
        self.bin = binary
        self.server = server
        self.work = Path(tempfile.mkdtemp(prefix='myna-client-cli-'))
        self.procs = []
        self.steps = Steps(on_fail=self.logs)
        self.tls = {'tls': 'none'}   # how account files connect (see secure())

    def secure(self):
        """Account files use STARTTLS and accept mynad's self-signed
        certificate (mynad refuses in-band registration outside TLS)."""
        check(self.server.certificate.exists(), 'mynad made no certificate at %s'
              % self.server.certificate)
        self.tls = {'tls': 'starttls', 'extra': {'accept_certificate': self.server.certificate}}

    def account(self, name, jid, password, **kw):
        port = kw.pop('port', self.server.port)
        store = kw.pop('store', self.work / ('%s.db' % name))
        for k, v in self.tls.items():
            kw.setdefault(k, v)
        return account_file(self.work / ('%s.conf' % name), jid, password, port, store, **kw)

    def run(self, account, *args, timeout=None, name='cli'):
        return run_cli(self.bin, account, *args, workdir=self.work, timeout=timeout, name=name)

    def spawn(self, account, *args, stdin=False, name='cli'):
        c = Cli(self.bin, account, *args, workdir=self.work, stdin=stdin, name=name)
        self.procs.append(c)
        return c

    def logs(self):
        for c in self.procs:
            diag('---- %s (%s) stdout tail ----' % (c.name, ' '.join(c.argv[3:])))
            diag('\n'.join(c.raw[-20:]))
            diag('---- %s stderr tail ----' % c.name)
            diag(c.stderr(40))
        tail = getattr(self.server, 'logs', None)
        if tail is not None:
            diag('---- server log tail ----')
            diag(tail())
        elif getattr(self.server, 'log', None) is not None:
            diag('---- mynad log tail ----')
            diag('\n'.join(self.server.log.tail(60)))

    def cleanup(self):
        for c in self.procs:
            c.kill()
        self.server.cleanup()
        if not os.environ.get('MYNA_CLIENT_TEST_KEEP'):
            shutil.rmtree(self.work, ignore_errors=True)

    # ---- checks shared by mynad and Prosody ---------------------------------------

    def register(self, name, jid, password, **kw):
        acct = self.account(name, jid, password, **kw)
        status, lines, err = self.run(acct, 'register', name='register-' + name)
        check(status == 0, 'register %s: exit %s, stdout %s, stderr:\n%s' % (jid, status, lines, err))
        reg = [o for o in lines if o.get('type') == 'registered']
        check(len(reg) == 1, 'register %s: want one {"type":"registered"} line, got %s' % (jid, lines))
        return acct, reg[0]['jid']

    def send_ok(self, acct, to, body):
        t0 = time.monotonic()
        status, lines, err = self.run(acct, '--timeout', '%d' % TIMEOUT, 'send', to, body,
                                      timeout=TIMEOUT + 10, name='send')
        check(status == 0, 'send %s %r: exit %s, stdout %s, stderr:\n%s' % (to, body, status, lines, err))
        return 'acknowledged in %.2fs' % (time.monotonic() - t0)

    def wrong_password(self, name, jid, register):
        acct = self.account(name, jid, 'not-the-password', register=register)
        status, lines, err = self.run(acct, '--timeout', '%d' % TIMEOUT, 'send', jid, 'nope',
                                      timeout=TIMEOUT + 10, name='send-wrong-' + name)
        check(status == 3, 'send with a wrong password (register = %s): exit %s (want 3), '
              'stderr:\n%s' % (register, status, err))
        check('myna-client:' in err, 'no "myna-client: reason" on stderr: %r' % err[-500:])
        return 'exit 3: %s' % next((l for l in err.splitlines() if l.startswith('myna-client:')), '')

    def exactly_once(self, listener, frm, bodies, sender_acct, sentinel):
        """Sends @sentinel last; when it arrives, each of @bodies must have
        been printed exactly once (one stream: in order)."""
        self.send_ok(sender_acct, listener.jid, sentinel)
        listener.expect(is_message(frm, sentinel), 'the sentinel message', timeout=TIMEOUT)
        counts = {b: count_bodies(listener, b) for b in bodies + [sentinel]}
        check(all(n == 1 for n in counts.values()), 'messages printed other than once: %s' % counts)


# ---------------------------------------------------------------------------------

def scenario_mynad(s):
    d = s.server
    st = s.steps
    acct = {}
    listen = {}

    def start():
        d.start()
        s.secure()
    st.run('mynad starts (c2s with STARTTLS, http listener for the push API)', start)
    if st.failed:
        return

    def register_alice():
        acct['alice'], jid = s.register('alice', 'alice@localhost', 'alice-secret-1')
        check(jid == 'alice@localhost', 'registered %r, want alice@localhost' % jid)
        acct['bob'], jid = s.register('bob', 'bob@localhost', 'bob-secret-2')
        check(jid == 'bob@localhost', 'registered %r' % jid)
    st.run('register: given credentials, exit 0 and {"type":"registered"}', register_alice)

    def register_generated():
        a, jid = s.register('gen', 'localhost', None)
        check(re.fullmatch(r'[a-z0-9]{12}@localhost', jid or ''), 'generated JID %r' % jid)
        # The same account file (a domain, no password) logs in with the
        # account the store now holds.
        status, lines, err = s.run(a, '--timeout', '%d' % TIMEOUT, 'roster', name='roster-gen')
        check(status == 0, 'roster with the stored generated account: exit %s, stderr:\n%s' % (status, err))
        return jid
    st.run('register: generated username and password (jid = a domain)', register_generated, needs_ok=False)

    def roster():
        try:
            import slixmpp  # noqa: F401
        except ImportError as e:
            raise Skipped('python3-slixmpp (which sets the roster item) is not importable: %s' % e)
        from myna_interop import login, close

        async def add_item():
            c = await login('alice@localhost', 'alice-secret-1', ('127.0.0.1', d.port),
                            channel_binding=False)
            try:
                iq = c.Iq()
                iq['type'] = 'set'
                iq['roster']['items'] = {'bob@localhost': {'name': 'Bob', 'subscription': 'none',
                                                           'groups': ['Friends']}}
                await iq.send(timeout=TIMEOUT)
            finally:
                await close(c)
        asyncio.run(add_item())
        status, lines, err = s.run(acct['alice'], '--timeout', '%d' % TIMEOUT, 'roster', name='roster')
        check(status == 0, 'roster: exit %s, stderr:\n%s' % (status, err))
        items = [o for o in lines if o.get('type') == 'roster']
        check(len(items) == 1, 'want one roster line, got %s' % lines)
        it = items[0]
        check(it.get('jid') == 'bob@localhost' and it.get('name') == 'Bob'
              and it.get('subscription') == 'none' and it.get('groups') == ['Friends'],
              'roster line %s' % it)
    st.run('roster: the item set by another client, one JSON line', roster, needs_ok=False)

    st.run('send to an offline contact: exit 0 once acknowledged',
           lambda: s.send_ok(acct['alice'], 'bob@localhost', 'offline hello'))

    def listen_offline():
        # stdin stays open (a pipe): listen runs until a signal.
        listen['bob'] = c = s.spawn(acct['bob'], 'listen', stdin=True, name='listen-bob')
        c.jid = 'bob@localhost'
        c.expect(is_state('authenticated'), 'state authenticated')
        c.expect(is_message('alice@localhost', 'offline hello'), 'the offline message')
        o = next(o for o in c.lines if o.get('body') == 'offline hello')
        for k in ('id', 'timestamp'):
            check(k in o, 'message line without %r: %s' % (k, o))
    st.run('listen: prints the offline message', listen_offline)

    def listen_live():
        c = listen['bob']
        for body in ('live 1', 'live 2'):
            s.send_ok(acct['alice'], 'bob@localhost', body)
            c.expect(is_message('alice@localhost', body), 'message %r' % body)
        s.exactly_once(c, 'alice@localhost', ['offline hello', 'live 1', 'live 2'], acct['alice'],
                       'sentinel 1')
    st.run('listen: live messages, each printed exactly once', listen_live)

    def notification():
        c = listen['bob']
        mark = d.log.mark()
        note = d.notify('bob@localhost', 'Hello', 'The meeting moved to 10:00',
                        'https://example.com/m/1')
        _, o = c.expect(lambda o: o.get('type') == 'notification' and o.get('id') == note,
                        'the notification line')
        check(o.get('title') == 'Hello' and o.get('message') == 'The meeting moved to 10:00'
              and o.get('uri') == 'https://example.com/m/1', 'notification line %s' % o)
        line = d.log.wait(r'notification %s delivered to bob@localhost' % re.escape(note), since=mark)
        check(line is not None, 'mynad never marked notification %s delivered' % note)
        states = d.notification_states(note)
        check(states.get('bob@localhost') == 'delivered', 'GET says %s' % states)
        return 'delivered (%s)' % line.rsplit('(', 1)[-1].rstrip(')')
    st.run('listen: an androidpn notification from the HTTP API, answered (state delivered)',
           notification, needs_ok=False)

    def fresh_store():
        # No account in the store, given credentials of an existing account:
        # registration answers conflict, the chain goes on to log in.
        a = s.account('alice-fresh', 'alice@localhost', 'alice-secret-1')
        return s.send_ok(a, 'bob@localhost', 'from a fresh store')
    st.run('send with a fresh store for an existing account (register: conflict, then login)',
           fresh_store, needs_ok=False)

    st.run('send: wrong password, register = false: exit 3',
           lambda: s.wrong_password('alice-wrong', 'alice@localhost', False), needs_ok=False)
    st.run('send: wrong password, register = true (default): exit 3',
           lambda: s.wrong_password('alice-wrong2', 'alice@localhost', None), needs_ok=False)

    def server_down():
        a = s.account('down', 'alice@localhost', 'alice-secret-1', port=free_port(),
                      store=s.work / 'down.db')
        t0 = time.monotonic()
        status, lines, err = s.run(a, '--timeout', '3', 'send', 'bob@localhost', 'void',
                                   timeout=20, name='send-down')
        dt = time.monotonic() - t0
        check(status not in (0, None), 'exit %s with no server' % status)
        check(dt >= 2.5 and dt < 13, 'exit after %.1fs with --timeout 3' % dt)
        check('myna-client:' in err, 'no reason on stderr: %r' % err[-500:])
        # The failed message is marked FAILED: the next run does not send it
        # (the caller, told it failed, may send it again: it must not then
        # arrive twice).  Messages go in order, so had it been sent it would
        # have arrived before "after down".
        b = s.account('down-again', 'alice@localhost', 'alice-secret-1', store=s.work / 'down.db')
        s.send_ok(b, 'bob@localhost', 'after down')
        bob = listen['bob']
        bob.expect(is_message('alice@localhost', 'after down'), '"after down"')
        check(not any(is_message('alice@localhost', 'void')(o) for o in bob.lines),
              'the failed message went out with the next run')
        return 'exit %d after %.1fs; the failed message stays failed' % (status, dt)
    st.run('send: no server: non-zero after --timeout; the failed message never goes later',
           server_down, needs_ok=False)

    def refused():
        status, lines, err = s.run(acct['alice'], '--timeout', '%d' % TIMEOUT, 'send',
                                   'nobody@localhost', 'to no one', timeout=TIMEOUT + 10,
                                   name='send-nobody')
        check(status == 1, 'send to an account that does not exist: exit %s (want 1)' % status)
        check(any(o.get('type') == 'failed' for o in lines), 'no {"type":"failed"} line: %s' % lines)
    st.run('send to an account that does not exist: a failed line, exit 1', refused, needs_ok=False)

    def tls_checked():
        # Every other step accepts mynad's self-signed certificate; without
        # accept_certificate (and no ca_file) it is refused.
        b = s.account('alice-tls-refused', 'alice@localhost', 'alice-secret-1', extra={})
        status, lines, err = s.run(b, '--timeout', '3', 'send', 'bob@localhost', 'refused',
                                   timeout=20, name='send-tls-refused')
        check(status not in (0, None), 'an unchecked self-signed certificate was accepted (exit %s)'
              % status)
        reasons = [o.get('reason') for o in lines if o.get('type') == 'state' and o.get('reason')]
        check(any(r.startswith('tls') for r in reasons), 'no "tls: …" reason: %s' % reasons)
        return 'exit %s, %s' % (status, reasons[:1])
    st.run('STARTTLS: a self-signed certificate is refused without accept_certificate',
           tls_checked, needs_ok=False)

    def chat():
        bob = listen['bob']
        alice = s.spawn(acct['alice'], 'chat', stdin=True, name='chat-alice')
        alice.expect(is_state('authenticated'), 'chat: state authenticated')
        alice.write({'to': 'bob@localhost', 'body': 'chat 1'})
        _, q = alice.expect(lambda o: o.get('type') == 'queued' and o.get('to') == 'bob@localhost',
                            'chat: queued line')
        bob.expect(is_message('alice@localhost', 'chat 1'), '"chat 1"')
        alice.expect(lambda o: o.get('type') in ('acked', 'receipt') and o.get('id') == q.get('id'),
                     'chat: acked line for %s' % q.get('id'))
        alice.write('this is not JSON')
        i, _ = alice.expect(lambda o: o.get('type') == 'error' and o.get('reason'), 'chat: error line')
        alice.write({'to': 'bob@localhost'})
        alice.expect(lambda o: o.get('type') == 'error' and o.get('reason'),
                     'chat: error line for a line without "body"', start=i + 1)

        # Restart mynad; a line written while it is down goes after the reconnection.
        a_mark, b_mark = len(alice.lines), len(bob.lines)
        check(d.stop() == 0, 'mynad did not stop cleanly')
        alice.expect(is_state('disconnected'), 'chat: state disconnected', start=a_mark)
        alice.write({'to': 'bob@localhost', 'body': 'chat while down'})
        _, rec = alice.expect(is_state('reconnecting'), 'chat: state reconnecting', start=a_mark)
        check('delay' in rec, 'reconnecting line without delay: %s' % rec)
        d.start()
        alice.expect(is_state('authenticated'), 'chat: authenticated again', start=a_mark,
                     timeout=RECONNECT_TIMEOUT)
        bob.expect(is_state('disconnected'), 'listen: state disconnected', start=b_mark)
        bob.expect(is_state('authenticated'), 'listen: authenticated again', start=b_mark,
                   timeout=RECONNECT_TIMEOUT)
        bob.expect(is_message('alice@localhost', 'chat while down'), '"chat while down"',
                   timeout=RECONNECT_TIMEOUT)
        alice.write({'to': 'bob@localhost', 'body': 'chat 2'})
        bob.expect(is_message('alice@localhost', 'chat 2'), '"chat 2"')
        # EOF: chat waits for the acks, logs out, exits 0.
        alice.write({'to': 'bob@localhost', 'body': 'chat last'})
        alice.close_stdin()
        status = alice.wait_exit()
        check(status == 0, 'chat after EOF: exit %s' % status)
        bob.expect(is_message('alice@localhost', 'chat last'), '"chat last"')
        s.exactly_once(bob, 'alice@localhost',
                       ['offline hello', 'live 1', 'live 2', 'from a fresh store',
                        'after down', 'chat 1', 'chat while down', 'chat 2', 'chat last'],
                       acct['alice'], 'sentinel 2')
        states = [o['state'] for o in alice.lines if o.get('type') == 'state']
        return 'chat states: %s' % ' '.join(states)
    st.run('chat: stdin lines sent once each, through a restart of mynad', chat, needs_ok=False)

    def listen_stops():
        status = listen['bob'].stop()
        check(status == 0, 'listen after SIGTERM: exit %s' % status)
    st.run('listen: exits 0 on SIGTERM', listen_stops, needs_ok=False)
    st.run('mynad stops cleanly', lambda: check(d.stop() == 0, 'mynad exit status not 0'),
           needs_ok=False)


def scenario_prosody(s):
    st = s.steps
    acct = {}
    listen = {}
    st.run('prosody starts (private instance, smacks, register)', s.server.start)
    if st.failed:
        return

    def register():
        acct['alice'], jid = s.register('alice', 'alice@localhost', 'alice-secret-1')
        check(jid == 'alice@localhost', 'registered %r' % jid)
        acct['bob'], jid = s.register('bob', 'bob@localhost', 'bob-secret-2')
    st.run('register on Prosody', register)
    st.run('send on Prosody to an offline contact: exit 0 (acknowledged)',
           lambda: s.send_ok(acct['alice'], 'bob@localhost', 'offline hello'))

    def listen_bob():
        # stdin stays open (a pipe): listen runs until a signal.
        listen['bob'] = c = s.spawn(acct['bob'], 'listen', stdin=True, name='listen-bob')
        c.jid = 'bob@localhost'
        c.expect(is_state('authenticated'), 'state authenticated')
        c.expect(is_message('alice@localhost', 'offline hello'), 'the offline message')
        s.send_ok(acct['alice'], 'bob@localhost', 'live 1')
        c.expect(is_message('alice@localhost', 'live 1'), '"live 1"')
        s.exactly_once(c, 'alice@localhost', ['offline hello', 'live 1'], acct['alice'], 'sentinel')
    st.run('listen on Prosody: offline and live messages, each once', listen_bob)

    def roster():
        status, lines, err = s.run(acct['alice'], '--timeout', '%d' % TIMEOUT, 'roster', name='roster')
        check(status == 0, 'roster: exit %s, stderr:\n%s' % (status, err))
    st.run('roster on Prosody: exit 0', roster, needs_ok=False)
    st.run('send on Prosody: wrong password, register = false: exit 3',
           lambda: s.wrong_password('alice-wrong', 'alice@localhost', False), needs_ok=False)


def scenario_slixmpp(s):
    from myna_interop import make_slixmpp_client, close, wait_stanza, bounded
    d = s.server
    st = s.steps
    acct = {}
    def start():
        d.start()
        s.secure()
    st.run('mynad starts', start)
    if st.failed:
        return

    def register():
        acct['alice'], _ = s.register('alice', 'alice@localhost', 'alice-secret-1')
    st.run('register alice with myna-client', register)

    async def main():
        # Without channel binding: Debian's slixmpp 1.8.3 gets it wrong over
        # TLS 1.3 (/work/shared/PEERS.md).
        sam = make_slixmpp_client('sam@localhost', 'sam-secret-3', register=True,
                                  channel_binding=False)
        sam.register_plugin('xep_0184')
        sam['xep_0184'].auto_ack = False
        sam.connect(address=('127.0.0.1', d.port), force_starttls=True)
        res = await bounded(asyncio.shield(sam.session), 'the slixmpp session')
        check(res is True, 'slixmpp login: %s' % res)
        sam.send_presence()    # available: messages to the bare JID come here
        loop = asyncio.get_running_loop()
        try:
            listen = s.spawn(acct['alice'], 'listen', stdin=True, name='listen-alice')
            listen.jid = 'alice@localhost'
            await loop.run_in_executor(None, listen.expect, is_state('authenticated'),
                                       'state authenticated')
            # slixmpp → listen, asking for a receipt.
            m = sam.make_message(mto='alice@localhost', mbody='from slixmpp', mtype='chat')
            m['id'] = 'slix-1'
            m['request_receipt'] = True
            m.send()
            await loop.run_in_executor(None, listen.expect, is_message('sam@localhost', 'from slixmpp'),
                                       'the slixmpp message')
            await wait_stanza(sam, lambda st_: st_.xml.tag == '{jabber:client}message'
                              and st_['receipt'] == 'slix-1', 'the receipt for slix-1')
            # send → slixmpp.
            n = len(sam.received)
            r = await loop.run_in_executor(None, s.send_ok, acct['alice'], 'sam@localhost', 'to slixmpp')
            got = await wait_stanza(sam, lambda st_: st_.xml.tag == '{jabber:client}message'
                                    and st_['body'] == 'to slixmpp', 'the myna-client message', start=n)
            check(got['from'].bare == 'alice@localhost', 'from %s' % got['from'])
            check(got['type'] == 'chat', 'type %s' % got['type'])
            oid = got.xml.find('{urn:xmpp:sid:0}origin-id')
            check(oid is not None and oid.get('id') == got['id'],
                  'origin-id %s, stanza id %s' % (None if oid is None else oid.get('id'), got['id']))
            # Exactly once on the listen side: a second message, then the count.
            m = sam.make_message(mto='alice@localhost', mbody='slixmpp sentinel', mtype='chat')
            m.send()
            await loop.run_in_executor(None, listen.expect,
                                       is_message('sam@localhost', 'slixmpp sentinel'), 'the sentinel')
            check(count_bodies(listen, 'from slixmpp') == 1, 'the slixmpp message printed %d times'
                  % count_bodies(listen, 'from slixmpp'))
            status = await loop.run_in_executor(None, listen.stop, signal.SIGINT)
            check(status == 0, 'listen after SIGINT: exit %s' % status)
            return r
        finally:
            await close(sam)

    def peer():
        try:
            import slixmpp  # noqa: F401
        except ImportError as e:
            raise Skipped('python3-slixmpp is not importable: %s' % e)
        return asyncio.run(main())
    st.run('slixmpp → listen (once, receipt answered); send → slixmpp (origin-id)', peer)
    st.run('mynad stops cleanly', lambda: check(d.stop() == 0, 'mynad exit status not 0'),
           needs_ok=False)


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in ('mynad', 'prosody', 'slixmpp'):
        print('usage: %s MYNA_CLIENT mynad|prosody|slixmpp' % sys.argv[0], file=sys.stderr)
        return 2
    binary, which = sys.argv[1], sys.argv[2]
    if not os.access(binary, os.X_OK):
        print('%s is not an executable' % binary, file=sys.stderr)
        return 1
    if which == 'prosody':
        if shutil.which('prosody') is None:
            print('SKIP: prosody is not installed (apt-get install prosody): '
                  'the CLI is not checked against Prosody')
            return SKIP
        server = Prosody()
    else:
        if which == 'slixmpp':
            try:
                import slixmpp  # noqa: F401
            except ImportError as e:
                print('SKIP: python3-slixmpp is not importable by %s: %s' % (sys.executable, e))
                return SKIP
        server = Mynad()
    s = Scenario(binary, server)
    try:
        {'mynad': scenario_mynad, 'prosody': scenario_prosody, 'slixmpp': scenario_slixmpp}[which](s)
    finally:
        s.cleanup()
    return s.steps.status()


if __name__ == '__main__':
    sys.exit(main())
