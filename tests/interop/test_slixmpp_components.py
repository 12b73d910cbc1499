#!/usr/bin/python3
"""A domain served by a module ([component:DOMAIN]) through slixmpp's own
XEP-0030 plugin, against mynad on the shipped configuration plus a
component echo.localhost served by the test module echocomp: disco#info
of the component (its identities, feature and XEP-0128 form), the server's
disco#items listing it, and an echo from a JID in its domain."""
import sys

import myna_interop as mi
from myna_interop import check, login, close, wait_stanza, is_message

ALICE, PW_A = 'alice@localhost', 'alice-secret-1'
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)
COMPONENT = 'echo.localhost'


def steps(mynad):
    st = {}

    async def start():
        # The shipped file, with the test modules and the component added.
        mynad.configure()
        text = mynad.conf.read_text()
        text = text.replace('[global]\n', '[global]\nmodule_path = %s\n'
                            % (mi.BUILD_ROOT / 'tests' / 'modules'), 1)
        text += '\n[component:%s]\nmodule = echocomp\n' % COMPONENT
        mynad.conf.write_text(text)
        await mynad.astart()
        rc, out, err = mynad.mynactl('user', 'add', ALICE, input=PW_A + '\n')
        check(rc == 0, 'mynactl user add: %s%s' % (out, err))

    async def online():
        st['a'] = await login(ALICE, PW_A, mynad.c2s, resource='comp', **SCRAM)

    async def info():
        r = await mi.bounded(st['a']['xep_0030'].get_info(jid=COMPONENT, timeout=mi.TIMEOUT),
                             'disco#info of the component')
        q = r['disco_info']
        ids = [(i[0], i[1], i[3]) for i in q['identities']]
        check(('component', 'generic', 'Echo') in ids, 'no component/generic identity: %s' % ids)
        check(('conference', 'text', 'Echo rooms') in ids, 'no conference/text identity: %s' % ids)
        check(not any(i[0] == 'server' for i in ids), 'a server identity on a component: %s' % ids)
        feats = set(q['features'])
        check('urn:myna:test:echo' in feats, 'feature missing: %s' % sorted(feats))
        forms = [f for f in q.xml.findall('{jabber:x:data}x')]
        types = [v.text for f in forms for fld in f.findall('{jabber:x:data}field')
                 if fld.get('var') == 'FORM_TYPE' for v in fld.findall('{jabber:x:data}value')]
        check(types == ['urn:myna:test:echo:info'], 'XEP-0128 forms: %s' % types)
        return '%d identities, %d features' % (len(ids), len(feats))

    async def items():
        r = await mi.bounded(st['a']['xep_0030'].get_items(jid='localhost', timeout=mi.TIMEOUT),
                             'disco#items of the server')
        found = [(i[0], i[2]) for i in r['disco_items']['items']]
        check((COMPONENT, 'Echo') in found, 'component not in disco#items: %s' % found)

    async def echo():
        c = st['a']
        start = len(c.received)
        c.send_message(mto='x@%s' % COMPONENT, mbody='hello', mtype='chat')
        await wait_stanza(c, is_message('x@%s' % COMPONENT, 'echo: hello'),
                          'the echo from the component', start=start)

    async def stop():
        await close(st['a'])
        await mynad.astop()

    async def cleanup():
        if 'a' in st:
            await close(st['a'])

    return [
        ('mynad starts with [component:%s] served by echocomp' % COMPONENT, start),
        ('alice logs in (SCRAM-SHA-256)', online),
        ('disco#info of the component: identities, feature, XEP-0128 form', info),
        ('disco#items of the server lists the component', items),
        ('a message to x@%s comes back as an echo' % COMPONENT, echo),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup


if __name__ == '__main__':
    sys.exit(mi.main(steps, name='components'))
