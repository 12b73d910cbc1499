#!/usr/bin/python3
"""Multi-user chat rooms (XEP-0045) through slixmpp's own xep_0045
plugin, against mynad on the shipped configuration (conference.localhost
served by the muc module): a room created on first join (201, locked for
others until configured), joining a configured room (the occupants, one's
own presence with 110, the subject), groupchat, groupchat from outside
(not-acceptable), a nick change (303), private messages with their
<x xmlns=muc#user/>, the subject and who may change it, a nick conflict
(409), a nick too long (jid-malformed), leaving, and a restart that keeps
a persistent room's subject and owner.

The configured room (lobby, persistent, owned by alice) is stored in the
database between a first and a second start: room configuration is the
admin work's (muc#owner), tested on its own."""
import asyncio
import sqlite3
import sys

import myna_interop as mi
from myna_interop import check, login, close, wait_stanza

from slixmpp.exceptions import PresenceError, IqError

USERS = {'alice@localhost': 'alice-secret-1', 'bob@localhost': 'bob-secret-1',
         'carol@localhost': 'carol-secret-1'}
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)
MUC = 'conference.localhost'
LOBBY = 'lobby@' + MUC
NS_MUC_USER = 'http://jabber.org/protocol/muc#user'


def codes(pres):
    return set(pres['muc']['status_codes'])


def others(occupants, nick):
    """The nicks of @occupants (slixmpp's list holds one's own too) but @nick."""
    return [p['from'].resource for p in occupants if p['from'].resource != nick]


def seed_lobby(data_dir):
    """Stores lobby as the muc module keeps a persistent room: kv store
    muc/muc_rooms (the module's storage view) on the component's host."""
    db = sqlite3.connect(str(data_dir / 'myna.db'))
    with db:
        db.execute("INSERT INTO kv (host, user, store, key, value) VALUES (?, '', "
                   "'muc/muc_rooms', 'lobby', ?)",
                   (MUC, 'muc-room 1\nname Lobby\npersistent 1\naff 3 alice@localhost\n'))
    db.close()


def steps(mynad):
    st = {}

    async def connect(names):
        for name in names:
            jid = name + '@localhost'
            c = await login(jid, USERS[jid], mynad.c2s, resource='muc', **SCRAM)
            c.register_plugin('xep_0045')
            st[name] = c

    async def start():
        await mynad.astart()
        for jid, pw in USERS.items():
            rc, out, err = mynad.mynactl('user', 'add', jid, input=pw + '\n')
            check(rc == 0, 'mynactl user add %s: %s%s' % (jid, out, err))
        await mynad.astop()
        seed_lobby(mynad.data_dir)
        await mynad.astart()
        check(mynad.wait_log(r'1 persistent rooms loaded') is not None,
              'the stored room was not loaded')

    async def online():
        await connect(['alice', 'bob', 'carol'])

    async def create():
        pres, subject, occupants, _ = await mi.bounded(
            st['alice']['xep_0045'].join_muc_wait('fresh@' + MUC, 'alice', timeout=mi.TIMEOUT),
            'the creation of fresh')
        check({110, 201} <= codes(pres), 'self-presence codes %s lack 110/201' % codes(pres))
        check(pres['muc']['affiliation'] == 'owner' and pres['muc']['role'] == 'moderator',
              'creator is %s/%s' % (pres['muc']['affiliation'], pres['muc']['role']))
        check(subject['subject'] == '', 'a new room has a subject: %r' % subject['subject'])
        check(not others(occupants, 'alice'), 'a new room has occupants: %s' % occupants)
        try:
            await st['bob']['xep_0045'].join_muc_wait('fresh@' + MUC, 'bob', timeout=mi.TIMEOUT)
        except PresenceError as e:
            check(e.condition == 'item-not-found', 'locked room answered %s' % e.condition)
        else:
            raise mi.StepFailed('bob joined a locked room')

    async def join():
        pres, _, occupants, _ = await mi.bounded(
            st['alice']['xep_0045'].join_muc_wait(LOBBY, 'alice', timeout=mi.TIMEOUT),
            'alice joining lobby')
        check(110 in codes(pres) and 201 not in codes(pres), 'codes %s' % codes(pres))
        check(not others(occupants, 'alice'), 'an empty room listed %s' % occupants)
        pres, subject, occupants, _ = await mi.bounded(
            st['bob']['xep_0045'].join_muc_wait(LOBBY, 'bob', timeout=mi.TIMEOUT),
            'bob joining lobby')
        check(pres['muc']['role'] == 'participant', 'bob is %s' % pres['muc']['role'])
        nicks = others(occupants, 'bob')
        check(nicks == ['alice'], 'bob saw occupants %s' % nicks)
        # semi-anonymous: bob does not see alice's real JID
        seen = [str(p['muc']['jid']) for p in occupants if p['from'].resource == 'alice']
        check(seen == [''], 'bob sees a real JID: %s' % seen)
        check(sorted(st['bob']['xep_0045'].get_roster(LOBBY)) == ['alice', 'bob'],
              'bob\'s roster of lobby: %s' % st['bob']['xep_0045'].get_roster(LOBBY))
        await wait_stanza(st['alice'], mi.is_presence(LOBBY + '/bob'), 'bob\'s presence at alice')

    async def groupchat():
        b = st['bob']
        start = len(b.received)
        st['alice'].send_message(mto=LOBBY, mbody='hello lobby', mtype='groupchat')
        m = await wait_stanza(b, lambda s: s.xml.tag == '{jabber:client}message'
                              and s['body'] == 'hello lobby', 'the groupchat at bob', start=start)
        check(str(m['from']) == LOBBY + '/alice' and m['type'] == 'groupchat',
              'groupchat came as %s from %s' % (m['type'], m['from']))

    async def outsider():
        c = st['carol']
        start = len(c.received)
        c.send_message(mto=LOBBY, mbody='let me talk', mtype='groupchat')
        e = await wait_stanza(c, lambda s: s.xml.tag == '{jabber:client}message'
                              and s['type'] == 'error', 'the error at carol', start=start)
        check(e['error']['condition'] == 'not-acceptable', 'got %s' % e['error']['condition'])

    async def nick_change():
        a = st['alice']
        start = len(a.received)
        st['bob'].send_presence(pto=LOBBY + '/robert')
        gone = await wait_stanza(a, mi.is_presence(LOBBY + '/bob', 'unavailable'),
                                 'bob\'s unavailable with 303', start=start)
        item = gone.xml.find('{%s}x/{%s}item' % (NS_MUC_USER, NS_MUC_USER))
        new = item.get('nick') if item is not None else None
        check(303 in codes(gone) and new == 'robert',
              'nick change presence: codes %s, item nick %s' % (codes(gone), new))
        await wait_stanza(a, mi.is_presence(LOBBY + '/robert'), 'robert\'s presence', start=start)
        check('robert' in st['alice']['xep_0045'].get_roster(LOBBY), 'alice\'s roster lacks robert')

    async def private():
        b = st['bob']
        start = len(b.received)
        st['alice'].send_message(mto=LOBBY + '/robert', mbody='psst', mtype='chat')
        m = await wait_stanza(b, lambda s: s.xml.tag == '{jabber:client}message'
                              and s['body'] == 'psst', 'the private message', start=start)
        check(str(m['from']) == LOBBY + '/alice', 'PM from %s' % m['from'])
        check(m.xml.find('{%s}x' % NS_MUC_USER) is not None, 'PM without muc#user x')
        a = st['alice']
        start = len(a.received)
        a.send_message(mto=LOBBY + '/nobody', mbody='hello?', mtype='chat')
        e = await wait_stanza(a, lambda s: s.xml.tag == '{jabber:client}message'
                              and s['type'] == 'error', 'the error of a PM to nobody', start=start)
        check(e['error']['condition'] == 'item-not-found', 'got %s' % e['error']['condition'])

    async def subject():
        b = st['bob']
        start = len(b.received)
        st['alice']['xep_0045'].set_subject(LOBBY, 'Tea at five')
        s = await wait_stanza(b, lambda s: s.xml.tag == '{jabber:client}message'
                              and s['subject'] == 'Tea at five', 'the subject at bob', start=start)
        check(str(s['from']) == LOBBY + '/alice', 'subject from %s' % s['from'])
        start = len(b.received)
        b['xep_0045'].set_subject(LOBBY, 'Mine now')
        e = await wait_stanza(b, lambda s: s.xml.tag == '{jabber:client}message'
                              and s['type'] == 'error', 'the refusal of bob\'s subject', start=start)
        check(e['error']['condition'] == 'forbidden', 'got %s' % e['error']['condition'])

    async def conflict():
        try:
            await st['carol']['xep_0045'].join_muc_wait(LOBBY, 'alice', timeout=mi.TIMEOUT)
        except PresenceError as e:
            check(e.condition == 'conflict', 'nick in use answered %s' % e.condition)
        else:
            raise mi.StepFailed('carol joined under alice\'s nick')
        try:
            await st['carol']['xep_0045'].join_muc_wait(LOBBY, 'c' * 80, timeout=mi.TIMEOUT)
        except PresenceError as e:
            check(e.condition == 'jid-malformed', 'long nick answered %s' % e.condition)
        else:
            raise mi.StepFailed('carol joined with an 80-byte nick')

    async def leave():
        a = st['alice']
        start = len(a.received)
        st['bob']['xep_0045'].leave_muc(LOBBY, 'robert', 'bye')
        gone = await wait_stanza(a, mi.is_presence(LOBBY + '/robert', 'unavailable'),
                                 'robert leaving', start=start)
        check(gone['status'] == 'bye', 'leave status %r' % gone['status'])
        check('robert' not in a['xep_0045'].get_roster(LOBBY), 'robert still in alice\'s roster')

    async def restart():
        for name in list(st):
            await close(st.pop(name))
        await mynad.astop()
        await mynad.astart()
        await connect(['alice', 'carol'])
        pres, subj, occupants, _ = await mi.bounded(
            st['carol']['xep_0045'].join_muc_wait(LOBBY, 'carol', timeout=mi.TIMEOUT),
            'carol joining lobby after the restart')
        check(subj['subject'] == 'Tea at five', 'subject after restart: %r' % subj['subject'])
        check(not others(occupants, 'carol'), 'occupants survived the restart: %s' % occupants)
        pres, _, _, _ = await mi.bounded(
            st['alice']['xep_0045'].join_muc_wait(LOBBY, 'alice', timeout=mi.TIMEOUT),
            'alice joining lobby after the restart')
        check(pres['muc']['affiliation'] == 'owner', 'alice is %s' % pres['muc']['affiliation'])

    async def stop():
        for name in list(st):
            await close(st.pop(name))
        await mynad.astop()

    async def cleanup():
        for c in st.values():
            await close(c)

    return [
        ('mynad starts with a stored persistent room', start),
        ('alice, bob and carol log in', online),
        ('a room is created on first join (110, 201, owner) and locked for others', create),
        ('joining a configured room: occupants, self-presence, subject', join),
        ('groupchat reaches every occupant from the sender\'s nick', groupchat),
        ('groupchat from a non-occupant is not-acceptable', outsider),
        ('a nick change: unavailable with 303 and the new nick, then available', nick_change),
        ('private messages between occupants; to a missing nick item-not-found', private),
        ('the subject: a moderator sets it, a participant is forbidden', subject),
        ('a nick in use is a conflict, an 80-byte nick jid-malformed', conflict),
        ('leaving with a status', leave),
        ('a restart keeps the room\'s subject and owner, not its occupants', restart),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup


if __name__ == '__main__':
    sys.exit(mi.main(steps, name='muc-rooms'))
