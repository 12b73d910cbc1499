#!/usr/bin/python3
"""External components (XEP-0114) through slixmpp's own ComponentXMPP,
against mynad on the shipped configuration plus
[component:gw.localhost] served by the component module: the handshake
(a wrong secret refused with not-authorized, a second connection with
conflict), messages both ways between a client and JIDs of the
component's domain, the component's own disco answer, an iq from the
component to a client and its result, a `from` outside the domain ending
the stream with invalid-from, and service-unavailable once the component
is gone; a reload of the module disconnects it and it connects again."""
import asyncio
import hashlib
import re
import socket
import sys

import myna_interop as mi
from myna_interop import check, login, close, wait_stanza, is_message

ALICE, PW_A = 'alice@localhost', 'alice-secret-1'
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)
DOMAIN = 'gw.localhost'
SECRET = 'gateway-secret-1'
NS = 'jabber:component:accept'


def raw_open(port):
    """A plain socket with a component stream opened to DOMAIN; returns
    (socket, stream id)."""
    s = socket.create_connection(('127.0.0.1', port), timeout=mi.TIMEOUT)
    s.sendall(("<?xml version='1.0'?><stream:stream xmlns='%s' "
               "xmlns:stream='http://etherx.jabber.org/streams' to='%s'>" % (NS, DOMAIN)).encode())
    data = b''
    while b'id=' not in data or b'>' not in data[data.find(b'id='):]:
        chunk = s.recv(4096)
        check(chunk, 'the listener closed before its stream header: %r' % data)
        data += chunk
    m = re.search(rb"id=['\"]([^'\"]+)['\"]", data)
    return s, m.group(1).decode()


def raw_until_closed(s):
    """Everything the server sends until it closes the connection."""
    data = b''
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return data.decode(errors='replace')
        data += chunk


def handshake(sid, secret):
    return '<handshake>%s</handshake>' % hashlib.sha1((sid + secret).encode()).hexdigest()


def steps(mynad):
    st = {}

    async def start():
        mynad.configure()
        st['port'] = mi.free_port()
        text = mynad.conf.read_text()
        text += ('\n[module:component]\nport = %d\n'
                 '\n[component:%s]\nmodule = component\ncomponent.secret = %s\n'
                 % (st['port'], DOMAIN, SECRET))
        mynad.conf.write_text(text)
        await mynad.astart()
        rc, out, err = mynad.mynactl('user', 'add', ALICE, input=PW_A + '\n')
        check(rc == 0, 'mynactl user add: %s%s' % (out, err))
        st['a'] = await login(ALICE, PW_A, mynad.c2s, resource='gw', **SCRAM)

    async def not_connected():
        c = st['a']
        start = len(c.received)
        c.send_message(mto='bob@%s' % DOMAIN, mbody='anyone?', mtype='chat')
        err = await wait_stanza(c, lambda s: s['type'] == 'error'
                                and s['from'].bare == 'bob@%s' % DOMAIN,
                                'the error for a message to an unconnected component',
                                start=start)
        check(err['error']['condition'] == 'service-unavailable',
              'not service-unavailable: %s' % err)

    async def wrong_secret():
        s, sid = await asyncio.to_thread(raw_open, st['port'])
        s.sendall(handshake(sid, 'not-the-secret').encode())
        out = await asyncio.to_thread(raw_until_closed, s)
        s.close()
        check('<not-authorized' in out, 'no not-authorized stream error: %s' % out)

    async def connect():
        import slixmpp
        comp = slixmpp.ComponentXMPP(DOMAIN, SECRET, '127.0.0.1', st['port'])
        comp.register_plugin('xep_0030')
        comp.register_plugin('xep_0199')
        comp['xep_0030'].add_identity(category='gateway', itype='xmpp', name='Test gateway',
                                      jid=DOMAIN)
        comp.received = []
        comp.changed = asyncio.Event()
        comp.stream_errors = []

        def got(stanza):
            comp.received.append(stanza)
            comp.changed.set()
        comp.add_event_handler('message', got)
        comp.add_event_handler('presence', got)
        started = asyncio.get_running_loop().create_future()
        comp.add_event_handler('session_start', lambda _: started.done() or started.set_result(True))
        comp.connect()
        await mi.bounded(started, 'the component session (handshake accepted)')
        st['comp'] = comp

    async def conflict():
        s, sid = await asyncio.to_thread(raw_open, st['port'])
        s.sendall(handshake(sid, SECRET).encode())
        out = await asyncio.to_thread(raw_until_closed, s)
        s.close()
        check('<conflict' in out, 'no conflict stream error: %s' % out)

    async def to_component():
        comp = st['comp']
        start = len(comp.received)
        st['a'].send_message(mto='bob@%s' % DOMAIN, mbody='hello gateway', mtype='chat')
        m = await wait_stanza(comp, lambda s: s['body'] == 'hello gateway',
                              'the message at the component', start=start)
        check(str(m['from']) == '%s/gw' % ALICE, 'from is %s' % m['from'])
        check(str(m['to']) == 'bob@%s' % DOMAIN, 'to is %s' % m['to'])
        check(m.xml.tag == '{%s}message' % NS, 'the stanza is in %s' % m.xml.tag)

    async def from_component():
        c = st['a']
        start = len(c.received)
        st['comp'].send_message(mto='%s/gw' % ALICE, mfrom='bob@%s/phone' % DOMAIN,
                                mbody='hello alice', mtype='chat')
        await wait_stanza(c, is_message('bob@%s' % DOMAIN, 'hello alice'),
                          'the component\'s message', start=start)

    async def disco():
        r = await mi.bounded(st['a']['xep_0030'].get_info(jid=DOMAIN, timeout=mi.TIMEOUT),
                             'disco#info of the component')
        ids = [(i[0], i[1], i[3]) for i in r['disco_info']['identities']]
        check(('gateway', 'xmpp', 'Test gateway') in ids,
              'the answer is not the component\'s own: %s' % ids)

    async def iq_to_client():
        rtt = await mi.bounded(st['comp']['xep_0199'].ping(jid='%s/gw' % ALICE, ifrom=DOMAIN,
                                                           timeout=mi.TIMEOUT),
                               'the ping result from alice')
        return 'rtt %.1fms' % (rtt * 1000)

    async def reload():
        comp = st['comp']
        gone = asyncio.get_running_loop().create_future()
        errors = []
        comp.add_event_handler('stream_error', lambda e: errors.append(e['condition']))
        comp.add_event_handler('disconnected', lambda _: gone.done() or gone.set_result(True))
        rc, out, err = mynad.mynactl('reload', 'component')
        check(rc == 0, 'mynactl reload component: %s%s' % (out, err))
        await mi.bounded(gone, 'the component to be disconnected by the reload')
        check('system-shutdown' in errors, 'stream errors: %s' % errors)
        comp.disconnect()
        del st['comp']
        await connect()
        await from_component()

    async def bad_from():
        comp = st['comp']
        gone = asyncio.get_running_loop().create_future()
        comp.add_event_handler('disconnected', lambda _: gone.done() or gone.set_result(True))
        comp.add_event_handler('stream_error', lambda e: comp.stream_errors.append(e))
        comp.send_message(mto='%s/gw' % ALICE, mfrom='mallory@localhost', mbody='spoofed')
        await mi.bounded(gone, 'the component\'s stream to end')
        check(any(e['condition'] == 'invalid-from' for e in comp.stream_errors),
              'no invalid-from stream error: %s' % comp.stream_errors)
        c = st['a']
        check(not [s for s in c.received if s['body'] == 'spoofed'], 'the spoofed message arrived')
        comp.disconnect()
        del st['comp']

    async def gone():
        await not_connected()

    async def stop():
        await close(st['a'])
        await mynad.astop()

    async def cleanup():
        if 'a' in st:
            await close(st['a'])
        if 'comp' in st:
            st['comp'].disconnect()

    return [
        ('mynad starts with [component:%s] served by the component module' % DOMAIN, start),
        ('a message to the domain while no component is connected: service-unavailable',
         not_connected),
        ('a handshake with the wrong secret: not-authorized', wrong_secret),
        ('slixmpp\'s ComponentXMPP connects with the secret', connect),
        ('a second connection for the domain: conflict, the first stays', conflict),
        ('a client\'s message reaches the component in jabber:component:accept', to_component),
        ('the component\'s message from bob@%s reaches the client' % DOMAIN, from_component),
        ('disco#info of the domain is the component\'s own answer', disco),
        ('the component pings the client and gets the result', iq_to_client),
        ('mynactl reload component: the component is told system-shutdown and connects again',
         reload),
        ('a stanza from outside the domain ends the stream with invalid-from', bad_from),
        ('the component gone, messages to its domain get service-unavailable again', gone),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup


if __name__ == '__main__':
    sys.exit(mi.main(steps, name='component'))
