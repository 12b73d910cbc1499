#!/usr/bin/python3
"""plugins/live-test.py: the example plugins on a running server, run by
plugins/build-and-test.sh after it has staged the main project and
installed plugins/hello and plugins/broadcast into the staged moduledir.

It starts the given (staged) mynad on the shipped configuration, rewritten
by tests/interop/myna_interop.py for a temporary data directory and
ephemeral ports on 127.0.0.1, with module_path = the staged moduledir,
hello added to the [global] modules and a [component:broadcast.localhost]
served by broadcast; creates users with the given mynactl; connects live
slixmpp clients and checks that:
  - hello answers its IQ, and `mynactl reload hello` with the clients
    connected keeps its count and every client connected;
  - broadcast (disco#info: its identity and feature) copies a message to
    contacts@broadcast.localhost to the sender's contact with a "from"
    subscription (with XEP-0033 ofrom), not to one with "to" only, and
    confirms to the sender; it still does after `mynactl reload broadcast`
    with the clients connected;
  - the roster module of localhost, whose roster/1 service broadcast uses
    (a component's modules use their main host's services), cannot be
    unloaded while broadcast uses it, and broadcast still delivers after
    `mynactl reload roster`;
  - with max_recipients = 1, a broadcast to two contacts is refused;
  - `mynactl unload hello` drops its state (hello is lazy: the next IQ
    opens a fresh instance, whose count starts again);
  - after `mynactl unload broadcast` the component answers
    service-unavailable, and `mynactl load` brings it back;
  - push_webhook, serving [component:push.localhost] as a XEP-0357 app
    server: alice enables push there and leaves, bob writes to her, the
    shipped cloud_notify publishes, and the plugin POSTs the JSON to an
    HTTP sink this script runs, which answers 503 first (the plugin
    retries), then 200.
Prints TAP; every wait is bounded; mynad is stopped (killed if need be) on
exit.  Run with the environment the server should see (build-and-test.sh
unsets LD_LIBRARY_PATH: the staged binaries' RUNPATH must find libmyna).

  live-test.py --mynad PATH --mynactl PATH --moduledir DIR [--dir DIR]
"""
import argparse
import asyncio
import http.server
import json
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / 'tests' / 'interop'))

import myna_interop as mi                                   # noqa: E402
from myna_interop import check, login, close, wait_stanza   # noqa: E402

NS_HELLO = 'urn:example:hello'
NS_BROADCAST = 'urn:example:broadcast'
NS_ADDRESS = 'http://jabber.org/protocol/address'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
COMPONENT = 'broadcast.localhost'
SERVICE = 'contacts@' + COMPONENT
PUSH = 'push.localhost'
NS_PUSH = 'urn:xmpp:push:0'
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)
USERS = {'alice': 'alice-pw-1', 'bob': 'bob-pw-2', 'carol': 'carol-pw-3'}


def jid(name):
    return '%s@localhost' % name


def from_service(body_prefix):
    """A message from contacts@DOMAIN whose body starts with @body_prefix."""
    def pred(s):
        return (s.xml.tag == '{jabber:client}message' and str(s['from']) == SERVICE
                and (s['body'] or '').startswith(body_prefix))
    return pred


class Sink(http.server.BaseHTTPRequestHandler):
    """The webhook: 503 to the first POST, then 200, keeping the bodies."""
    hits = 0
    bodies = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', '0')))
        Sink.hits += 1
        if Sink.hits == 1:
            self.send_response(503)
        else:
            Sink.bodies.append(json.loads(body))
            self.send_response(200)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, *args):
        pass


def steps(mynad, args):
    st = {}
    sink = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()

    def ctl(*argv):
        rc, out, err = mynad.mynactl(*argv)
        check(rc == 0, 'mynactl %s: exit %d: %s%s' % (' '.join(argv), rc, out, err))
        return out

    async def start():
        mynad.configure()
        text = mynad.conf.read_text()
        text = text.replace('[global]\n', '[global]\nmodule_path = %s\n' % args.moduledir, 1)
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.startswith('modules = '):       # the [global] list comes first
                lines[i] = line + ';hello'
                break
        else:
            raise mi.StepFailed('no modules = line in the shipped configuration')
        text = '\n'.join(lines) + '\n'
        text += '\n[component:%s]\nmodule = broadcast\n' % COMPONENT
        # alice has one contact who may see her presence until the last
        # step, which adds a second one.
        text += '\n[module:broadcast]\nmax_recipients = 1\n'
        text += ('\n[component:%s]\nmodule = push_webhook\n'
                 '\n[module:push_webhook]\nwebhook_url = http://127.0.0.1:%d/push\n'
                 'initial_delay = 100ms\n' % (PUSH, sink.server_address[1]))
        mynad.conf.write_text(text)
        await mynad.astart()
        for name, pw in USERS.items():
            rc, out, err = mynad.mynactl('user', 'add', jid(name), input=pw + '\n')
            check(rc == 0, 'mynactl user add %s: %s%s' % (name, out, err))
        out = ctl('modules')
        for m in ('hello', 'broadcast', 'roster', 'push_webhook'):
            check(m in out, '%s missing from mynactl modules:\n%s' % (m, out))
        return 'mynad %s' % args.mynad

    async def online():
        for name, pw in USERS.items():
            st[name] = await login(jid(name), pw, mynad.c2s, resource='live', **SCRAM)
            # Available: subscription requests and chat messages to the
            # bare JID are delivered to available resources only.
            st[name].send_presence()

    async def subscribe(watcher, owner):
        """@watcher subscribes to @owner's presence and @owner approves."""
        w, o = st[watcher], st[owner]
        start_o, start_w = len(o.received), len(w.received)
        w.send_presence(pto=jid(owner), ptype='subscribe')
        await wait_stanza(o, mi.is_presence(jid(watcher), 'subscribe'),
                          'the subscription request of %s' % watcher, start=start_o)
        o.send_presence(pto=jid(watcher), ptype='subscribed')
        await wait_stanza(w, mi.is_presence(jid(owner), 'subscribed'),
                          'the approval of %s' % owner, start=start_w)

    async def rosters():
        # bob may see alice's presence (alice: from); alice sees carol's
        # (alice: to), carol does not see alice's.
        await subscribe('bob', 'alice')
        await subscribe('alice', 'carol')
        items = await mi.bounded(mi.roster_items(st['alice']), "alice's roster")
        check(items.get(jid('bob'), (None,))[0] == 'from', "alice's roster: %s" % items)
        check(items.get(jid('carol'), (None,))[0] == 'to', "alice's roster: %s" % items)

    async def hello_count(c):
        iq = c.Iq()
        iq['type'] = 'get'
        iq['to'] = 'localhost'
        iq.append(ET.Element('{%s}hello' % NS_HELLO))
        res = await iq.send(timeout=mi.TIMEOUT)
        h = res.xml.find('{%s}hello' % NS_HELLO)
        check(h is not None, 'hello result without <hello/>: %s' % res)
        return int(h.findtext('{%s}count' % NS_HELLO))

    async def hello_iq():
        st['count'] = await hello_count(st['alice'])
        check(st['count'] >= 1, 'count %d' % st['count'])
        return 'count %d' % st['count']

    async def all_connected(what):
        """Every client still has its stream, and the server answers each."""
        for name, c in st.items():
            if name in USERS:
                check(c.transport is not None, '%s was disconnected %s' % (name, what))
                await mi.bounded(c['xep_0199'].ping(jid='localhost', timeout=mi.TIMEOUT),
                                 'a ping answer to %s %s' % (name, what))

    async def reload_hello():
        ctl('reload', 'hello')
        await all_connected('by mynactl reload hello')
        count = await hello_count(st['alice'])
        check(count == st['count'] + 1, 'count after reload: %d, before: %d'
              % (count, st['count']))
        return 'count %d kept' % count

    async def disco():
        r = await mi.bounded(st['alice']['xep_0030'].get_info(jid=COMPONENT, timeout=mi.TIMEOUT),
                             'disco#info of %s' % COMPONENT)
        q = r['disco_info']
        ids = [(i[0], i[1]) for i in q['identities']]
        check(('component', 'generic') in ids, 'identities: %s' % ids)
        check(NS_BROADCAST in set(q['features']), 'features: %s' % sorted(q['features']))

    async def broadcast(text):
        a, b, c = st['alice'], st['bob'], st['carol']
        sa, sb, sc = len(a.received), len(b.received), len(c.received)
        a.send_message(mto=SERVICE, mbody=text, mtype='chat')
        got = await wait_stanza(b, from_service('%s: %s' % (jid('alice'), text)),
                                'the broadcast copy at bob', start=sb)
        ofrom = [e.get('jid') for e in got.xml.iter('{%s}address' % NS_ADDRESS)
                 if e.get('type') == 'ofrom']
        check(ofrom == [jid('alice')], 'XEP-0033 ofrom: %s in %s' % (ofrom, got))
        await wait_stanza(a, from_service('Sent to 1 contact'), 'the confirmation', start=sa)
        # carol (alice: "to" only) must not get it: a message alice sends
        # her afterwards arrives after anything the broadcast sent her.
        a.send_message(mto=jid('carol'), mbody='marker %s' % text, mtype='chat')
        await wait_stanza(c, mi.is_message(jid('alice'), 'marker %s' % text),
                          'the marker at carol', start=sc)
        leaked = [s for s in c.received[sc:] if str(s['from']) == SERVICE]
        check(not leaked, 'carol got the broadcast: %s' % leaked)

    async def broadcast_first():
        await broadcast('hi all')

    async def other_jid():
        await service_unavailable('nobody@' + COMPONENT)

    async def reload_broadcast():
        ctl('reload', 'broadcast')
        await all_connected('by mynactl reload broadcast')
        await broadcast('again')

    async def roster_in_use():
        # localhost's roster module, whose service broadcast uses, cannot
        # go while broadcast is loaded; reloading it re-binds broadcast's
        # handle, and broadcast still delivers.  No roster module is loaded
        # on the component itself.
        rc, out, err = mynad.mynactl('unload', 'roster', 'localhost')
        check(rc != 0 and 'broadcast' in out + err,
              'mynactl unload roster localhost: exit %d: %s%s' % (rc, out, err))
        rc, out, err = mynad.mynactl('modules')
        roster_line = [l for l in out.splitlines() if l.startswith('roster ')]
        check(roster_line and COMPONENT not in roster_line[0],
              'roster loaded on the component: %s' % roster_line)
        ctl('reload', 'roster')
        await all_connected('by mynactl reload roster')
        await broadcast('after the roster reload')

    async def unload_hello():
        # hello is lazy: its routes stay after an unload, and the next
        # hello IQ opens a fresh instance (docs/modules.md §6), so the
        # count starts again from 1.
        ctl('unload', 'hello')
        count = await hello_count(st['alice'])
        check(count == 1, 'count after unload: %d (expected a fresh instance: 1)' % count)
        return 'fresh instance, count %d' % count

    async def unload_broadcast():
        # A component's module is not lazy: unloaded, the domain answers
        # errors until `mynactl load`.
        ctl('unload', 'broadcast')
        routes = ctl('routes')
        check(any(COMPONENT in l and '(not loaded)' in l for l in routes.splitlines()),
              'mynactl routes after unload:\n%s' % routes)
        await service_unavailable(SERVICE)
        ctl('load', 'broadcast', COMPONENT)
        await broadcast('after load')

    async def service_unavailable(to):
        a = st['alice']
        sa = len(a.received)
        a.send_message(mto=to, mbody='anyone?', mtype='chat')
        err = await wait_stanza(a, lambda s: (str(s['from']) == to
                                              and s.xml.get('type') == 'error'),
                                'the error from %s' % to, start=sa)
        check(err.xml.find('{jabber:client}error/{%s}service-unavailable' % NS_STANZAS)
              is not None, 'not service-unavailable: %s' % err)

    async def too_many():
        await subscribe('carol', 'alice')
        a = st['alice']
        sa = len(a.received)
        a.send_message(mto=SERVICE, mbody='to two', mtype='chat')
        err = await wait_stanza(a, lambda s: (str(s['from']) == SERVICE
                                              and s.xml.get('type') == 'error'),
                                'the error from %s' % SERVICE, start=sa)
        check(err.xml.find('{jabber:client}error/{%s}policy-violation' % NS_STANZAS)
              is not None, 'not policy-violation: %s' % err)
        return err.xml.findtext('{jabber:client}error/{%s}text' % NS_STANZAS)

    async def push():
        iq = st['alice'].Iq()
        iq['type'] = 'set'
        iq.append(ET.Element('{%s}enable' % NS_PUSH, jid=PUSH, node='live-node'))
        await iq.send(timeout=mi.TIMEOUT)
        await close(st.pop('alice'))
        # Until the server has seen alice leave, bob's message reaches her
        # session and nothing is pushed: bob writes again, bounded.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + mi.TIMEOUT
        while not Sink.bodies and loop.time() < deadline:
            st['bob'].send_message(mto=jid('alice'), mbody='wake up', mtype='chat')
            for _ in range(10):
                if Sink.bodies:
                    break
                await asyncio.sleep(0.1)
        check(Sink.bodies, 'no POST reached the webhook (%d attempt(s))' % Sink.hits)
        check(Sink.hits >= 2, 'the 503 was not retried: %d hit(s)' % Sink.hits)
        got = Sink.bodies[0]
        check(got.get('node') == 'live-node' and got.get('message_count', 0) >= 1
              and str(got.get('last_sender', '')).startswith(jid('bob')),
              'the webhook got: %s' % got)
        st['alice'] = await login(jid('alice'), USERS['alice'], mynad.c2s, resource='live',
                                  **SCRAM)
        return '%d POST(s), %s' % (Sink.hits, json.dumps(got))

    async def stop():
        sink.shutdown()
        for name in USERS:
            await close(st.pop(name))
        await mynad.astop()
        bad = [l for l in mynad.lines
               if l is not None and any(' %s ' % w in l for w in ('WARNING', 'CRITICAL', 'ERROR'))]
        check(not bad, 'mynad logged:\n%s' % '\n'.join(bad))

    async def cleanup():
        for name in USERS:
            if name in st:
                await close(st[name])

    return [
        ('the staged mynad starts with hello and [component:%s]' % COMPONENT, start),
        ('alice, bob and carol log in', online),
        ('bob subscribes to alice, alice to carol', rosters),
        ('hello answers its IQ', hello_iq),
        ('mynactl reload hello: count kept, clients connected', reload_hello),
        ('disco#info of %s: component/generic and %s' % (COMPONENT, NS_BROADCAST), disco),
        ('a broadcast reaches bob (from), not carol (to), and alice gets a receipt',
         broadcast_first),
        ('another JID of the component: service-unavailable', other_jid),
        ('mynactl reload broadcast with clients connected, then it still delivers',
         reload_broadcast),
        ('the roster used from the component: unload refused, reload re-binds', roster_in_use),
        ('mynactl unload hello: the next IQ opens a fresh instance', unload_hello),
        ('mynactl unload broadcast: service-unavailable until mynactl load',
         unload_broadcast),
        ('max_recipients = 1 and two contacts: policy-violation', too_many),
        ('push_webhook: a message to offline alice becomes a POST, retried after a 503',
         push),
        ('mynad stops cleanly on SIGTERM, having logged no warning', stop),
    ], cleanup


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--mynad', required=True)
    p.add_argument('--mynactl', required=True)
    p.add_argument('--moduledir', required=True)
    args = p.parse_args()

    def make(mynad):
        mynad.bin, mynad.ctl = Path(args.mynad), Path(args.mynactl)
        return steps(mynad, args)
    return mi.main(make, name='plugins')


if __name__ == '__main__':
    sys.exit(main())
