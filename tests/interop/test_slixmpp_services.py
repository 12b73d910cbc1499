#!/usr/bin/python3
"""Server services through slixmpp's own plugins against mynad on the
shipped configuration: service discovery (XEP-0030), ping (XEP-0199),
software version (XEP-0092), last activity (XEP-0012), vcard-temp
(XEP-0054), private XML storage (XEP-0049) and blocking (XEP-0191)."""
import asyncio
import sys
import uuid
import xml.etree.ElementTree as ET

import myna_interop as mi
from myna_interop import check, login, close, wait_stanza, is_message

ALICE, BOB = 'alice@localhost', 'bob@localhost'
PW_A, PW_B = 'alice-secret-1', 'bob-secret-1'
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)


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
            c = await login(jid, pw, mynad.c2s, resource='svc', **SCRAM)
            for p in ('xep_0012', 'xep_0049', 'xep_0054', 'xep_0092', 'xep_0191'):
                c.register_plugin(p)
            c.send_presence()
            st[key] = c

    async def disco():
        info = await mi.bounded(st['a']['xep_0030'].get_info(jid='localhost', timeout=mi.TIMEOUT),
                                'disco#info of the server')
        q = info['disco_info']
        ids = {(i[0], i[1]) for i in q['identities']}
        check(('server', 'im') in ids, 'no server/im identity: %s' % ids)
        feats = set(q['features'])
        want = {'urn:xmpp:ping', 'jabber:iq:version', 'vcard-temp', 'jabber:iq:private',
                'urn:xmpp:blocking', 'jabber:iq:last', 'jabber:iq:register', 'msgoffline',
                'http://jabber.org/protocol/disco#info'}
        missing = want - feats
        check(not missing, 'features missing from disco#info: %s (has: %s)'
              % (sorted(missing), sorted(feats)))
        return '%d features' % len(feats)

    async def server_caps():
        # slixmpp's xep_0115 reads the <c/> of the stream features, asks
        # the server's disco#info at node#ver and keeps the ver only when
        # its own XEP-0115 computation of that answer gives the same.
        c = await login(ALICE, PW_A, mynad.c2s, resource='caps', plugins=('xep_0115',), **SCRAM)
        st['caps'] = c
        check('caps' in c.features, 'no <c/> in the stream features: %s' % sorted(c.features))
        ver = None
        for _ in range(50):
            ver = await c['xep_0115'].get_verstring('localhost')
            if ver:
                break
            await asyncio.sleep(0.1)
        check(ver, 'slixmpp did not verify the server\'s caps (no ver assigned to localhost)')
        info = await c['xep_0115'].get_caps(jid='localhost')
        check(info is not None and 'urn:xmpp:ping' in info['features'],
              'the verified caps of localhost lack urn:xmpp:ping: %s' % info)
        await close(c)
        return 'ver %s, %d features' % (ver, len(info['features']))

    async def ping():
        rtt = await mi.bounded(st['a']['xep_0199'].ping(jid='localhost', timeout=mi.TIMEOUT),
                               'the ping reply')
        return 'rtt %.1fms' % (rtt * 1000)

    async def version():
        v = await mi.bounded(st['a']['xep_0092'].get_version('localhost', timeout=mi.TIMEOUT),
                             'the version reply')
        sv = v['software_version']
        check(sv['name'], 'no <name/>: %s' % v)
        check(not sv['os'], 'show_os = false in the shipped configuration, yet <os/> is %r' % sv['os'])
        return '%s %s' % (sv['name'], sv['version'])

    async def uptime():
        r = await mi.bounded(st['a']['xep_0012'].get_last_activity('localhost', timeout=mi.TIMEOUT),
                             'the last activity (uptime) reply')
        secs = r['last_activity']['seconds']
        check(secs is not None and int(secs) >= 0, 'seconds %r' % secs)
        return 'uptime %ss' % secs

    async def vcard():
        a, b = st['a'], st['b']
        fn = 'Alice Interop ' + uuid.uuid4().hex[:8]
        card = a['xep_0054'].make_vcard()
        card['FN'] = fn
        card['NICKNAME'] = 'alice'
        await mi.bounded(a['xep_0054'].publish_vcard(card, timeout=mi.TIMEOUT), 'the vCard set result')
        own = await mi.bounded(a['xep_0054'].get_vcard(ALICE, local=False, timeout=mi.TIMEOUT),
                               'alice\'s own vCard')
        check(own['vcard_temp']['FN'] == fn, 'own vCard FN %r' % own['vcard_temp']['FN'])
        other = await mi.bounded(b['xep_0054'].get_vcard(ALICE, local=False, timeout=mi.TIMEOUT),
                                 'alice\'s vCard fetched by bob')
        check(other['vcard_temp']['FN'] == fn, 'vCard FN seen by bob %r' % other['vcard_temp']['FN'])
        check(str(other['from']) in ('', ALICE), 'vCard result from %s' % other['from'])

    async def private():
        a = st['a']
        ns, text = 'urn:myna:interop:test', uuid.uuid4().hex
        iq = a.make_iq_set()
        q = ET.SubElement(iq.xml, '{jabber:iq:private}query')
        ET.SubElement(ET.SubElement(q, '{%s}note' % ns), '{%s}text' % ns).text = text
        await mi.bounded(iq.send(timeout=mi.TIMEOUT), 'the private XML set result')
        iq = a.make_iq_get()
        q = ET.SubElement(iq.xml, '{jabber:iq:private}query')
        ET.SubElement(q, '{%s}note' % ns)
        res = await mi.bounded(iq.send(timeout=mi.TIMEOUT), 'the private XML get result')
        got = res.xml.find('{jabber:iq:private}query/{%s}note/{%s}text' % (ns, ns))
        check(got is not None and got.text == text,
              'stored %r, got back: %s' % (text, ET.tostring(res.xml, encoding='unicode')))

    async def block():
        a = st['a']
        blocked = await mi.bounded(a['xep_0191'].get_blocked(timeout=mi.TIMEOUT), 'the blocklist')
        check(not blocked['blocklist']['items'], 'blocklist not empty: %s' % blocked)
        n = len(a.received)
        await mi.bounded(a['xep_0191'].block([BOB], timeout=mi.TIMEOUT), 'the block result')
        blocked = await mi.bounded(a['xep_0191'].get_blocked(timeout=mi.TIMEOUT), 'the blocklist')
        items = {str(j) for j in blocked['blocklist']['items']}
        check(items == {BOB}, 'blocklist after blocking bob: %s' % items)
        # The requesting resource asked for the list, so it is "interested"
        # (XEP-0191 s3.3) and gets the push too.
        await wait_stanza(a, lambda s: s.xml.find('{urn:xmpp:blocking}block') is not None
                          and s.xml.get('type') == 'set', 'the block push', start=n)

    async def blocked_message():
        b = st['b']
        first, nb = 'while blocked ' + uuid.uuid4().hex, len(b.received)
        b.send_message(mto=ALICE, mbody=first, mtype='chat')
        err = await wait_stanza(b, lambda s: s.xml.tag == '{jabber:client}message'
                                and s.xml.get('type') == 'error' and s['from'].bare == ALICE,
                                'an error for the message to alice who blocked bob', start=nb)
        cond = err['error']['condition']
        # XEP-0191 s3.5: service-unavailable SHOULD be returned to the blocked entity.
        check(cond == 'service-unavailable', 'error condition %r' % cond)
        st['first'] = first
        return 'bob got <%s/>' % cond

    async def unblock():
        a, b = st['a'], st['b']
        await mi.bounded(a['xep_0191'].unblock([BOB], timeout=mi.TIMEOUT), 'the unblock result')
        second = 'after unblock ' + uuid.uuid4().hex
        b.send_message(mto=ALICE, mbody=second, mtype='chat')
        await wait_stanza(a, is_message(BOB, second), 'the message after unblocking')
        # Same route, so the blocked one would have arrived first.
        leaked = [s for s in a.received if s.xml.tag == '{jabber:client}message'
                  and s['body'] == st['first']]
        check(not leaked, 'the message sent while blocked was delivered: %s' % leaked)

    async def stop():
        for k in ('a', 'b'):
            await close(st[k])
        await mynad.astop()

    async def cleanup():
        for k in ('a', 'b', 'caps'):
            if k in st:
                await close(st[k])

    return [
        ('mynad starts on the shipped configuration', start),
        ('register alice and bob in-band', register),
        ('alice and bob log in (SCRAM-SHA-256) and send presence', online),
        ('disco#info of the server: identity server/im and the modules\' features', disco),
        ('the server\'s own caps (XEP-0115 §6.3) verified by slixmpp\'s xep_0115', server_caps),
        ('ping the server (XEP-0199)', ping),
        ('software version of the server (XEP-0092), no OS', version),
        ('server uptime by last activity (XEP-0012)', uptime),
        ('vcard-temp: alice publishes, alice and bob read it (XEP-0054)', vcard),
        ('private XML storage: store and read back (XEP-0049)', private),
        ('blocking: alice blocks bob, list and push (XEP-0191)', block),
        ('blocking: bob\'s message is refused with service-unavailable', blocked_message),
        ('blocking: after unblocking bob\'s next message arrives, the refused one never', unblock),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup


if __name__ == '__main__':
    sys.exit(mi.main(steps, name='services'))
