#!/usr/bin/python3
"""MUC history and the room archive through slixmpp's own plugins
(xep_0045 join_muc_wait with its history options, xep_0313 on the room
JID) against mynad on the shipped configuration: a persistent room
configured by its owner's form, groupchat messages with XEP-0359
stanza-ids by the room, history on join within the client's <history/>
(maxstanzas, maxchars, seconds, since) with <delay from=room/>, MAM on the
room JID with the same ids, then a restart of mynad on the same data
directory that keeps the room, its owner, its history and its archive."""
import asyncio
import contextlib
import datetime
import io
import sys
import uuid

from slixmpp.exceptions import IqError

import myna_interop as mi
from myna_interop import check, login, close

ROOM = 'history-%s@conference.localhost' % uuid.uuid4().hex[:6]
USERS = {'alice': 'alice-secret-1', 'bob': 'bob-secret-1', 'carol': 'carol-secret-1'}
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)
NS_SID = 'urn:xmpp:sid:0'
NS_DELAY = 'urn:xmpp:delay'
HISTORY = 4          # the room's muc#roomconfig_historylength
N = 6                # messages alice sends


def jid(user):
    return '%s@localhost' % user


def stanza_id(msg):
    """The id of @msg's stanza-id by the room (exactly one)."""
    ids = [e for e in msg.xml.findall('{%s}stanza-id' % NS_SID) if e.get('by') == ROOM]
    check(len(ids) == 1, 'stanza-ids by the room in %s: %d' % (msg, len(ids)))
    return ids[0].get('id')


def steps(mynad):
    st = {'clients': {}}

    async def online(user, resource='muc'):
        c = await login(jid(user), USERS[user], mynad.c2s, resource=resource, **SCRAM)
        c.register_plugin('xep_0082')
        c.register_plugin('xep_0045')
        c.register_plugin('xep_0059')
        c.register_plugin('xep_0313')
        c.send_presence()
        st['clients'][user] = c
        return c

    async def join(user, nick, **history):
        c = st['clients'][user]
        # slixmpp 1.8.3's join_muc_wait prints each history message's delay
        # to stdout: kept out of the TAP stream.
        with contextlib.redirect_stdout(io.StringIO()):
            return await mi.bounded(c['xep_0045'].join_muc_wait(ROOM, nick, timeout=mi.TIMEOUT,
                                                               **history),
                                    '%s joining %s with %s' % (user, ROOM, history))

    async def offline(*users):
        for u in users:
            c = st['clients'].pop(u, None)
            if c is not None:
                await close(c)

    async def start():
        await mynad.astart()

    async def register():
        for user, pw in USERS.items():
            c = await login(jid(user), pw, mynad.c2s, register=True, **SCRAM)
            await close(c)
            check(c.registered is True, 'registration of %s: %s' % (user, c.registered))

    async def create():
        a = await online('alice')
        presence, subject, occupants, history = await join('alice', 'Alice')
        codes = {int(s.get('code')) for s in presence.xml.iter('{http://jabber.org/protocol/muc#user}status')}
        check(201 in codes and 110 in codes, 'creation status codes: %s' % sorted(codes))
        try:
            form = await mi.bounded(a['xep_0045'].get_room_config(ROOM, timeout=mi.TIMEOUT),
                                    'the room configuration form')
        except IqError as e:
            if e.condition != 'feature-not-implemented':
                raise
            # Without the owner's form (muc#owner, admin.c) the room stays
            # locked and temporary: nothing below can run.
            st['no_form'] = True
            raise mi.Skip('the room configuration form is not implemented here')
        fields = form.get_fields()
        # The history length: XEP-0045's registered muc#maxhistoryfetch, or
        # Prosody's muc#roomconfig_historylength.
        length = next((v for v in ('muc#maxhistoryfetch', 'muc#roomconfig_historylength')
                       if v in fields), 'muc#maxhistoryfetch')
        values = {'muc#roomconfig_persistentroom': True, length: str(HISTORY),
                  'muc#roomconfig_enablearchiving': True}
        for var in values:
            check(var in fields, 'the configuration form lacks %s: %s' % (var, sorted(fields)))
        form.reply()                        # in place: type='submit'
        form.set_values(values)
        await mi.bounded(a['xep_0045'].set_room_config(ROOM, form, timeout=mi.TIMEOUT),
                         'the configuration submitted')
        return 'persistent, archived, history %d' % HISTORY

    async def talk():
        a = st['clients']['alice']
        tag = uuid.uuid4().hex[:6]
        st['bodies'], st['ids'] = [], []
        for i in range(N):
            body = '%s #%d' % (tag, i)
            echo = asyncio.get_running_loop().create_future()

            def on_message(msg, body=body, echo=echo):
                if msg['body'] == body and not echo.done():
                    echo.set_result(msg)
            handler = 'muc::%s::message' % ROOM
            a.add_event_handler(handler, on_message)
            a.send_message(mto=ROOM, mbody=body, mtype='groupchat')
            msg = await mi.bounded(echo, 'the echo of %r' % body)
            a.del_event_handler(handler, on_message)
            st['bodies'].append(body)
            st['ids'].append(stanza_id(msg))
        check(len(set(st['ids'])) == N, 'stanza-ids not unique: %s' % st['ids'])
        return 'stanza-ids %s…' % st['ids'][0]

    def check_history(history, want, what):
        bodies = [m['body'] for m in history]
        check(bodies == st['bodies'][len(st['bodies']) - want:] if want else bodies == [],
              '%s: history %s, want the last %d of %s' % (what, bodies, want, st['bodies']))
        for m in history:
            delay = m.xml.find('{%s}delay' % NS_DELAY)
            check(delay is not None and delay.get('from') == ROOM and delay.get('stamp'),
                  '%s: no <delay from=room/> in %s' % (what, m))
            check(stanza_id(m) in st['ids'], '%s: unknown stanza-id in %s' % (what, m))
        return len(bodies)

    async def history_options():
        await online('bob')
        await online('carol')
        _, _, _, h = await join('bob', 'Bob', maxstanzas=2)
        check_history(h, 2, 'maxstanzas=2')
        _, _, _, h = await join('carol', 'Carol', maxchars=0)
        check_history(h, 0, 'maxchars=0')
        await offline('bob', 'carol')
        await online('bob', 'again')
        await online('carol', 'again')
        _, _, _, h = await join('bob', 'Bob', seconds=3600)
        check_history(h, HISTORY, 'seconds=3600')
        _, _, _, h = await join('carol', 'Carol', since=datetime.datetime(2999, 1, 1,
                                                                           tzinfo=datetime.timezone.utc))
        check_history(h, 0, 'since=2999')
        await offline('bob', 'carol')
        return 'maxstanzas, maxchars, seconds, since'

    async def mam():
        b = await online('bob', 'mam')
        got = []
        async for m in b['xep_0313'].iterate(jid=ROOM, rsm={'max': 4}):
            got.append(m)
        bodies = [m['mam_result']['forwarded']['stanza']['body'] for m in got]
        ids = [m['mam_result']['id'] for m in got]
        check(bodies == st['bodies'], 'the room archive: %s' % bodies)
        check(ids == st['ids'], 'archive ids %s are not the stanza-ids %s' % (ids, st['ids']))
        check(all(m['from'] == ROOM for m in got), 'results not from the room')
        await offline('bob')
        return '%d messages in pages of 4, ids = stanza-ids' % len(got)

    async def restart():
        await offline(*list(st['clients']))
        await mynad.astop()
        await mynad.astart()

    async def after_restart():
        b = await online('bob', 'back')
        presence, subject, occupants, h = await join('bob', 'Bob')
        n = check_history(h, HISTORY, 'after the restart')
        got = []
        async for m in b['xep_0313'].iterate(jid=ROOM, rsm={'max': 10}):
            got.append(m)
        ids = [m['mam_result']['id'] for m in got]
        check(ids == st['ids'], 'the archive after the restart: %s, want %s' % (ids, st['ids']))
        a = await online('alice', 'back')     # owners read the owner list
        items = await mi.bounded(a['xep_0045'].get_affiliation_list(ROOM, 'owner',
                                                                    timeout=mi.TIMEOUT),
                                 'the owner list')
        check(jid('alice') in [str(i) for i in items], 'owners after the restart: %s' % items)
        return '%d messages of history, %d archived, alice still owner' % (n, len(ids))

    async def stop():
        await offline(*list(st['clients']))
        await mynad.astop()

    async def cleanup():
        await offline(*list(st['clients']))

    def needs_form(fn):
        async def step():
            if st.get('no_form'):
                raise mi.Skip('needs the room configuration form')
            return await fn()
        return step

    talk, history_options, mam, after_restart = (needs_form(f) for f in
                                                 (talk, history_options, mam, after_restart))

    return [
        ('mynad starts on the shipped configuration', start),
        ('register alice, bob and carol in-band', register),
        ('alice creates %s (201) and configures it: persistent, archived' % ROOM, create),
        ('alice says %d things; each echo has a stanza-id by the room' % N, talk),
        ('history on join: maxstanzas, maxchars=0, seconds, since', history_options),
        ('MAM on the room JID pages through the archive; ids = stanza-ids', mam),
        ('mynad restarts on the same data directory', restart),
        ('the room keeps its history, archive and owner across the restart', after_restart),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup


if __name__ == '__main__':
    sys.exit(mi.main(steps, name='muc-history'))
