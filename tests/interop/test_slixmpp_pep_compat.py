#!/usr/bin/python3
"""The compatibility layers on personal eventing through slixmpp's own
plugins (xep_0048 over xep_0049, xep_0060, xep_0084, xep_0054, xep_0223)
against mynad on the shipped configuration (bookmarks and avatar enabled
there):
 - (a) XEP-0411: alice/old sets two bookmarks through private XML storage
   (xep_0048, storage method xep_0049); alice/new reads them as PEP
   native bookmarks (urn:xmpp:bookmarks:1, one item per room);
 - (b) alice/new publishes a third bookmark with XEP-0402's
   publish-options and retracts one; alice/old reads the result back
   through private XML;
 - (c) XEP-0398/0153: alice publishes an avatar with xep_0084 (data, then
   metadata); bob, a contact, reads it as alice's vCard PHOTO (xep_0054)
   and sees its SHA-1 in alice's next presence (vcard-temp:x:update);
   then alice sets a vCard with another PHOTO and bob reads the new
   avatar metadata in PEP;
 - (d) XEP-0223: alice stores private data with xep_0223 (persist_items,
   access_model whitelist); alice reads it back, bob cannot."""
import hashlib
import sys
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0004 import Form
from slixmpp.plugins.xep_0048.stanza import Bookmarks
from slixmpp.xmlstream import ElementBase

import myna_interop as mi
from myna_interop import check, login, close, wait_stanza, is_presence, StepFailed

USERS = {'alice': 'alice-secret-1', 'bob': 'bob-secret-1'}
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)
NS_PUBSUB = 'http://jabber.org/protocol/pubsub'
NS_BOOKMARKS = 'urn:xmpp:bookmarks:1'
NS_AVATAR_META = 'urn:xmpp:avatar:metadata'
NS_UPDATE = 'vcard-temp:x:update'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
SECRET = 'urn:example:myna:secret'
AVATAR = bytes(range(256)) * 2
AVATAR2 = bytes(reversed(range(256))) * 3


class Secret(ElementBase):
    """The private payload of (d), as a slixmpp stanza (xep_0223 wants one)."""
    name = 'secret'
    namespace = SECRET
    plugin_attrib = 'secret'
    interfaces = set()


def jid(user):
    return '%s@localhost' % user


def publish_options(**fields):
    form = Form()
    form['type'] = 'submit'
    form.add_field(var='FORM_TYPE', ftype='hidden', value=NS_PUBSUB + '#publish-options')
    for key, value in fields.items():
        form.add_field(var='pubsub#' + key, value=value)
    return form


def items_of(iq):
    """{item id: payload element} of a pubsub <items/> result."""
    items = iq.xml.find('{%s}pubsub/{%s}items' % (NS_PUBSUB, NS_PUBSUB))
    check(items is not None, 'an items result without <items/>: %s' % iq)
    return {i.get('id'): (list(i)[0] if len(i) else None)
            for i in items.findall('{%s}item' % NS_PUBSUB)}


def steps(mynad):
    st = {'clients': {}}

    async def online(user, resource, plugins=()):
        c = await login(jid(user), USERS[user], mynad.c2s, resource=resource, **SCRAM)
        for p in ('xep_0004', 'xep_0060', 'xep_0163') + tuple(plugins):
            c.register_plugin(p)
        st['clients'][user + '/' + resource] = c
        return c

    async def expect_error(fut, conditions, what):
        try:
            res = await fut
        except IqError as e:
            check(e.condition in conditions, '%s: %s, want one of %s'
                  % (what, e.condition, conditions))
            return e.condition
        raise StepFailed('%s: succeeded: %s' % (what, res))

    async def start():
        await mynad.astart()

    async def register():
        for user, pw in USERS.items():
            c = await login(jid(user), pw, mynad.c2s, register=True, **SCRAM)
            await close(c)
            check(c.registered is True, 'registration of %s: %s' % (user, c.registered))

    async def friends():
        a = await login(jid('alice'), USERS['alice'], mynad.c2s, resource='setup', **SCRAM)
        o = await login(jid('bob'), USERS['bob'], mynad.c2s, resource='setup', **SCRAM)
        try:
            a.send_presence()
            o.send_presence()
            a.send_presence(pto=jid('bob'), ptype='subscribe')
            await wait_stanza(o, is_presence(jid('alice'), 'subscribe'), 'alice asks bob')
            o.send_presence(pto=jid('alice'), ptype='subscribed')
            o.send_presence(pto=jid('alice'), ptype='subscribe')
            await wait_stanza(a, is_presence(jid('bob'), 'subscribe'), 'bob asks alice')
            a.send_presence(pto=jid('bob'), ptype='subscribed')
            await wait_stanza(o, is_presence(jid('alice'), 'subscribed'), 'alice approves')
            mine = await mi.roster_items(a)
            check(mine.get(jid('bob'), ('none',))[0] == 'both', 'alice\'s roster: %s' % mine)
        finally:
            await close(o)
            await close(a)
        return 'alice <-> bob: both'

    async def features():
        a = await online('alice', 'new')
        res = await mi.bounded(a['xep_0030'].get_info(jid('alice'), timeout=mi.TIMEOUT),
                               'disco#info of alice\'s account')
        feats = {f.get('var') for f in res.xml.iter('{%s}feature' % NS_DISCO_INFO)}
        for want in (NS_BOOKMARKS + '#compat', NS_BOOKMARKS + '#compat-pep',
                     'urn:xmpp:pep-vcard-conversion:0'):
            check(want in feats, '%s not advertised: %s' % (want, sorted(feats)))
        return '#compat, #compat-pep, pep-vcard-conversion advertised'

    async def private_to_pep():
        old = await online('alice', 'old', plugins=('xep_0049', 'xep_0048'))
        new = st['clients']['alice/new']
        bm = Bookmarks()
        bm.add_conference('orchard@conference.localhost', 'alice', name='The Orchard',
                          autojoin=True)
        bm.add_conference('kitchen@conference.localhost', 'al', name='The Kitchen',
                          autojoin=False, password='pie')
        await mi.bounded(old['xep_0048'].set_bookmarks(bm, method='xep_0049',
                                                       timeout=mi.TIMEOUT),
                         'bookmarks set through private XML (xep_0048 / xep_0049)')
        res = await mi.bounded(new['xep_0060'].get_items(jid('alice'), NS_BOOKMARKS,
                                                         timeout=mi.TIMEOUT),
                               'alice/new reading bookmarks 2')
        items = items_of(res)
        check(set(items) == {'orchard@conference.localhost', 'kitchen@conference.localhost'},
              'bookmarks 2 items: %s' % sorted(items))
        o, k = items['orchard@conference.localhost'], items['kitchen@conference.localhost']
        check(o.tag == '{%s}conference' % NS_BOOKMARKS and o.get('name') == 'The Orchard'
              and o.get('autojoin') in ('true', '1')
              and o.findtext('{%s}nick' % NS_BOOKMARKS) == 'alice',
              'orchard: %s' % ET.tostring(o, 'unicode'))
        check(k.get('autojoin') in (None, 'false', '0')
              and k.findtext('{%s}password' % NS_BOOKMARKS) == 'pie',
              'kitchen: %s' % ET.tostring(k, 'unicode'))
        return '2 conferences read as urn:xmpp:bookmarks:1 items'

    async def pep_to_private():
        old, new = st['clients']['alice/old'], st['clients']['alice/new']
        payload = ET.fromstring('<conference xmlns="%s" name="The Attic" autojoin="true">'
                                '<nick>ally</nick></conference>' % NS_BOOKMARKS)
        await mi.bounded(new['xep_0060'].publish(
            None, NS_BOOKMARKS, id='attic@conference.localhost', payload=payload,
            options=publish_options(persist_items='true', access_model='whitelist',
                                    max_items='max', send_last_published_item='never'),
            timeout=mi.TIMEOUT), 'a bookmarks 2 publish')
        await mi.bounded(new['xep_0060'].retract(None, NS_BOOKMARKS,
                                                 'kitchen@conference.localhost', notify=True,
                                                 timeout=mi.TIMEOUT),
                         'a bookmarks 2 retraction')
        res = await mi.bounded(old['xep_0048'].get_bookmarks(method='xep_0049',
                                                             timeout=mi.TIMEOUT),
                               'bookmarks read through private XML')
        confs = {str(c['jid']): c for c in res['private']['bookmarks']['conferences']}
        check(set(confs) == {'orchard@conference.localhost', 'attic@conference.localhost'},
              'private XML bookmarks: %s' % sorted(confs))
        attic = confs['attic@conference.localhost']
        check(attic['name'] == 'The Attic' and attic['autojoin'] and attic['nick'] == 'ally',
              'attic: %s' % attic)
        return 'private XML shows the publish and the retraction'

    async def avatar():
        a = await online('alice', 'pic', plugins=('xep_0084',))
        b = await online('bob', 'viewer', plugins=('xep_0054',))
        b.send_presence()
        a.send_presence()
        await wait_stanza(b, is_presence(jid('alice') + '/pic'), 'alice\'s first presence')
        avatar_id = a['xep_0084'].generate_id(AVATAR)
        await mi.bounded(a['xep_0084'].publish_avatar(AVATAR, timeout=mi.TIMEOUT),
                         'the avatar data (xep_0084)')
        await mi.bounded(a['xep_0084'].publish_avatar_metadata(
            {'id': avatar_id, 'type': 'image/png', 'bytes': len(AVATAR)}, timeout=mi.TIMEOUT),
            'the avatar metadata (xep_0084)')
        vc = await mi.bounded(b['xep_0054'].get_vcard(jid('alice'), timeout=mi.TIMEOUT),
                              'bob reading alice\'s vCard (xep_0054)')
        photo = vc['vcard_temp']['PHOTO']
        check(photo['BINVAL'] == AVATAR and photo['TYPE'] == 'image/png',
              'the vCard PHOTO: %d bytes, type %s' % (len(photo['BINVAL'] or b''),
                                                      photo['TYPE']))
        mark = len(b.received)
        a.send_presence(pstatus='new avatar')

        def with_hash(s):
            if not is_presence(jid('alice') + '/pic')(s):
                return False
            x = s.xml.find('{%s}x' % NS_UPDATE)
            return x is not None and x.findtext('{%s}photo' % NS_UPDATE) == avatar_id
        await wait_stanza(b, with_hash, 'alice\'s presence with the avatar hash', start=mark)
        return 'vCard PHOTO %d bytes; presence photo %s…' % (len(AVATAR), avatar_id[:8])

    async def vcard_to_pep():
        a, b = st['clients']['alice/pic'], st['clients']['bob/viewer']
        a.register_plugin('xep_0054')
        card = a['xep_0054'].make_vcard()
        card['FN'] = 'Alice'
        card['PHOTO']['TYPE'] = 'image/jpeg'
        card['PHOTO']['BINVAL'] = AVATAR2
        await mi.bounded(a['xep_0054'].publish_vcard(card, timeout=mi.TIMEOUT),
                         'alice setting a vCard with a PHOTO')
        want = hashlib.sha1(AVATAR2).hexdigest()
        res = await mi.bounded(b['xep_0060'].get_items(jid('alice'), NS_AVATAR_META,
                                                       max_items=1, timeout=mi.TIMEOUT),
                               'bob reading alice\'s avatar metadata')
        items = items_of(res)
        info = items.get(want)
        info = info.find('{%s}info' % NS_AVATAR_META) if info is not None else None
        check(info is not None and info.get('type') == 'image/jpeg'
              and info.get('bytes') == str(len(AVATAR2)),
              'metadata after the vCard: %s' % {k: v is not None and ET.tostring(v, 'unicode')
                                                for k, v in items.items()})
        return 'metadata %s… (image/jpeg, %d bytes)' % (want[:8], len(AVATAR2))

    async def private_pep():
        a, b = st['clients']['alice/new'], st['clients']['bob/viewer']
        a.register_plugin('xep_0223')
        secret = Secret()
        secret.xml.text = 'only mine'
        await mi.bounded(a['xep_0223'].store(secret, node=SECRET, id='current',
                                             timeout=mi.TIMEOUT),
                         'xep_0223 store (persist_items, whitelist)')
        res = await mi.bounded(a['xep_0060'].get_items(jid('alice'), SECRET,
                                                       timeout=mi.TIMEOUT),
                               'alice reading her private node')
        got = items_of(res).get('current')
        check(got is not None and got.text == 'only mine', 'alice\'s private node: %s' % res)
        cond = await expect_error(b['xep_0060'].get_items(jid('alice'), SECRET,
                                                          timeout=mi.TIMEOUT),
                                  ('not-allowed', 'forbidden', 'item-not-found'),
                                  'bob reading alice\'s private node')
        return 'alice reads it; bob: %s' % cond

    async def stop():
        for c in list(st['clients'].values()):
            await close(c)
        st['clients'].clear()
        await mynad.astop()

    async def cleanup():
        for c in list(st['clients'].values()):
            await close(c)

    return [
        ('mynad starts on the shipped configuration', start),
        ('register alice and bob in-band', register),
        ('alice and bob subscribe to each other', friends),
        ('the account advertises the conversions', features),
        ('(a) XEP-0411: private XML bookmarks read as bookmarks 2', private_to_pep),
        ('(b) XEP-0411: bookmarks 2 publish and retract read through private XML',
         pep_to_private),
        ('(c) XEP-0398: a PEP avatar is the vCard PHOTO; presence carries its hash', avatar),
        ('(c) XEP-0398: a vCard PHOTO is the PEP avatar', vcard_to_pep),
        ('(d) XEP-0223: a private node, unreadable by a contact', private_pep),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup


if __name__ == '__main__':
    sys.exit(mi.main(steps, name='pep-compat'))
