#!/usr/bin/python3
"""Message Archive Management (XEP-0313) through slixmpp's own plugins
(xep_0313 with xep_0059 paging) against mynad on the shipped
configuration: messages get a XEP-0359 stanza-id, both ends' archives hold
them, and the archive pages forward and backward to the same messages."""
import sys
import uuid

import myna_interop as mi
from myna_interop import check, login, close, wait_stanza, is_message

ALICE, BOB = 'alice@localhost', 'bob@localhost'
PW_A, PW_B = 'alice-secret-1', 'bob-secret-1'
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)
NS_SID = 'urn:xmpp:sid:0'
N = 12
PAGE = 5


def steps(mynad):
    st = {}

    async def start():
        await mynad.astart()

    async def register():
        for jid, pw in ((ALICE, PW_A), (BOB, PW_B)):
            c = await login(jid, pw, mynad.c2s, register=True, **SCRAM)
            await close(c)
            check(c.registered is True, 'registration of %s: %s' % (jid, c.registered))

    async def online():
        for key, jid, pw in (('a', ALICE, PW_A), ('b', BOB, PW_B)):
            c = await login(jid, pw, mynad.c2s, resource='mam', **SCRAM)
            c.register_plugin('xep_0059')
            c.register_plugin('xep_0313')
            c.send_presence()
            st[key] = c
        info = await mi.bounded(st['a']['xep_0030'].get_info(jid=ALICE, timeout=mi.TIMEOUT),
                                'disco#info of alice\'s account')
        feats = set(info['disco_info']['features'])
        check({'urn:xmpp:mam:2', NS_SID} <= feats, 'account features: %s' % sorted(feats))

    async def converse():
        a, b = st['a'], st['b']
        tag = uuid.uuid4().hex[:6]
        bodies = ['%s #%02d' % (tag, i) for i in range(N)]
        for body in bodies:
            a.send_message(mto=BOB, mbody=body, mtype='chat')
        last = await wait_stanza(b, is_message(ALICE, bodies[-1]), 'alice\'s last message')
        sid = last.xml.find('{%s}stanza-id' % NS_SID)
        check(sid is not None and sid.get('by') == BOB and sid.get('id'),
              'no stanza-id by bob@localhost on the delivered message: %s' % last)
        st['bodies'], st['last_sid'] = bodies, sid.get('id')
        return 'stanza-id %s' % sid.get('id')

    async def archive(c, **kw):
        got = []
        async for m in c['xep_0313'].iterate(with_jid=kw.pop('with_jid'), rsm={'max': PAGE}, **kw):
            got.append(m)
        return got

    async def forward():
        got = await archive(st['b'], with_jid=ALICE)
        bodies = [m['mam_result']['forwarded']['stanza']['body'] for m in got]
        check(bodies == st['bodies'], 'bob\'s archive, forward: %s' % bodies)
        check(got[-1]['mam_result']['id'] == st['last_sid'],
              'the last result id %s is not the stanza-id %s'
              % (got[-1]['mam_result']['id'], st['last_sid']))
        sent = await archive(st['a'], with_jid=BOB)
        sent_bodies = [m['mam_result']['forwarded']['stanza']['body'] for m in sent]
        check(sent_bodies == st['bodies'], 'alice\'s archive (sent): %s' % sent_bodies)
        return '%d messages in pages of %d, both archives' % (len(bodies), PAGE)

    async def backward():
        got = await archive(st['b'], with_jid=ALICE, reverse=True)
        bodies = [m['mam_result']['forwarded']['stanza']['body'] for m in got]
        check(bodies == list(reversed(st['bodies'])), 'bob\'s archive, backward: %s' % bodies)
        return '%d messages, newest first' % len(bodies)

    async def pages():
        b = st['b']
        it = b['xep_0313'].retrieve(with_jid=ALICE, iterator=True, rsm={'max': PAGE})
        flags = []
        async for page in it:
            fin = page.xml.find('{urn:xmpp:mam:2}fin')
            flags.append((len(page['mam']['results']), fin.get('complete') if fin is not None
                          else None))
        want = [(PAGE, 'false'), (PAGE, 'false'), (N - 2 * PAGE, 'true')]
        check(flags == want, '(results, complete) per page: %s, want %s' % (flags, want))
        return str(flags)

    async def stop():
        for k in ('a', 'b'):
            await close(st[k])
        await mynad.astop()

    async def cleanup():
        for k in ('a', 'b'):
            if k in st:
                await close(st[k])

    return [
        ('mynad starts on the shipped configuration', start),
        ('register alice and bob in-band', register),
        ('alice and bob log in; MAM and stanza ids at the account', online),
        ('alice sends bob %d messages; bob\'s copy carries a stanza-id' % N, converse),
        ('MAM pages forward through both archives (XEP-0059 after)', forward),
        ('MAM pages backward (XEP-0059 before)', backward),
        ('each page\'s <fin complete/>: false, false, true', pages),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup


if __name__ == '__main__':
    sys.exit(mi.main(steps, name='mam'))
