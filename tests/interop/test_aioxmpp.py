#!/usr/bin/python3
"""aioxmpp against mynad on the shipped configuration: alice logs in with
aioxmpp over STARTTLS and over direct TLS and exchanges messages with bob,
who is online with slixmpp; aioxmpp discovers its own account (XEP-0030
§3.1), as aioxmpp's own end-to-end suite does when it provisions."""
import asyncio
import base64
import sys
import uuid

import myna_interop as mi
from myna_interop import StepFailed, check, login, close, wait_stanza, is_message

ALICE, BOB = 'alice@localhost', 'bob@localhost'
PW_A, PW_B = 'alice-secret-1', 'bob-secret-1'
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)

AUTHS = []          # (mechanism, gs2 header) of every SASL <auth/> aioxmpp sent


def record_sasl():
    """Wraps aioxmpp's SASL initiate to see the mechanism it picked."""
    import aioxmpp.sasl
    orig = aioxmpp.sasl.SASLXMPPInterface.initiate

    async def initiate(self, mechanism, payload=None):
        hdr = ''
        if payload and mechanism.startswith('SCRAM'):
            hdr = mi.gs2_header(payload if isinstance(payload, bytes) else base64.b64decode(payload))
        AUTHS.append((mechanism, hdr))
        return await orig(self, mechanism, payload)
    aioxmpp.sasl.SASLXMPPInterface.initiate = initiate


class AioClient:
    """An aioxmpp.Client that records the chat messages it receives."""

    def __init__(self, jid, password, addr, direct_tls):
        import aioxmpp
        import aioxmpp.connector
        import aioxmpp.dispatcher
        connector = (aioxmpp.connector.XMPPOverTLSConnector() if direct_tls
                     else aioxmpp.connector.STARTTLSConnector())
        self.client = aioxmpp.Client(
            aioxmpp.JID.fromstr(jid),
            aioxmpp.make_security_layer(password, no_verify=True),
            override_peer=[(addr[0], addr[1], connector)],
            max_initial_attempts=1)
        self.messages = []
        self.changed = asyncio.Event()
        disp = self.client.summon(aioxmpp.dispatcher.SimpleMessageDispatcher)
        disp.register_callback(aioxmpp.MessageType.CHAT, None, self._on_message)

    def _on_message(self, msg):
        self.messages.append(msg)
        self.changed.set()

    async def start(self):
        loop = asyncio.get_running_loop()
        up = loop.create_future()

        def established():
            if not up.done():
                up.set_result(True)

        def failed(err):
            if not up.done():
                up.set_exception(StepFailed('aioxmpp failed: %s: %s' % (type(err).__name__, err)))
        self.client.on_stream_established.connect(established)
        self.client.on_failure.connect(failed)
        self.client.start()
        await mi.bounded(up, 'the aioxmpp stream to be established')

    async def stop(self):
        if not self.client.running:
            return
        loop = asyncio.get_running_loop()
        down = loop.create_future()
        self.client.on_stopped.connect(lambda: down.done() or down.set_result(True))
        self.client.on_failure.connect(lambda _e: down.done() or down.set_result(False))
        self.client.stop()
        await mi.bounded(down, 'the aioxmpp client to stop')

    async def wait_message(self, frm, body):
        async def scan():
            i = 0
            while True:
                while i < len(self.messages):
                    m = self.messages[i]
                    i += 1
                    text = m.body.any() if m.body else None
                    if str(m.from_.bare()) == frm and text == body:
                        return m
                self.changed.clear()
                if i == len(self.messages):
                    await self.changed.wait()
        return await mi.bounded(scan(), 'the message %r at the aioxmpp client' % body)


def steps(mynad):
    st = {}

    async def start():
        record_sasl()
        await mynad.astart()

    async def register():
        for jid, pw in ((ALICE, PW_A), (BOB, PW_B)):
            c = await login(jid, pw, mynad.c2s, register=True, **SCRAM)
            await close(c)
            check(c.registered is True, 'registration of %s: %s' % (jid, c.registered))

    async def bob_online():
        st['b'] = await login(BOB, PW_B, mynad.c2s, resource='slix', **SCRAM)
        st['b'].send_presence()

    async def aio_session(direct_tls):
        import aioxmpp
        addr = mynad.c2s_tls if direct_tls else mynad.c2s
        del AUTHS[:]
        a = AioClient(ALICE, PW_A, addr, direct_tls)
        st.setdefault('aio', []).append(a)
        await a.start()
        try:
            check(AUTHS and AUTHS[-1] == ('SCRAM-SHA-256', 'n,,'),
                  'expected SCRAM-SHA-256 with gs2 header "n,,", sent: %s' % AUTHS)
            me = a.client.local_jid
            check(str(me.bare()) == ALICE and me.resource, 'bound JID %s' % (me,))
            b = st['b']
            t1, t2 = 'from aioxmpp ' + uuid.uuid4().hex, 'to aioxmpp ' + uuid.uuid4().hex
            msg = aioxmpp.Message(type_=aioxmpp.MessageType.CHAT, to=aioxmpp.JID.fromstr(BOB))
            msg.body[None] = t1
            n = len(b.received)
            await mi.bounded(a.client.send(msg), 'aioxmpp to send the message')
            m = await wait_stanza(b, is_message(ALICE, t1), 'the message from aioxmpp', start=n)
            check(str(m['from']) == str(me), 'from %s, not %s' % (m['from'], str(me)))
            b.send_message(mto=str(me), mbody=t2, mtype='chat')
            await a.wait_message(BOB, t2)
            return 'SASL %s, bound %s' % (AUTHS[-1][0], str(me))
        finally:
            await a.stop()

    async def starttls():
        return await aio_session(False)

    async def direct_tls():
        return await aio_session(True)

    async def disco_account():
        # XEP-0030 §3.1: the server answers disco at the account's bare JID.
        import aioxmpp
        import aioxmpp.disco
        import aioxmpp.errors
        a = AioClient(ALICE, PW_A, mynad.c2s, False)
        st.setdefault('aio', []).append(a)
        await a.start()
        try:
            disco = a.client.summon(aioxmpp.DiscoClient)
            me = aioxmpp.JID.fromstr(ALICE)
            info = await mi.bounded(disco.query_info(me, require_fresh=True),
                                    'disco#info of the own bare JID')
            ids = {(i.category, i.type_) for i in info.identities}
            check(('account', 'registered') in ids, 'identities: %s' % ids)
            check('http://jabber.org/protocol/disco#info' in info.features,
                  'features: %s' % sorted(info.features))
            items = await mi.bounded(disco.query_items(me, require_fresh=True),
                                     'disco#items of the own bare JID')
            check(list(items.items) == [], 'items: %s' % list(items.items))
            try:
                await mi.bounded(disco.query_info(aioxmpp.JID.fromstr(BOB), require_fresh=True),
                                 'disco#info of a stranger')
                raise StepFailed('a stranger was discovered')
            except aioxmpp.errors.XMPPCancelError as e:
                check(e.condition == aioxmpp.ErrorCondition.SERVICE_UNAVAILABLE,
                      'stranger: %s' % (e,))
            return 'identities %s, %d features' % (sorted(ids), len(info.features))
        finally:
            await a.stop()

    async def stop():
        await close(st['b'])
        await mynad.astop()

    async def cleanup():
        for a in st.get('aio', []):
            await a.stop()
        if 'b' in st:
            await close(st['b'])

    return [
        ('mynad starts on the shipped configuration', start),
        ('register alice and bob in-band (slixmpp)', register),
        ('bob is online with slixmpp', bob_online),
        ('8. aioxmpp over STARTTLS: SCRAM-SHA-256 login, messages both ways', starttls),
        ('8. aioxmpp over direct TLS: SCRAM-SHA-256 login, messages both ways', direct_tls),
        ('aioxmpp: disco#info of its own bare JID is account/registered', disco_account),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup


if __name__ == '__main__':
    sys.exit(mi.main(steps, needs=('slixmpp', 'aioxmpp'), name='aioxmpp'))
