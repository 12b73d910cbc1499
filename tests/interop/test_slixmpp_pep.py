#!/usr/bin/python3
"""Personal eventing (XEP-0163) through slixmpp's own plugins (xep_0115,
xep_0060, xep_0163, xep_0172, xep_0084) against mynad on the shipped
configuration (caps and pep enabled there):
 - alice and bob, alice and carol subscribe to each other; bob's entity
   capabilities announce http://jabber.org/protocol/nick+notify and
   urn:xmpp:avatar:metadata+notify, carol's caps (known to the server,
   checked with `mynactl caps show`) do not;
 - (a) alice's nickname (XEP-0172): bob gets the last item when his caps
   become known, and the next publish live; carol gets neither;
 - (b) bookmarks 2 (XEP-0402): two conferences in urn:xmpp:bookmarks:1
   with the publish-options clients send (persist_items, access_model
   whitelist, max_items max); alice reads both back, bob is refused;
 - (c) an avatar (XEP-0084): data, then metadata; bob gets the metadata
   notification and fetches the data by its id; dave, a stranger, cannot;
 - (d) an OMEMO device list (eu.siacs.conversations.axolotl.devicelist,
   access_model open) read by bob and by dave; a whitelist node read by
   alice alone;
 - (e) mynad restarts on the same data directory: the bookmarks and the
   device list are still there, with their access models."""
import asyncio
import sys
import uuid
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0004 import Form

import myna_interop as mi
from myna_interop import check, login, close, wait_stanza, is_presence, StepFailed

USERS = {'alice': 'alice-secret-1', 'bob': 'bob-secret-1', 'carol': 'carol-secret-1',
         'dave': 'dave-secret-1'}
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)
NS_PUBSUB = 'http://jabber.org/protocol/pubsub'
NS_EVENT = 'http://jabber.org/protocol/pubsub#event'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_NICK = 'http://jabber.org/protocol/nick'
NS_BOOKMARKS = 'urn:xmpp:bookmarks:1'
NS_AVATAR_DATA = 'urn:xmpp:avatar:data'
NS_AVATAR_META = 'urn:xmpp:avatar:metadata'
NS_AXOLOTL = 'eu.siacs.conversations.axolotl'
DEVICELIST = NS_AXOLOTL + '.devicelist'
SECRET = 'urn:example:myna:secret'
ROOMS = {'orchard@conference.localhost': 'The Orchard',
         'kitchen@conference.localhost': 'The Kitchen'}
DEVICES = ['1234567', '7654321']
AVATAR = bytes(range(256)) * 3          # any bytes do: nobody decodes them


def jid(user):
    return '%s@localhost' % user


def publish_options(**fields):
    """A pubsub#publish-options form: pubsub#KEY = VALUE for each field."""
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


def event_items(msg, node):
    """The <item/>s of @msg's pubsub event for @node ([] when it has none)."""
    items = msg.xml.find('{%s}event/{%s}items' % (NS_EVENT, NS_EVENT))
    if items is None or items.get('node') != node:
        return []
    return items.findall('{%s}item' % NS_EVENT)


def is_event(frm, node, pred=lambda item: True):
    def match(s):
        return (s.xml.tag == '{jabber:client}message' and s['from'].bare == frm
                and any(pred(i) for i in event_items(s, node)))
    return match


def nick_is(value):
    def pred(item):
        n = item.find('{%s}nick' % NS_NICK)
        return n is not None and n.text == value
    return pred


def steps(mynad):
    st = {'clients': {}}

    async def online(user, resource, plugins=(), interests=()):
        """@user logged in, with slixmpp's caps plugin and @plugins (their
        +notify interests) and @interests, its caps computed before its
        first presence (which then carries them)."""
        c = await login(jid(user), USERS[user], mynad.c2s, resource=resource, **SCRAM)
        for p in ('xep_0004', 'xep_0115', 'xep_0060', 'xep_0163') + tuple(plugins):
            c.register_plugin(p)
        for ns in interests:
            c['xep_0163'].add_interest(ns)
        await mi.bounded(c['xep_0115'].update_caps(broadcast=False), 'the caps of %s' % user)
        st['clients'][user] = c
        return c

    async def offline(*users):
        for u in users:
            c = st['clients'].pop(u, None)
            if c is not None:
                await close(c)

    async def expect_error(fut, conditions, what):
        try:
            res = await fut
        except IqError as e:
            check(e.condition in conditions, '%s: %s (%s), want one of %s'
                  % (what, e.condition, e.iq.xml.find('{jabber:client}error') is not None
                     and ET.tostring(e.iq.xml.find('{jabber:client}error'), 'unicode'),
                     conditions))
            return e.condition
        raise StepFailed('%s: succeeded: %s' % (what, res))

    async def caps_known(user, feature, want):
        """Waits (bounded) until the server knows @user's caps; checks
        whether they list @feature."""
        c = st['clients'][user]
        full = str(c.boundjid)
        deadline = asyncio.get_running_loop().time() + mi.TIMEOUT
        while True:
            rc, out, err = await asyncio.get_running_loop().run_in_executor(
                None, mynad.mynactl, 'caps', 'show', full)
            check(rc == 0, 'mynactl caps show %s: %s %s' % (full, rc, err))
            features = out.split()
            if features and features != ['unknown']:
                break
            if asyncio.get_running_loop().time() > deadline:
                raise StepFailed('the caps of %s stay unknown to the server' % full)
            await asyncio.sleep(0.05)
        check((feature in features) == want, 'the caps of %s %s %s: %s'
              % (full, 'lack' if want else 'list', feature, features))
        return len(features)

    async def start():
        await mynad.astart()

    async def register():
        for user, pw in USERS.items():
            c = await login(jid(user), pw, mynad.c2s, register=True, **SCRAM)
            await close(c)
            check(c.registered is True, 'registration of %s: %s' % (user, c.registered))

    async def friends():
        a = await login(jid('alice'), USERS['alice'], mynad.c2s, resource='setup', **SCRAM)
        try:
            for other in ('bob', 'carol'):
                o = await login(jid(other), USERS[other], mynad.c2s, resource='setup', **SCRAM)
                try:
                    a.send_presence()
                    o.send_presence()
                    a.send_presence(pto=jid(other), ptype='subscribe')
                    await wait_stanza(o, is_presence(jid('alice'), 'subscribe'),
                                      'the subscription request of alice')
                    o.send_presence(pto=jid('alice'), ptype='subscribed')
                    o.send_presence(pto=jid('alice'), ptype='subscribe')
                    await wait_stanza(a, is_presence(jid(other), 'subscribe'),
                                      'the subscription request of %s' % other)
                    a.send_presence(pto=jid(other), ptype='subscribed')
                    await wait_stanza(o, is_presence(jid('alice'), 'subscribed'),
                                      'the approval of alice')
                    mine = await mi.roster_items(a)
                    theirs = await mi.roster_items(o)
                    check(mine.get(jid(other), ('none',))[0] == 'both'
                          and theirs.get(jid('alice'), ('none',))[0] == 'both',
                          'subscriptions: alice %s, %s %s' % (mine, other, theirs))
                finally:
                    await close(o)
        finally:
            await close(a)
        return 'alice <-> bob, alice <-> carol: both'

    async def nick():
        a = await online('alice', 'pep', plugins=('xep_0172', 'xep_0084'))
        await mi.bounded(a['xep_0172'].publish_nick('Alice one', timeout=mi.TIMEOUT),
                         'the first nick publish (xep_0172)')
        # carol: caps without nick+notify, known to the server.
        c = await online('carol', 'pep')
        c.send_presence()
        await wait_stanza(c, lambda s: s.xml.tag == '{jabber:client}iq'
                          and s.xml.find('{%s}query' % NS_DISCO_INFO) is not None,
                          "the server's disco#info query of carol's caps")
        await caps_known('carol', NS_NICK + '+notify', False)
        # bob: caps with nick+notify (slixmpp's xep_0172 registers it).
        b = await online('bob', 'pep', plugins=('xep_0172', 'xep_0084'))
        b.send_presence()
        await wait_stanza(b, is_event(jid('alice'), NS_NICK, nick_is('Alice one')),
                          "alice's last nick once bob's caps are known")
        await caps_known('bob', NS_NICK + '+notify', True)
        mark = len(c.received)
        await mi.bounded(a['xep_0060'].publish(
            None, NS_NICK, id='current',
            payload=ET.fromstring('<nick xmlns="%s">Alice two</nick>' % NS_NICK),
            timeout=mi.TIMEOUT), 'the second nick publish')
        await wait_stanza(b, is_event(jid('alice'), NS_NICK, nick_is('Alice two')),
                          "alice's new nick, live")
        # The notifications went out with alice's result: a message alice
        # sends now reaches carol after any of them.
        token = uuid.uuid4().hex
        a.send_message(mto=jid('carol') + '/pep', mbody=token, mtype='chat')
        await wait_stanza(c, mi.is_message(jid('alice'), token), 'the marker message',
                          start=mark)
        events = [s for s in c.received if s.xml.find('{%s}event' % NS_EVENT) is not None]
        check(not events, 'carol (no nick+notify) got events: %s' % events)
        return 'bob: last item on caps, then live; carol: nothing'

    BOOKMARK_OPTIONS = dict(persist_items='true', access_model='whitelist', max_items='max',
                            send_last_published_item='never')

    async def publish_bookmark(room, **options):
        a = st['clients']['alice']
        payload = ET.fromstring('<conference xmlns="%s" name="%s" autojoin="true">'
                                '<nick>alice</nick></conference>' % (NS_BOOKMARKS, ROOMS[room]))
        res = await mi.bounded(a['xep_0060'].publish(None, NS_BOOKMARKS, id=room,
                                                     payload=payload,
                                                     options=publish_options(**options),
                                                     timeout=mi.TIMEOUT),
                               'the bookmark of %s' % room)
        got = res.xml.find('{%s}pubsub/{%s}publish/{%s}item' % ((NS_PUBSUB,) * 3))
        check(got is not None and got.get('id') == room, 'publish result: %s' % res)

    async def bookmarks():
        first = list(ROOMS)[0]
        await publish_bookmark(first, **BOOKMARK_OPTIONS)
        return await check_bookmarks([first])

    async def second_bookmark():
        await publish_bookmark(list(ROOMS)[1], **BOOKMARK_OPTIONS)
        st['second'] = True
        return await check_bookmarks()

    async def check_bookmarks(rooms=ROOMS):
        a, b = st['clients']['alice'], st['clients']['bob']
        res = await mi.bounded(a['xep_0060'].get_items(jid('alice'), NS_BOOKMARKS,
                                                       timeout=mi.TIMEOUT),
                               'alice reading her bookmarks')
        items = items_of(res)
        check(set(items) == set(rooms), 'bookmarks %s, want %s' % (sorted(items), sorted(rooms)))
        for room, el in items.items():
            check(el is not None and el.tag == '{%s}conference' % NS_BOOKMARKS
                  and el.get('name') == ROOMS[room] and el.get('autojoin') == 'true'
                  and el.findtext('{%s}nick' % NS_BOOKMARKS) == 'alice',
                  'bookmark %s: %s' % (room, el is not None and ET.tostring(el, 'unicode')))
        cond = await expect_error(b['xep_0060'].get_items(jid('alice'), NS_BOOKMARKS,
                                                          timeout=mi.TIMEOUT),
                                  ('not-allowed', 'forbidden', 'item-not-found'),
                                  'bob reading alice\'s bookmarks (whitelist)')
        return '%d bookmarks read back; bob: %s' % (len(items), cond)

    async def avatar():
        a, b = st['clients']['alice'], st['clients']['bob']
        avatar_id = a['xep_0084'].generate_id(AVATAR)
        await mi.bounded(a['xep_0084'].publish_avatar(AVATAR, timeout=mi.TIMEOUT),
                         'the avatar data')
        mark = len(b.received)
        await mi.bounded(a['xep_0084'].publish_avatar_metadata(
            {'id': avatar_id, 'type': 'image/png', 'bytes': len(AVATAR)}, timeout=mi.TIMEOUT),
            'the avatar metadata')

        def info_is(item):
            info = item.find('{%s}metadata/{%s}info' % (NS_AVATAR_META, NS_AVATAR_META))
            return info is not None and info.get('id') == avatar_id
        await wait_stanza(b, is_event(jid('alice'), NS_AVATAR_META, info_is),
                          'the metadata notification', start=mark)
        res = await mi.bounded(b['xep_0084'].retrieve_avatar(jid('alice'), avatar_id,
                                                             timeout=mi.TIMEOUT),
                               'bob fetching the avatar data by id')
        data = res['pubsub']['items']['item']['avatar_data']['value']
        check(data == AVATAR, 'the avatar bob fetched: %d bytes, want %d'
              % (len(data or b''), len(AVATAR)))
        d = await online('dave', 'pep', plugins=('xep_0084',))
        cond = await expect_error(d['xep_0084'].retrieve_avatar(jid('alice'), avatar_id,
                                                                timeout=mi.TIMEOUT),
                                  ('not-authorized', 'forbidden', 'not-allowed',
                                   'item-not-found'),
                                  'dave (no subscription) fetching the avatar (presence access)')
        return '%d bytes, id %s…; dave: %s' % (len(data), avatar_id[:8], cond)

    async def devicelist():
        a = st['clients']['alice']
        payload = ET.fromstring('<list xmlns="%s">%s</list>' % (
            NS_AXOLOTL, ''.join('<device id="%s"/>' % d for d in DEVICES)))
        await mi.bounded(a['xep_0060'].publish(None, DEVICELIST, id='current', payload=payload,
                                               options=publish_options(access_model='open'),
                                               timeout=mi.TIMEOUT),
                         'the device list')
        secret = ET.fromstring('<secret xmlns="%s">only mine</secret>' % SECRET)
        await mi.bounded(a['xep_0060'].publish(None, SECRET, id='current', payload=secret,
                                               options=publish_options(access_model='whitelist'),
                                               timeout=mi.TIMEOUT),
                         'the whitelist node')
        return await check_devicelist()

    async def check_devicelist(secret=True):
        a, b, d = (st['clients'][u] for u in ('alice', 'bob', 'dave'))
        readers = ['bob', 'dave']
        for who in readers:
            c = st['clients'][who]
            res = await mi.bounded(c['xep_0060'].get_items(jid('alice'), DEVICELIST,
                                                           timeout=mi.TIMEOUT),
                                   '%s reading the device list' % who)
            items = items_of(res)
            el = items.get('current')
            ids = ([e.get('id') for e in el.findall('{%s}device' % NS_AXOLOTL)]
                   if el is not None else None)
            check(ids == DEVICES, 'the device list %s read: %s' % (who, ids))
        if not secret:
            return 'bob and dave read the device list'
        res = await mi.bounded(a['xep_0060'].get_items(jid('alice'), SECRET,
                                                       timeout=mi.TIMEOUT),
                               'alice reading her whitelist node')
        check(set(items_of(res)) == {'current'}, 'alice\'s whitelist node: %s' % res)
        conds = []
        for who, c in (('bob', b), ('dave', d)):
            conds.append(await expect_error(c['xep_0060'].get_items(jid('alice'), SECRET,
                                                                    timeout=mi.TIMEOUT),
                                            ('not-allowed', 'forbidden', 'item-not-found'),
                                            '%s reading the whitelist node' % who))
        return 'bob and dave read the device list; the whitelist node: alice only (%s)' % (
            ', '.join(conds))

    async def restart():
        await offline(*list(st['clients']))
        await mynad.astop()
        await mynad.astart()

    async def after_restart():
        await online('alice', 'back')
        await online('bob', 'back', plugins=('xep_0084',))
        await online('dave', 'back')
        one = await check_bookmarks()
        two = await check_devicelist(secret=False)
        return '%s; %s' % (one, two)

    async def stop():
        await offline(*list(st['clients']))
        await mynad.astop()

    async def cleanup():
        await offline(*list(st['clients']))

    return [
        ('mynad starts on the shipped configuration', start),
        ('register alice, bob, carol and dave in-band', register),
        ('alice and bob, alice and carol subscribe to each other', friends),
        ('(a) nick: bob (+notify) is notified, carol (caps without it) is not', nick),
        ('(b) bookmarks 2: whitelist, max_items max; read back by alice only', bookmarks),
        ('(b) a second bookmark with the same publish-options (max_items max): both read back',
         second_bookmark),
        ('(c) avatar: data then metadata; bob fetches the data by id', avatar),
        ('(d) OMEMO device list (open): bob and dave read it; whitelist: alice only',
         devicelist),
        ('mynad restarts on the same data directory', restart),
        ('(e) the bookmarks and the device list survive the restart', after_restart),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup


if __name__ == '__main__':
    sys.exit(mi.main(steps, name='pep'))
