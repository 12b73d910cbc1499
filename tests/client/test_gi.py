#!/usr/bin/python3
"""test_gi: libmyna-client from Python through GObject-Introspection.

Against a mynad started here (register, sm, offline, push with its http
listener): two Myna.ClientStore + Myna.Client pairs, properties set from
Python, signals connected (state-changed, registered, message-received,
message-state-changed, notification); one registers given credentials,
the other a generated account (jid = the domain); a message each way (the
first reaches DELIVERED through its receipt), an androidpn notification
posted over the HTTP API; then the stores are read from Python and both
log out (state STOPPED).  Every wait runs a GLib.MainLoop with a timeout
guard.  GI_TYPELIB_PATH and LD_LIBRARY_PATH name the build's client dir
(set by meson).

Exit status 0 (all passed), 1 (a check failed), 77 (skipped: no gi or no
typelib).
"""
import os
import re
import sys
import tempfile
import shutil
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_support import SKIP, TIMEOUT, Failed, Mynad, Steps, check, diag  # noqa: E402

try:
    import gi
    gi.require_version('GLib', '2.0')
    from gi.repository import GLib
except (ImportError, ValueError) as e:
    print('SKIP: python3-gi is not importable by %s: %s' % (sys.executable, e))
    sys.exit(SKIP)
try:
    gi.require_version('Myna', '0.1')
    from gi.repository import Myna
except (ImportError, ValueError) as e:
    print('SKIP: the Myna-0.1 typelib is not found (GI_TYPELIB_PATH=%s): %s'
          % (os.environ.get('GI_TYPELIB_PATH'), e))
    sys.exit(SKIP)


class Waiter:
    """Runs a GLib.MainLoop until a condition holds (checked after every
    signal) or a timeout guard fires."""

    def __init__(self):
        self.loop = None
        self.pred = None

    def poke(self):
        if self.loop is not None and self.pred():
            self.loop.quit()

    def until(self, pred, what, timeout=None):
        if pred():
            return
        self.loop, self.pred = GLib.MainLoop(), pred
        fired = []

        def guard():
            fired.append(True)
            self.loop.quit()
            return GLib.SOURCE_REMOVE
        tid = GLib.timeout_add(int((timeout or TIMEOUT) * 1000), guard)
        try:
            self.loop.run()
        finally:
            if not fired:
                GLib.source_remove(tid)
            self.loop, self.pred = None, None
        if not pred():
            raise Failed('no %s within %.0fs' % (what, timeout or TIMEOUT))


WAIT = Waiter()


class Peer:
    """A store, a client and what its signals reported."""

    def __init__(self, name, path, port, jid, password):
        self.name = name
        self.store = Myna.ClientStore.new(str(path))
        self.client = Myna.Client.new(self.store)
        c = self.client
        c.set_property('jid', jid)
        if password is not None:
            c.props.password = password
        c.props.server = '127.0.0.1'
        c.props.port = port
        c.props.tls = Myna.ClientTls.NONE
        c.props.resource = 'gi-' + name
        c.props.heartbeat_interval = 30
        c.props.reconnect_base = 500
        self.states = []          # (state, reason)
        self.registered = []      # JIDs
        self.received = []        # Myna.ClientMessage
        self.msg_states = {}      # id -> [states]
        self.notifications = []
        c.connect('state-changed', self.on_state)
        c.connect('registered', self.on_registered)
        c.connect('message-received', self.on_message)
        c.connect('message-state-changed', self.on_message_state)
        c.connect('notification', self.on_notification)

    def on_state(self, client, state, reason):
        # The argument and the getter must agree.
        self.states.append((int(state), reason, int(client.get_state())))
        WAIT.poke()

    def on_registered(self, client, jid):
        self.registered.append(jid)
        WAIT.poke()

    def on_message(self, client, message):
        # The boxed record is the signal's: copy what is needed now.
        self.received.append({'id': message.id, 'peer': message.peer, 'body': message.body,
                              'direction': message.direction, 'state': message.state})
        WAIT.poke()

    def on_message_state(self, client, mid, state):
        self.msg_states.setdefault(mid, []).append(state)
        WAIT.poke()

    def on_notification(self, client, n):
        self.notifications.append({'id': n.id, 'title': n.title, 'message': n.message, 'uri': n.uri})
        WAIT.poke()

    def state(self):
        return self.client.get_state()


def main():
    mynad = Mynad()
    work = Path(tempfile.mkdtemp(prefix='myna-client-gi-'))
    peers = {}

    def logs():
        diag('---- mynad log tail ----')
        diag('\n'.join(mynad.log.tail(60)) if mynad.log else '')
        for p in peers.values():
            diag('%s states (argument, reason, get_state()): %s' % (p.name, p.states))
    st = Steps(on_fail=logs)
    try:
        st.run('mynad starts', mynad.start)

        def create():
            check(Myna.ClientStore is not None and Myna.Client is not None, 'types')
            peers['a'] = Peer('a', work / 'a' / 'store.db', mynad.port, 'alice@localhost', 'alice-pw-1')
            peers['b'] = Peer('b', work / 'b' / 'store.db', mynad.port, 'localhost', None)
            a = peers['a'].client
            check(a.props.jid == 'alice@localhost', 'jid property reads %r' % a.props.jid)
            check(a.props.port == mynad.port, 'port property reads %r' % a.props.port)
            check(a.props.tls == Myna.ClientTls.NONE, 'tls property reads %r' % a.props.tls)
            check(a.get_state() == Myna.ClientState.STOPPED, 'state before start: %r' % a.get_state())
            check(a.get_store() == peers['a'].store, 'get_store')
            mode = os.stat(work / 'a' / 'store.db').st_mode & 0o777
            check(mode == 0o600, 'store file mode %o' % mode)
        st.run('ClientStore and Client from Python, properties set and read', create)

        def register_both():
            for p in peers.values():
                p.client.start()
            WAIT.until(lambda: all(p.state() == Myna.ClientState.AUTHENTICATED for p in peers.values()),
                       'both clients authenticated')
            a, b = peers['a'], peers['b']
            check(a.registered == ['alice@localhost'], 'a registered %s' % a.registered)
            check(len(b.registered) == 1 and re.fullmatch(r'[a-z0-9]{12}@localhost', b.registered[0]),
                  'b registered %s' % b.registered)
            check(all(s == g for s, _, g in a.states + b.states),
                  'the state-changed argument differs from get_state(): %s' % (a.states + b.states))
            seen = [s for s, _, _ in a.states]
            want = [Myna.ClientState.CONNECTING, Myna.ClientState.CONNECTED, Myna.ClientState.AUTHENTICATED]
            check(seen[:3] == want, 'a states %s' % seen)
            bound = a.client.get_bound_jid()
            check(bound is not None and bound.startswith('alice@localhost/'), 'bound jid %r' % bound)
            return 'b is %s' % b.registered[0]
        st.run('start: both register (given, generated) and log in (signals)', register_both)

        def exchange():
            a, b = peers['a'], peers['b']
            bjid = b.registered[0]
            mid = a.client.send_message(bjid, 'hello from python')
            check(isinstance(mid, str) and mid, 'send_message returned %r' % mid)
            WAIT.until(lambda: any(m['body'] == 'hello from python' for m in b.received),
                       'message-received at b')
            m = next(m for m in b.received if m['body'] == 'hello from python')
            check(m['peer'] == 'alice@localhost', 'peer %r' % m['peer'])
            check(m['direction'] == Myna.ClientDirection.IN, 'direction %r' % m['direction'])
            WAIT.until(lambda: Myna.ClientMessageState.DELIVERED in a.msg_states.get(mid, []),
                       'DELIVERED (receipt) for %s' % mid)
            back = b.client.send_message('alice@localhost', 'hello back')
            WAIT.until(lambda: any(m['body'] == 'hello back' for m in a.received), 'the answer at a')
            WAIT.until(lambda: any(s in (Myna.ClientMessageState.ACKED, Myna.ClientMessageState.DELIVERED)
                                   for s in b.msg_states.get(back, [])), 'ACKED for the answer')
            check(sum(1 for m in b.received if m['body'] == 'hello from python') == 1, 'received twice')
            return 'a: %s' % [int(s) for s in a.msg_states[mid]]
        st.run('a message each way; message-received, message-state-changed', exchange)

        def notification():
            b = peers['b']
            note = mynad.notify(b.registered[0], 'Hi', 'from the back end', 'https://example.com/n')
            WAIT.until(lambda: any(n['id'] == note for n in b.notifications), 'the notification signal')
            n = next(n for n in b.notifications if n['id'] == note)
            check(n['title'] == 'Hi' and n['message'] == 'from the back end'
                  and n['uri'] == 'https://example.com/n', 'notification %s' % n)
            stored = b.store.get_notifications()
            check([x.id for x in stored] == [note], 'stored notifications %s' % [x.id for x in stored])
        st.run('an androidpn notification: the notification signal and the store', notification,
               needs_ok=False)

        def stores():
            a, b = peers['a'], peers['b']
            ok, jid, pw = a.store.get_account()
            check(ok and jid == 'alice@localhost' and pw == 'alice-pw-1', 'a account %s' % ((ok, jid, pw),))
            ok, jid, pw = b.store.get_account()
            check(ok and jid == b.registered[0] and pw and len(pw) >= 16, 'b account %s' % ((ok, jid),))
            msgs = a.store.get_messages(None, 0)
            out = [m for m in msgs if m.direction == Myna.ClientDirection.OUT]
            inn = [m for m in msgs if m.direction == Myna.ClientDirection.IN]
            check(len(out) == 1 and out[0].body == 'hello from python'
                  and out[0].state == Myna.ClientMessageState.DELIVERED
                  and out[0].peer == b.registered[0], 'a out %s' % [(m.body, m.state, m.peer) for m in out])
            check(len(inn) == 1 and inn[0].body == 'hello back' and inn[0].peer == b.registered[0]
                  and inn[0].state == Myna.ClientMessageState.RECEIVED,
                  'a in %s' % [(m.body, m.state, m.peer) for m in inn])
            check(a.store.get_pending() == [], 'a pending %s' % a.store.get_pending())
            check(a.store.get_message(Myna.ClientDirection.OUT, out[0].id).body == 'hello from python',
                  'get_message')
        st.run('the stores read from Python (account, messages, states)', stores, needs_ok=False)

        def logout():
            for p in peers.values():
                p.client.logout()
            WAIT.until(lambda: all(p.state() == Myna.ClientState.STOPPED for p in peers.values()),
                       'both STOPPED after logout')
            for p in peers.values():
                check(p.client.get_bound_jid() is None, '%s: bound jid after logout' % p.name)
        st.run('logout: state STOPPED', logout, needs_ok=False)
    finally:
        peers.clear()
        mynad.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return st.status()


if __name__ == '__main__':
    sys.exit(main())
