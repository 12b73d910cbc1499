#!/usr/bin/python3
"""The MUC service's discovery through slixmpp's own plugins (XEP-0030,
XEP-0059, XEP-0045, XEP-0199), against mynad on the shipped configuration
(conference.localhost served by the muc module): disco#info of the service
and of a room (identity, muc_* features, muc#roominfo), the public rooms
paged with RSM forwards and backwards, a room that does not exist,
self-pings (XEP-0410) answered by the room or refused with not-acceptable,
and rooms created and destroyed with `mynactl muc`."""
import sys

import myna_interop as mi
from myna_interop import check, login, close

ALICE, PW_A = 'alice@localhost', 'alice-secret-1'
BOB, PW_B = 'bob@localhost', 'bob-secret-1'
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)
SERVICE = 'conference.localhost'
LOBBY = 'lobby@' + SERVICE
N_ROOMS = 60
NS_MUC = 'http://jabber.org/protocol/muc'


def room(i):
    return 'room%03d@%s' % (i, SERVICE)


def item_jids(iq):
    """The JIDs of a disco#items answer, in document order (slixmpp's own
    interface gives them as a set)."""
    q = iq.xml.find('{http://jabber.org/protocol/disco#items}query')
    return [i.get('jid') for i in q.findall('{http://jabber.org/protocol/disco#items}item')]


def steps(mynad):
    st = {}

    def ctl(*args):
        rc, out, err = mynad.mynactl(*args)
        check(rc == 0, 'mynactl %s: %s%s' % (' '.join(args), out, err))
        return out

    async def start():
        mynad.configure()
        await mynad.astart()
        for jid, pw in ((ALICE, PW_A), (BOB, PW_B)):
            rc, out, err = mynad.mynactl('user', 'add', jid, input=pw + '\n')
            check(rc == 0, 'mynactl user add: %s%s' % (out, err))

    async def create():
        ctl('muc', 'create', LOBBY, '--persistent', '--owner', ALICE, '--name', 'The', 'Lobby')
        # Created out of order: the list comes sorted.
        for i in reversed(range(N_ROOMS)):
            ctl('muc', 'create', room(i), '--persistent')
        ctl('muc', 'create', 'secret@' + SERVICE, '--persistent', '--hidden')
        out = ctl('muc', 'list', SERVICE)
        lines = [l for l in out.splitlines() if '\t' in l]
        check(len(lines) == N_ROOMS + 2, 'mynactl muc list: %s' % out)
        check(lines[0] == LOBBY + '\t0\tpersistent\tpublic\tThe Lobby', 'first line: %r' % lines[0])
        return '%d rooms' % len(lines)

    async def online():
        for who, jid, pw in (('a', ALICE, PW_A), ('b', BOB, PW_B)):
            c = await login(jid, pw, mynad.c2s, resource='muc', **SCRAM)
            for p in ('xep_0045', 'xep_0059', 'xep_0128'):
                c.register_plugin(p)
            st[who] = c

    async def service_info():
        r = await mi.bounded(st['a']['xep_0030'].get_info(jid=SERVICE, timeout=mi.TIMEOUT),
                             'disco#info of the service')
        q = r['disco_info']
        ids = [(i[0], i[1]) for i in q['identities']]
        check(('conference', 'text') in ids, 'no conference/text identity: %s' % ids)
        feats = set(q['features'])
        check(NS_MUC in feats, 'no %s: %s' % (NS_MUC, sorted(feats)))
        check('http://jabber.org/protocol/rsm' in feats, 'no rsm: %s' % sorted(feats))

    async def service_items():
        # Forwards, 7 at a time, with slixmpp's XEP-0059 iterator.
        c = st['b']
        iq = c.Iq(stype='get', sto=SERVICE)
        iq['disco_items']['node'] = ''
        got, pages = [], 0
        async for page in c['xep_0059'].iterate(iq, 'disco_items', amount=7,
                                                iq_options={'timeout': mi.TIMEOUT}):
            got += item_jids(page)
            check(page['disco_items']['rsm']['count'] == str(N_ROOMS + 1),
                  'count: %s' % page['disco_items']['rsm']['count'])
            pages += 1
        want = sorted([LOBBY] + [room(i) for i in range(N_ROOMS)])
        check(got == want, 'rooms paged forwards: %s' % got)
        check('secret@' + SERVICE not in got, 'a hidden room is listed')
        # Backwards from the end, with slixmpp's RSM stanza (its iterator
        # stops a reverse walk after the first page: it tests
        # first index + items == count, the end of a forward walk).
        back, before = [], True
        while True:
            iq = c.Iq(stype='get', sto=SERVICE)
            iq['disco_items']['node'] = ''
            iq['disco_items']['rsm']['max'] = '25'
            iq['disco_items']['rsm']['before'] = before
            page = await iq.send(timeout=mi.TIMEOUT)
            jids = item_jids(page)
            back = jids + back
            rsm = page['disco_items']['rsm']
            if not jids or rsm['first_index'] == '0':
                break
            before = rsm['first']
        check(back == want, 'rooms paged backwards: %s' % back)
        # Names come with the items.
        r = await c['xep_0030'].get_items(jid=SERVICE, timeout=mi.TIMEOUT)
        names = {i[0]: i[2] for i in r['disco_items']['items']}
        check(names.get(LOBBY) == 'The Lobby', 'lobby name: %s' % names.get(LOBBY))
        return '%d pages forwards' % pages

    async def room_info():
        r = await st['b']['xep_0030'].get_info(jid=LOBBY, timeout=mi.TIMEOUT)
        q = r['disco_info']
        ids = [(i[0], i[1], i[3]) for i in q['identities']]
        check(ids == [('conference', 'text', 'The Lobby')], 'identities: %s' % ids)
        feats = set(q['features'])
        for f in (NS_MUC, 'muc_public', 'muc_persistent', 'muc_open', 'muc_unmoderated',
                  'muc_semianonymous', 'muc_unsecured'):
            check(f in feats, 'no %s in %s' % (f, sorted(feats)))
        for f in ('muc_hidden', 'muc_temporary', 'muc_membersonly', 'muc_passwordprotected'):
            check(f not in feats, '%s in %s' % (f, sorted(feats)))
        form = q['form']
        check(form['type'] == 'result', 'roominfo form type %s' % form['type'])
        values = form.get_values()
        check(values.get('FORM_TYPE') in (['http://jabber.org/protocol/muc#roominfo'],
                                          'http://jabber.org/protocol/muc#roominfo'),
              'FORM_TYPE %s' % values.get('FORM_TYPE'))
        check(str(values.get('muc#roominfo_occupants')) == '0', 'occupants: %s' % values)
        # A hidden room answers too; it is just not listed.
        r = await st['b']['xep_0030'].get_info(jid='secret@' + SERVICE, timeout=mi.TIMEOUT)
        check('muc_hidden' in r['disco_info']['features'], 'secret room not muc_hidden')

    async def no_room():
        import slixmpp.exceptions
        try:
            await st['b']['xep_0030'].get_info(jid='nosuch@' + SERVICE, timeout=mi.TIMEOUT)
        except slixmpp.exceptions.IqError as e:
            check(e.condition == 'item-not-found', 'condition %s' % e.condition)
            return 'item-not-found'
        raise mi.StepFailed('disco#info of a room that does not exist succeeded')

    async def join():
        a = st['a']
        await mi.bounded(a['xep_0045'].join_muc_wait(LOBBY, 'Alice', maxstanzas=0,
                                                     timeout=mi.TIMEOUT), 'the join')
        r = await st['b']['xep_0030'].get_info(jid=LOBBY, timeout=mi.TIMEOUT)
        values = r['disco_info']['form'].get_values()
        check(str(values.get('muc#roominfo_occupants')) == '1', 'occupants: %s' % values)
        r = await a['xep_0030'].get_items(jid=LOBBY, timeout=mi.TIMEOUT)
        mine = item_jids(r)
        check(mine == [LOBBY + '/Alice'], 'occupants seen by an occupant: %s' % mine)
        r = await st['b']['xep_0030'].get_items(jid=LOBBY, timeout=mi.TIMEOUT)
        check(list(r['disco_items']['items']) == [], 'occupants shown to an outsider')

    async def self_ping():
        import slixmpp.exceptions
        a, b = st['a'], st['b']
        await a['xep_0199'].ping(jid=LOBBY + '/Alice', timeout=mi.TIMEOUT)

        async def refused(c, jid, why):
            try:
                await c['xep_0199'].ping(jid=jid, timeout=mi.TIMEOUT)
            except slixmpp.exceptions.IqError as e:
                check(e.condition == 'not-acceptable' and e.etype == 'cancel',
                      '%s: %s/%s' % (why, e.etype, e.condition))
                return
            raise mi.StepFailed('%s: the ping succeeded' % why)
        await refused(b, LOBBY + '/Alice', 'a ping from someone not in the room')
        await refused(a, LOBBY + '/Nobody', 'a ping to a nick nobody holds')
        a['xep_0045'].leave_muc(LOBBY, 'Alice')
        await refused(a, LOBBY + '/Alice', 'a ping to the nick she left')

    async def destroy():
        ctl('muc', 'destroy', room(0), 'closing', 'time')
        out = ctl('muc', 'list')
        check(room(0) not in out, 'destroyed room still listed: %s' % out)
        r = await st['b']['xep_0030'].get_items(jid=SERVICE, timeout=mi.TIMEOUT)
        got = [i[0] for i in r['disco_items']['items']]
        check(room(0) not in got and len(got) == N_ROOMS, 'items after destroy: %d' % len(got))

    async def stop():
        for k in ('a', 'b'):
            await close(st.pop(k))
        await mynad.astop()

    async def cleanup():
        for c in st.values():
            await close(c)

    return [
        ('mynad starts on the shipped configuration', start),
        ('mynactl muc create makes %d rooms, muc list shows them' % (N_ROOMS + 2), create),
        ('alice and bob log in (SCRAM-SHA-256)', online),
        ('disco#info of %s: conference/text, muc, rsm' % SERVICE, service_info),
        ('disco#items of the service: public rooms, sorted, paged both ways (XEP-0059)',
         service_items),
        ('disco#info of a room: identity, muc_* features, muc#roominfo', room_info),
        ('disco#info of a room that does not exist: item-not-found', no_room),
        ('alice joins (XEP-0045): occupants counted, listed to her only', join),
        ('self-ping (XEP-0410): answered, or not-acceptable', self_ping),
        ('mynactl muc destroy: the room leaves the list', destroy),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup


if __name__ == '__main__':
    sys.exit(mi.main(steps, name='muc-disco'))
