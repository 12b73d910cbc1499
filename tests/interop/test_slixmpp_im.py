#!/usr/bin/python3
"""Instant messaging with slixmpp against mynad on the shipped
configuration: mutual subscription (RFC 6121 roster and presence),
presence broadcast, messages both ways, and offline delivery across a
restart of mynad (XEP-0160, with an XEP-0203 delay)."""
import datetime
import sys
import time
import uuid

import myna_interop as mi
from myna_interop import (StepFailed, check, login, close, wait_stanza, roster_items,
                          is_presence, is_message, NS_ROSTER, NS_DELAY)

ALICE, BOB = 'alice@localhost', 'bob@localhost'
PW_A, PW_B = 'alice-secret-1', 'bob-secret-1'
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)


def is_roster_push(jid, subscription, ask=None):
    def pred(s):
        if s.xml.tag != '{jabber:client}iq' or s.xml.get('type') != 'set':
            return False
        q = s.xml.find('{%s}query' % NS_ROSTER)
        if q is None:
            return False
        for item in q.findall('{%s}item' % NS_ROSTER):
            if (item.get('jid') == jid and item.get('subscription', 'none') == subscription
                    and item.get('ask') == ask):
                return True
        return False
    return pred


def steps(mynad):
    st = {}

    async def start():
        await mynad.astart()

    async def register():
        for jid, pw in ((ALICE, PW_A), (BOB, PW_B)):
            c = await login(jid, pw, mynad.c2s, register=True, **SCRAM)
            await close(c)
            check(c.registered is True, 'registration of %s: %s' % (jid, c.registered))

    async def online(jid, pw, direct_tls, resource):
        addr = mynad.c2s_tls if direct_tls else mynad.c2s
        c = await login(jid, pw, addr, direct_tls=direct_tls, resource=resource, **SCRAM)
        st.setdefault('clients', []).append(c)
        roster = await mi.bounded(roster_items(c), 'the roster of %s' % jid)
        c.send_presence()
        # Our own initial presence comes back (RFC 6121 s4.2.2).
        await wait_stanza(c, is_presence(str(c.boundjid)), 'our own initial presence')
        return c, roster

    async def both_online():
        st['a'], ra = await online(ALICE, PW_A, False, 'laptop')
        st['b'], rb = await online(BOB, PW_B, True, 'phone')
        check(ra == {} and rb == {}, 'rosters should start empty: %s, %s' % (ra, rb))
        return 'alice over STARTTLS as %s, bob over direct TLS as %s' % (st['a'].boundjid,
                                                                         st['b'].boundjid)

    async def alice_subscribes():
        a, b = st['a'], st['b']
        a.send_presence(pto=BOB, ptype='subscribe')
        await wait_stanza(a, is_roster_push(BOB, 'none', 'subscribe'),
                          'a roster push of bob with ask="subscribe"')
        await wait_stanza(b, is_presence(ALICE, 'subscribe'), 'the subscription request of alice')

    async def bob_approves():
        a, b = st['a'], st['b']
        b.send_presence(pto=ALICE, ptype='subscribed')
        await wait_stanza(b, is_roster_push(ALICE, 'from'), 'a roster push of alice with "from"')
        await wait_stanza(a, is_roster_push(BOB, 'to'), 'a roster push of bob with "to"')
        await wait_stanza(a, is_presence(BOB, 'subscribed'), '<presence type="subscribed"/> from bob')
        # RFC 6121 s3.1.5: the contact's available presence follows.
        await wait_stanza(a, is_presence(str(b.boundjid)), 'the available presence of bob')

    async def bob_subscribes():
        a, b = st['a'], st['b']
        b.send_presence(pto=ALICE, ptype='subscribe')
        await wait_stanza(b, is_roster_push(ALICE, 'from', 'subscribe'),
                          'a roster push of alice with "from" and ask="subscribe"')
        await wait_stanza(a, is_presence(BOB, 'subscribe'), 'the subscription request of bob')
        a.send_presence(pto=BOB, ptype='subscribed')
        await wait_stanza(a, is_roster_push(BOB, 'both'), 'a roster push of bob with "both"')
        await wait_stanza(b, is_roster_push(ALICE, 'both'), 'a roster push of alice with "both"')
        await wait_stanza(b, is_presence(ALICE, 'subscribed'), '<presence type="subscribed"/> from alice')
        await wait_stanza(b, is_presence(str(a.boundjid)), 'the available presence of alice')

    async def rosters_both():
        ra = await mi.bounded(roster_items(st['a']), 'the roster of alice')
        rb = await mi.bounded(roster_items(st['b']), 'the roster of bob')
        check(ra == {BOB: ('both', None)}, 'roster of alice: %s' % ra)
        check(rb == {ALICE: ('both', None)}, 'roster of bob: %s' % rb)
        return 'alice: %s; bob: %s' % (ra, rb)

    async def presence_broadcast():
        a, b = st['a'], st['b']
        na, nb = len(b.received), len(a.received)
        a.send_presence(pshow='away', pstatus='alice is away')
        b.send_presence(pshow='chat', pstatus='bob wants to chat')
        p = await wait_stanza(b, lambda s: is_presence(str(a.boundjid))(s)
                              and s['status'] == 'alice is away', 'the new presence of alice', start=na)
        check(p['show'] == 'away', 'show of alice: %r' % p['show'])
        p = await wait_stanza(a, lambda s: is_presence(str(b.boundjid))(s)
                              and s['status'] == 'bob wants to chat', 'the new presence of bob', start=nb)
        check(p['show'] == 'chat', 'show of bob: %r' % p['show'])

    async def messages():
        a, b = st['a'], st['b']
        t1, t2 = 'hello bob ' + uuid.uuid4().hex, 'hello alice ' + uuid.uuid4().hex
        a.send_message(mto=BOB, mbody=t1, mtype='chat')
        m = await wait_stanza(b, is_message(ALICE, t1), 'the message from alice')
        check(str(m['from']) == str(a.boundjid), 'from %s, not the full JID of alice' % m['from'])
        b.send_message(mto=a.boundjid, mbody=t2, mtype='chat')
        m = await wait_stanza(a, is_message(BOB, t2), 'the message from bob')
        check(str(m['from']) == str(b.boundjid), 'from %s' % m['from'])
        check(m.xml.find('{%s}delay' % NS_DELAY) is None, 'a live message carries a delay')

    async def bob_logs_out():
        a, b = st['a'], st['b']
        n = len(a.received)
        await close(b)
        await wait_stanza(a, is_presence(str(b.boundjid), 'unavailable'),
                          'the unavailable presence of bob', start=n)

    async def offline_message():
        a = st['a']
        st['offline_body'] = 'while you were away ' + uuid.uuid4().hex
        st['sent_at'] = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        a.send_message(mto=BOB, mbody=st['offline_body'], mtype='chat')
        # The ping is handled after the message on the same stream.
        await mi.bounded(a['xep_0199'].ping(jid='localhost', timeout=mi.TIMEOUT),
                         'a ping reply after the message')
        await close(a)

    async def restart():
        t0 = time.monotonic()
        await mynad.astop()
        await mynad.astart()
        return 'stop + start in %.2fs' % (time.monotonic() - t0)

    async def offline_delivered():
        c, roster = await online(BOB, PW_B, False, 'desktop')
        st['b2'] = c
        m = await wait_stanza(c, is_message(ALICE, st['offline_body']), 'the offline message')
        d = m.xml.find('{%s}delay' % NS_DELAY)
        check(d is not None, 'the offline message has no <delay xmlns="%s"/>: %s' % (NS_DELAY, m))
        stamp = d.get('stamp', '')
        try:
            when = datetime.datetime.fromisoformat(stamp.replace('Z', '+00:00'))
        except ValueError:
            raise StepFailed('delay stamp %r is no XEP-0082 date-time' % stamp) from None
        now = datetime.datetime.now(datetime.timezone.utc)
        check(when.tzinfo is not None, 'delay stamp %r has no time zone' % stamp)
        check(st['sent_at'] - datetime.timedelta(seconds=2) <= when <= now + datetime.timedelta(seconds=2),
              'delay stamp %s is not between the send (%s) and now (%s)' % (stamp, st['sent_at'], now))
        check(m['type'] == 'chat', 'type %r' % m['type'])
        st['roster_after'] = roster
        return 'delay from=%s stamp=%s' % (d.get('from'), stamp)

    async def roster_persisted():
        check(st['roster_after'] == {ALICE: ('both', None)},
              'the roster of bob after the restart: %s' % st['roster_after'])

    async def stop():
        await close(st['b2'])
        await mynad.astop()
        return 'mynad started %d times: %s' % (len(mynad.starts),
                                               ', '.join('%.2fs' % t for t in mynad.starts))

    async def cleanup_clients():
        for c in st.get('clients', []):
            await close(c)

    return [
        ('mynad starts on the shipped configuration', start),
        ('register alice and bob in-band', register),
        ('alice (STARTTLS) and bob (direct TLS) log in, fetch rosters, send presence', both_online),
        ('3. alice subscribes to bob: roster push ask=subscribe, bob gets the request', alice_subscribes),
        ('3. bob approves: pushes from/to, alice gets subscribed and bob\'s presence', bob_approves),
        ('3. bob subscribes to alice and she approves: pushes say both', bob_subscribes),
        ('3. both rosters (fetched without ver) say subscription="both"', rosters_both),
        ('3. presence broadcast both ways (show and status)', presence_broadcast),
        ('3. chat messages both ways', messages),
        ('4. bob logs out: alice sees him unavailable', bob_logs_out),
        ('4. alice sends bob a message while he is offline', offline_message),
        ('4. mynad restarts (SIGTERM, same data dir and ports)', restart),
        ('4. bob logs in after the restart and gets the message with a delay', offline_delivered),
        ('4. the roster survived the restart', roster_persisted),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup_clients


if __name__ == '__main__':
    sys.exit(mi.main(steps, name='im'))
