#!/usr/bin/python3
"""Stream management (XEP-0198) with slixmpp's xep_0198 plugin against
mynad on the shipped configuration: alice enables stream management with
resumption, messages flow and are acknowledged, her transport is killed
abruptly (no </stream:stream>), bob writes to her meanwhile, slixmpp
reconnects and resumes the session, and every message arrives exactly
once; bob never sees her go unavailable.  Then `mynactl reload sm` with
the session live: the acks go on, consistent with slixmpp's counts; and a
second <enable/> gets <failed><unexpected-request/></failed> while the
stream stays."""
import asyncio
import logging
import sys
import uuid

import myna_interop as mi
from myna_interop import (StepFailed, check, login, close, wait_stanza, roster_items,
                          is_presence, is_message)

ALICE, BOB = 'alice@localhost', 'bob@localhost'
PW_A, PW_B = 'alice-secret-1', 'bob-secret-1'
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)


class _Complaints(logging.Handler):
    """slixmpp's xep_0198 errors (such as 'Inconsistent sequence numbers
    from the server'), kept for a check."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.seen = []

    def emit(self, record):
        self.seen.append(record.getMessage())


def steps(mynad):
    st = {'bodies': []}
    complaints = _Complaints()
    logging.getLogger('slixmpp.plugins.xep_0198').addHandler(complaints)

    def event_future(c, name):
        fut = asyncio.get_running_loop().create_future()

        def done(e):
            if not fut.done():
                fut.set_result(e)
        c.add_event_handler(name, done)
        return fut

    async def start():
        await mynad.astart()

    async def register():
        for jid, pw in ((ALICE, PW_A), (BOB, PW_B)):
            c = await login(jid, pw, mynad.c2s, register=True, **SCRAM)
            await close(c)
            check(c.registered is True, 'registration of %s: %s' % (jid, c.registered))

    async def online_with_sm():
        c = mi.make_slixmpp_client(ALICE, PW_A, resource='phone', **SCRAM)
        c.register_plugin('xep_0198')
        c['xep_0198'].window = 1           # ask for an ack after every stanza
        st['enabled'] = event_future(c, 'sm_enabled')
        c.connect(address=mynad.c2s, force_starttls=True)
        result = await mi.bounded(asyncio.shield(c.session), 'the login of alice')
        check(result is True, 'login of alice failed: %s' % result)
        enabled = await mi.bounded(st['enabled'], '<enabled/>')
        check(enabled['resume'] in (True, 'true', '1'), 'resumption not offered: %s' % enabled)
        # The shipped resume_timeout (5m) in seconds.
        check(str(enabled['max']) == '300', '<enabled max=%r/>, not 300' % enabled['max'])
        sm_id = c['xep_0198'].sm_id
        check(sm_id is not None and len(sm_id) == 32, 'resumption id %r' % sm_id)
        st['a'] = c
        await mi.bounded(roster_items(c), 'the roster of alice')
        c.send_presence()
        await wait_stanza(c, is_presence(str(c.boundjid)), 'our own initial presence')
        st['b'] = b = await login(BOB, PW_B, mynad.c2s, resource='desk', **SCRAM)
        b.send_presence()
        await wait_stanza(b, is_presence(str(b.boundjid)), 'the own presence of bob')
        # Friends: bob sees alice's presence (and would see her go).
        c.send_presence(pto=BOB, ptype='subscribe')
        await wait_stanza(b, is_presence(ALICE, 'subscribe'), 'the request of alice')
        b.send_presence(pto=ALICE, ptype='subscribed')
        b.send_presence(pto=ALICE, ptype='probe')
        b.send_presence(pto=ALICE, ptype='subscribe')
        await wait_stanza(c, is_presence(BOB, 'subscribe'), 'the request of bob')
        c.send_presence(pto=BOB, ptype='subscribed')
        await wait_stanza(b, is_presence(str(c.boundjid)), 'the presence of alice')
        return 'id %s, max %s' % (sm_id, enabled['max'])

    async def messages_acked():
        a, b = st['a'], st['b']
        for i in range(3):
            body = 'before %d %s' % (i, uuid.uuid4().hex)
            st['bodies'].append(body)
            b.send_message(mto=a.boundjid, mbody=body, mtype='chat')
            await wait_stanza(a, is_message(BOB, body), 'message %d' % i)
        # alice's own stanzas are acknowledged by the server too.
        acked = event_future(a, 'stanza_acked')
        a.send_message(mto=BOB, mbody='hi bob', mtype='chat')
        await wait_stanza(b, is_message(ALICE, 'hi bob'), 'the message from alice')
        await mi.bounded(acked, 'an <a/> from the server')
        return 'handled by alice: %d' % a['xep_0198'].handled

    async def transport_killed():
        a, b = st['a'], st['b']
        since = len(mynad.lines)
        a.abort()
        line = await mi.bounded(asyncio.get_running_loop().run_in_executor(
            None, lambda: mynad.wait_log('session hibernated', since=since)),
            'mynad to hibernate the session')
        check(line is not None, 'mynad did not hibernate the session: %s' % mynad.tail(10))
        st['b_seen'] = len(b.received)
        for i in range(3):
            body = 'meanwhile %d %s' % (i, uuid.uuid4().hex)
            st['bodies'].append(body)
            b.send_message(mto=ALICE + '/phone', mbody=body, mtype='chat')
        await mi.bounded(b['xep_0199'].ping(jid='localhost', timeout=mi.TIMEOUT), 'a ping of bob')

    async def resumed():
        a = st['a']
        fut = event_future(a, 'session_resumed')
        a.connect(address=mynad.c2s, force_starttls=True)
        await mi.bounded(fut, 'the session to be resumed')
        for body in st['bodies']:
            await wait_stanza(a, is_message(BOB, body), 'message %r' % body)
        await mi.bounded(a['xep_0199'].ping(jid='localhost', timeout=mi.TIMEOUT), 'a ping')
        counts = {body: sum(1 for s in a.received if is_message(BOB, body)(s))
                  for body in st['bodies']}
        twice = {k: v for k, v in counts.items() if v != 1}
        check(not twice, 'messages not received exactly once: %s' % twice)
        return '%d messages, each once' % len(counts)

    async def presence_kept():
        a, b = st['a'], st['b']
        gone = [s for s in b.received[st['b_seen']:]
                if is_presence(str(a.boundjid), 'unavailable')(s)]
        check(not gone, 'bob saw alice unavailable: %s' % gone)
        a.send_message(mto=BOB, mbody='back again', mtype='chat')
        m = await wait_stanza(b, is_message(ALICE, 'back again'), 'the message after resuming')
        check(str(m['from']) == str(a.boundjid), 'from %s' % m['from'])

    async def acks_across_reload():
        a, b = st['a'], st['b']
        # slixmpp 1.8 empties its own unacked queue when it sends <resume/>,
        # so the <resumed h/> acknowledging its last stanza before the cut
        # already made it complain: only what follows the reload counts.
        complaints.seen.clear()
        rc, out, err = await asyncio.get_running_loop().run_in_executor(
            None, lambda: mynad.mynactl('reload', 'sm'))
        check(rc == 0, 'mynactl reload sm: %d %s %s' % (rc, out, err))
        for i in range(3):
            acked = event_future(a, 'stanza_acked')
            body = 'after reload %d' % i
            a.send_message(mto=BOB, mbody=body, mtype='chat')
            await wait_stanza(b, is_message(ALICE, body), 'message %d from alice' % i)
            await mi.bounded(acked, 'the <a/> for message %d' % i)
            body = 'to alice after reload %d' % i
            b.send_message(mto=a.boundjid, mbody=body, mtype='chat')
            await wait_stanza(a, is_message(BOB, body), 'message %d to alice' % i)
        await mi.bounded(a['xep_0199'].ping(jid='localhost', timeout=mi.TIMEOUT), 'a ping')
        # slixmpp asks before it sends: the ping waits for one more <r/>.
        acked = event_future(a, 'stanza_acked')
        a['xep_0198'].request_ack()
        await mi.bounded(acked, 'the <a/> for the ping')
        check(not a['xep_0198'].unacked_queue,
              'still unacknowledged: %d stanza(s)' % len(a['xep_0198'].unacked_queue))
        check(not complaints.seen, 'slixmpp complained: %s' % complaints.seen)
        check(a.transport is not None, 'alice was disconnected')
        return 'last h from the server %d' % a['xep_0198'].last_ack

    async def enable_twice():
        from slixmpp.plugins.xep_0198 import stanza as sm_stanza
        a = st['a']
        failed = event_future(a, 'sm_failed')
        sm_stanza.Enable(a).send()
        f = await mi.bounded(failed, '<failed/> for a second <enable/>')
        check(f.xml.find('{urn:ietf:params:xml:ns:xmpp-stanzas}unexpected-request') is not None,
              'not unexpected-request: %s' % f)
        # The stream goes on.
        await mi.bounded(a['xep_0199'].ping(jid='localhost', timeout=mi.TIMEOUT), 'a ping')

    async def stop():
        await close(st['a'])
        await close(st['b'])
        await mynad.astop()

    async def cleanup_clients():
        for k in ('a', 'b'):
            if k in st:
                await close(st[k])

    return [
        ('mynad starts on the shipped configuration (sm enabled)', start),
        ('register alice and bob in-band', register),
        ('alice logs in with xep_0198, resumption enabled; bob is her contact', online_with_sm),
        ('messages to alice, acks both ways', messages_acked),
        ('alice\'s transport is killed; bob writes meanwhile', transport_killed),
        ('slixmpp resumes: every message exactly once', resumed),
        ('bob never saw alice unavailable; the resumed session sends', presence_kept),
        ('mynactl reload sm: acks go on, consistent with slixmpp', acks_across_reload),
        ('a second <enable/> fails (unexpected-request); the stream stays', enable_twice),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup_clients


if __name__ == '__main__':
    sys.exit(mi.main(steps, name='sm'))
