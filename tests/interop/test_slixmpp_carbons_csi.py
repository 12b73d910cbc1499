#!/usr/bin/python3
"""Message Carbons (XEP-0280) and Client State Indication (XEP-0352) with
slixmpp's plugins against mynad on the shipped configuration: alice on two
resources enables carbons and each sees what the other received and sent;
her phone goes inactive, her contact's presence updates and chat states
wait (the latest presence only) and arrive in order on <active/>, and a
message with a body arrives at once after what was held."""
import sys
import uuid
import xml.etree.ElementTree as ET

import myna_interop as mi
from myna_interop import StepFailed, check, close, wait_stanza, is_presence, is_message

ALICE, BOB = 'alice@localhost', 'bob@localhost'
PW_A, PW_B = 'alice-secret-2', 'bob-secret-2'
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)
NS_CARBONS = 'urn:xmpp:carbons:2'
NS_FORWARD = 'urn:xmpp:forward:0'
NS_CHATSTATES = 'http://jabber.org/protocol/chatstates'


async def login(jid, password, addr, resource):
    """mi.login with slixmpp's carbons and CSI plugins registered before
    the stream starts (the CSI feature is negotiated with the stream)."""
    c = mi.make_slixmpp_client(jid, password, resource=resource, **SCRAM)
    c.register_plugin('xep_0280')
    c.register_plugin('xep_0352')
    c.connect(address=addr, force_starttls=True)
    result = await mi.bounded(mi.asyncio.shield(c.session), 'the login of %s' % jid)
    if result is not True:
        await close(c)
        raise StepFailed('login of %s failed: %s' % (jid, result))
    return c


def carbon(kind, body):
    """A <received/> or <sent/> carbon (from the own bare JID) wrapping a
    message with @body; the predicate returns it."""
    def pred(s):
        if s.xml.tag != '{jabber:client}message' or s['from'] != s['to'].bare:
            return False
        inner = s.xml.find('{%s}%s/{%s}forwarded/{jabber:client}message'
                           % (NS_CARBONS, kind, NS_FORWARD))
        return inner is not None and inner.findtext('{jabber:client}body') == body
    return pred


def is_chat_state(frm, marker):
    def pred(s):
        return (s.xml.tag == '{jabber:client}message' and str(s['from']) == frm
                and s.xml.find('{%s}composing' % NS_CHATSTATES) is not None
                and s['id'] == marker)
    return pred


def send_composing(c, to, marker):
    m = c.make_message(mto=to, mtype='chat')
    m['id'] = marker
    m.xml.append(ET.Element('{%s}composing' % NS_CHATSTATES))
    m.send()


async def ping(c, what):
    await mi.bounded(c['xep_0199'].ping(jid='localhost', timeout=mi.TIMEOUT), what)


def steps(mynad):
    st = {}

    async def start():
        await mynad.astart()

    async def register():
        for jid, pw in ((ALICE, PW_A), (BOB, PW_B)):
            c = await mi.login(jid, pw, mynad.c2s, register=True, **SCRAM)
            await close(c)
            check(c.registered is True, 'registration of %s: %s' % (jid, c.registered))

    async def online():
        for key, jid, pw, res in (('laptop', ALICE, PW_A, 'laptop'), ('phone', ALICE, PW_A, 'phone'),
                                  ('bob', BOB, PW_B, 'desk')):
            c = await login(jid, pw, mynad.c2s, res)
            st[key] = c
            st.setdefault('clients', []).append(c)
            await mi.bounded(mi.roster_items(c), 'the roster of %s' % c.boundjid)
            c.send_presence()
            await wait_stanza(c, is_presence(str(c.boundjid)), 'our own initial presence')
        info = await st['laptop']['xep_0030'].get_info(jid='localhost', timeout=mi.TIMEOUT)
        check(NS_CARBONS in info['disco_info']['features'],
              'localhost does not advertise %s' % NS_CARBONS)
        check(st['phone']['xep_0352'].enabled, 'no <csi/> stream feature was offered')

    async def friends():
        a, b = st['phone'], st['bob']
        a.send_presence(pto=BOB, ptype='subscribe')
        await wait_stanza(b, is_presence(ALICE, 'subscribe'), 'the subscription request of alice')
        b.send_presence(pto=ALICE, ptype='subscribed')
        b.send_presence(pto=ALICE, ptype='subscribe')
        await wait_stanza(a, is_presence(BOB, 'subscribe'), 'the subscription request of bob')
        a.send_presence(pto=BOB, ptype='subscribed')
        await wait_stanza(a, is_presence(str(b.boundjid)), 'the available presence of bob')

    async def enable():
        for key in ('laptop', 'phone'):
            await mi.bounded(st[key]['xep_0280'].enable(timeout=mi.TIMEOUT),
                             'carbons enabled on %s' % key)

    async def received_copy():
        lap, phone, b = st['laptop'], st['phone'], st['bob']
        body = 'to the laptop ' + uuid.uuid4().hex
        n_lap, n_phone = len(lap.received), len(phone.received)
        b.send_message(mto=lap.boundjid, mbody=body, mtype='chat')
        await wait_stanza(lap, is_message(BOB, body), 'the message on the laptop', start=n_lap)
        c = await wait_stanza(phone, carbon('received', body), 'the received carbon on the phone',
                              start=n_phone)
        inner = c.xml.find('{%s}received/{%s}forwarded/{jabber:client}message'
                           % (NS_CARBONS, NS_FORWARD))
        check(inner.get('from') == str(b.boundjid) and inner.get('to') == str(lap.boundjid),
              'the forwarded message says from=%s to=%s' % (inner.get('from'), inner.get('to')))
        await ping(lap, 'a ping on the laptop')
        check(not any(carbon('received', body)(s) for s in lap.received[n_lap:]),
              'the laptop got a carbon of its own message')

    async def sent_copy():
        lap, phone, b = st['laptop'], st['phone'], st['bob']
        body = 'from the phone ' + uuid.uuid4().hex
        n_lap, n_phone = len(lap.received), len(phone.received)
        phone.send_message(mto=BOB, mbody=body, mtype='chat')
        await wait_stanza(b, is_message(ALICE, body), 'the message at bob')
        await wait_stanza(lap, carbon('sent', body), 'the sent carbon on the laptop', start=n_lap)
        await ping(phone, 'a ping on the phone')
        check(not any(carbon('sent', body)(s) for s in phone.received[n_phone:]),
              'the phone got a carbon of what it sent')

    async def csi_holds():
        phone, b = st['phone'], st['bob']
        st['mark'] = len(phone.received)
        phone['xep_0352'].send_inactive()
        await ping(phone, 'a ping after <inactive/>')
        st['mark'] = len(phone.received)
        b.send_presence(pstatus='bob-status-1')
        send_composing(b, phone.boundjid, 'held-composing')
        b.send_presence(pstatus='bob-status-2')
        # Two round trips of bob: the server handled all of it and wrote
        # whatever it wrote to the phone in earlier passes of its loop.
        await ping(b, 'a ping of bob')
        await ping(b, 'a second ping of bob')
        got = [s for s in phone.received[st['mark']:]
               if s.xml.tag in ('{jabber:client}presence', '{jabber:client}message')]
        check(not got, 'the inactive phone got %s' % [str(s) for s in got])

    async def csi_active():
        phone, b = st['phone'], st['bob']
        phone['xep_0352'].send_active()
        p = await wait_stanza(phone, lambda s: is_presence(str(b.boundjid))(s)
                              and s['status'] == 'bob-status-2', 'the latest presence of bob',
                              start=st['mark'])
        m = await wait_stanza(phone, is_chat_state(str(b.boundjid), 'held-composing'),
                              'the held chat state', start=st['mark'])
        rest = phone.received[st['mark']:]
        check(not any(is_presence(str(b.boundjid))(s) and s['status'] == 'bob-status-1'
                      for s in rest), 'the superseded presence of bob was delivered')
        check(rest.index(p) < rest.index(m),
              'the presence (held first) came after the chat state')

    async def csi_body_at_once():
        phone, b = st['phone'], st['bob']
        phone['xep_0352'].send_inactive()
        await ping(phone, 'a ping after <inactive/>')
        mark = len(phone.received)
        body = 'wake up ' + uuid.uuid4().hex
        send_composing(b, phone.boundjid, 'before-body')
        b.send_message(mto=phone.boundjid, mbody=body, mtype='chat')
        m = await wait_stanza(phone, is_message(BOB, body), 'the message with a body', start=mark)
        rest = phone.received[mark:]
        cs = [s for s in rest if is_chat_state(str(b.boundjid), 'before-body')(s)]
        check(cs and rest.index(cs[0]) < rest.index(m),
              'the chat state held before the message did not come first')
        phone['xep_0352'].send_active()

    async def stop():
        for c in st.pop('clients', []):
            await close(c)
        await mynad.astop()

    async def cleanup_clients():
        for c in st.get('clients', []):
            await close(c)

    return [
        ('mynad starts on the shipped configuration', start),
        ('register alice and bob in-band', register),
        ('alice (laptop, phone) and bob log in; carbons in disco, <csi/> offered', online),
        ('alice and bob subscribe to each other', friends),
        ('3. alice enables carbons on both resources', enable),
        ('3. a message to the laptop: a <received/> copy on the phone only', received_copy),
        ('3. a message from the phone: a <sent/> copy on the laptop only', sent_copy),
        ('2. the phone goes inactive: presence and chat states wait', csi_holds),
        ('2. <active/>: the latest presence and the chat state, in order', csi_active),
        ('2. inactive again: a message with a body comes at once, after what was held',
         csi_body_at_once),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup_clients


if __name__ == '__main__':
    sys.exit(mi.main(steps, name='carbons-csi'))
