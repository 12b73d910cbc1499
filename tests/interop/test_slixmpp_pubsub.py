#!/usr/bin/python3
"""The publish-subscribe service (XEP-0060) on pubsub.localhost through
slixmpp's own plugins (xep_0030, xep_0004, xep_0060) against mynad on the
shipped configuration (the [component:pubsub.localhost] section there):
 - (a) disco: pubsub.localhost is listed by localhost and is a
   pubsub/service with create-nodes, subscribe and publish;
 - (b) alice creates a node with a configuration form (create-and-
   configure), bob subscribes his bare JID and gets alice's publish as a
   notification from pubsub.localhost; bob reads the items back;
 - (c) a whitelist node refuses carol (items and subscription) until
   alice makes her a member;
 - (d) mynad restarts on the same data directory: the node, its items and
   configuration are still there, bob is still subscribed (the next
   publish reaches him) and carol still a member of the whitelist node."""
import sys
import uuid
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0004 import Form

import myna_interop as mi
from myna_interop import check, login, close, wait_stanza, StepFailed

USERS = {'alice': 'alice-secret-1', 'bob': 'bob-secret-1', 'carol': 'carol-secret-1'}
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)
SERVICE = 'pubsub.localhost'
NS_PUBSUB = 'http://jabber.org/protocol/pubsub'
NS_EVENT = 'http://jabber.org/protocol/pubsub#event'
NS_ENTRY = 'urn:example:myna:entry'
NEWS = 'news'
CLUB = 'club'


def jid(user):
    return '%s@localhost' % user


def node_config(**fields):
    """A pubsub#node_config form: pubsub#KEY = VALUE for each field."""
    form = Form()
    form['type'] = 'submit'
    for key, value in fields.items():
        form.add_field(var='pubsub#' + key, value=value)
    return form


def entry(text):
    return ET.fromstring('<entry xmlns="%s">%s</entry>' % (NS_ENTRY, text))


def items_of(iq):
    """{item id: payload text} of a pubsub <items/> result."""
    items = iq.xml.find('{%s}pubsub/{%s}items' % (NS_PUBSUB, NS_PUBSUB))
    check(items is not None, 'an items result without <items/>: %s' % iq)
    out = {}
    for i in items.findall('{%s}item' % NS_PUBSUB):
        e = i.find('{%s}entry' % NS_ENTRY)
        out[i.get('id')] = e.text if e is not None else None
    return out


def is_event(node, text):
    """A notification from the service of an item of @node with @text."""
    def match(s):
        if s.xml.tag != '{jabber:client}message' or str(s['from']) != SERVICE:
            return False
        items = s.xml.find('{%s}event/{%s}items' % (NS_EVENT, NS_EVENT))
        if items is None or items.get('node') != node:
            return False
        return any(i.findtext('{%s}entry' % NS_ENTRY) == text
                   for i in items.findall('{%s}item' % NS_EVENT))
    return match


def steps(mynad):
    st = {'clients': {}}

    async def online(user, resource):
        c = await login(jid(user), USERS[user], mynad.c2s, resource=resource, **SCRAM)
        for p in ('xep_0030', 'xep_0004', 'xep_0060'):
            c.register_plugin(p)
        c.send_presence()
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

    async def disco():
        a = await online('alice', 'ps')
        items = await mi.bounded(a['xep_0030'].get_items(jid='localhost', timeout=mi.TIMEOUT),
                                 'disco#items of localhost')
        jids = [i[0] for i in items['disco_items']['items']]
        check(SERVICE in jids, 'localhost lists %s' % jids)
        info = await mi.bounded(a['xep_0030'].get_info(jid=SERVICE, timeout=mi.TIMEOUT),
                                'disco#info of %s' % SERVICE)
        idents = info['disco_info']['identities']
        feats = set(info['disco_info']['features'])
        check(any(i[0] == 'pubsub' and i[1] == 'service' for i in idents),
              'identities: %s' % (idents,))
        want = {NS_PUBSUB + '#' + f for f in ('create-nodes', 'subscribe', 'publish',
                                               'create-and-configure', 'access-whitelist')}
        check(want <= feats, 'missing features: %s' % (want - feats))
        return '%d features' % len(feats)

    async def notify():
        a = st['clients']['alice']
        b = await online('bob', 'ps')
        await mi.bounded(a['xep_0060'].create_node(
            SERVICE, NEWS, config=node_config(title='News', max_items='10'),
            timeout=mi.TIMEOUT), 'create %s' % NEWS)
        res = await mi.bounded(b['xep_0060'].subscribe(SERVICE, NEWS, timeout=mi.TIMEOUT),
                               'bob subscribes')
        sub = res['pubsub']['subscription']
        check(sub['subscription'] == 'subscribed' and str(sub['jid']) == jid('bob'),
              'subscription: %s' % sub)
        await mi.bounded(a['xep_0060'].publish(SERVICE, NEWS, id='first',
                                               payload=entry('hello'), timeout=mi.TIMEOUT),
                         'alice publishes')
        await wait_stanza(b, is_event(NEWS, 'hello'), "the notification of alice's item")
        res = await mi.bounded(b['xep_0060'].get_items(SERVICE, NEWS, timeout=mi.TIMEOUT),
                               'bob reads the items')
        got = items_of(res)
        check(got == {'first': 'hello'}, 'items: %s' % got)
        return 'bob notified and read %s' % got

    async def whitelist():
        a = st['clients']['alice']
        c = await online('carol', 'ps')
        await mi.bounded(a['xep_0060'].create_node(
            SERVICE, CLUB, config=node_config(access_model='whitelist'), timeout=mi.TIMEOUT),
            'create the whitelist node')
        await mi.bounded(a['xep_0060'].publish(SERVICE, CLUB, id='m', payload=entry('secret'),
                                               timeout=mi.TIMEOUT), 'publish to it')
        c1 = await expect_error(c['xep_0060'].get_items(SERVICE, CLUB, timeout=mi.TIMEOUT),
                                ('not-allowed',), 'carol reads the whitelist node')
        c2 = await expect_error(c['xep_0060'].subscribe(SERVICE, CLUB, timeout=mi.TIMEOUT),
                                ('not-allowed',), 'carol subscribes to it')
        await mi.bounded(a['xep_0060'].modify_affiliations(
            SERVICE, CLUB, affiliations=[(jid('carol'), 'member')], timeout=mi.TIMEOUT),
            'alice makes carol a member')
        res = await mi.bounded(c['xep_0060'].get_items(SERVICE, CLUB, timeout=mi.TIMEOUT),
                               'carol reads it as a member')
        check(items_of(res) == {'m': 'secret'}, 'items: %s' % items_of(res))
        return 'carol refused (%s, %s), then a member' % (c1, c2)

    async def restart():
        await offline(*list(st['clients']))
        await mynad.astop()
        await mynad.astart()

    async def after_restart():
        a = await online('alice', 'back')
        b = await online('bob', 'back')
        c = await online('carol', 'back')
        res = await mi.bounded(b['xep_0060'].get_items(SERVICE, NEWS, timeout=mi.TIMEOUT),
                               'bob reads the items after the restart')
        check(items_of(res) == {'first': 'hello'}, 'items: %s' % items_of(res))
        conf = await mi.bounded(a['xep_0060'].get_node_config(SERVICE, NEWS, timeout=mi.TIMEOUT),
                                'the configuration after the restart')
        values = conf['pubsub_owner']['configure']['form'].get_values()
        check(values.get('pubsub#title') == 'News'
              and str(values.get('pubsub#max_items')) == '10', 'configuration: %s' % values)
        token = str(uuid.uuid4())
        await mi.bounded(a['xep_0060'].publish(SERVICE, NEWS, payload=entry(token),
                                               timeout=mi.TIMEOUT), 'publish after the restart')
        await wait_stanza(b, is_event(NEWS, token), 'the notification after the restart')
        res = await mi.bounded(c['xep_0060'].get_items(SERVICE, CLUB, timeout=mi.TIMEOUT),
                               'carol, still a member')
        check(items_of(res) == {'m': 'secret'}, 'items: %s' % items_of(res))
        return 'node, items, configuration, subscription and membership kept'

    async def stop():
        await offline(*list(st['clients']))
        await mynad.astop()

    async def cleanup():
        await offline(*list(st['clients']))

    return [
        ('mynad starts on the shipped configuration', start),
        ('register alice, bob and carol in-band', register),
        ('(a) disco: localhost lists %s, a pubsub/service' % SERVICE, disco),
        ('(b) alice creates and publishes, bob subscribed is notified', notify),
        ('(c) a whitelist node refuses carol until she is a member', whitelist),
        ('mynad restarts on the same data directory', restart),
        ('(d) the nodes, items, subscription and membership survive the restart',
         after_restart),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup


if __name__ == '__main__':
    sys.exit(mi.main(steps, name='pubsub'))
