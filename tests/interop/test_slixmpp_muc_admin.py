#!/usr/bin/python3
"""The administration of muc rooms (XEP-0045 §7.8, §7.10, §7.13, §8–§10)
through slixmpp's own XEP-0045 plugin, against mynad on the shipped
configuration (conference.localhost served by the muc module): the room
configuration form read and submitted (and refused to a non-owner and
beyond the service's limits), affiliation lists and changes (member,
admin, outcast with 301), roles (voice revoked and granted, a kick with
307), a voice request approved by a moderator, a mediated invitation and
its decline, nick registration (jabber:iq:register) and the room's
destruction with an alternate venue."""
import sys
import xml.etree.ElementTree as ET

import myna_interop as mi
from myna_interop import check, close, wait_stanza

ALICE, PW_A = 'alice@localhost', 'alice-secret-1'
BOB, PW_B = 'bob@localhost', 'bob-secret-1'
CAROL, PW_C = 'carol@localhost', 'carol-secret-1'
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)
ROOM = 'coven@conference.localhost'
NS_USER = 'http://jabber.org/protocol/muc#user'
NS_DATA = 'jabber:x:data'
NS_REQUEST = 'http://jabber.org/protocol/muc#request'
NS_REGISTER = 'jabber:iq:register'


async def muc_login(jid, password, addr, resource):
    """A slixmpp client with the XEP-0045 and XEP-0004 plugins, logged
    in and available."""
    c = mi.make_slixmpp_client(jid, password, resource=resource, **SCRAM)
    c.register_plugin('xep_0004')
    c.register_plugin('xep_0045')
    c.connect(address=addr, force_starttls=True)
    result = await mi.bounded(c.session, 'the login of %s' % jid)
    check(result is True, 'login of %s failed: %s' % (jid, result))
    c.send_presence()
    return c


def statuses(s):
    x = s.xml.find('{%s}x' % NS_USER)
    return set() if x is None else {int(e.get('code')) for e in x.findall('{%s}status' % NS_USER)}


def item_of(s):
    x = s.xml.find('{%s}x' % NS_USER)
    return None if x is None else x.find('{%s}item' % NS_USER)


def occupant_presence(nick, ptype=None, codes=(), **attrs):
    """A presence from ROOM/@nick of type @ptype holding the status @codes
    and an <item/> with @attrs."""
    def pred(s):
        if s.xml.tag != '{jabber:client}presence' or str(s['from']) != '%s/%s' % (ROOM, nick):
            return False
        if (s.xml.get('type') or 'available') != (ptype or 'available'):
            return False
        item = item_of(s)
        return (item is not None and set(codes) <= statuses(s)
                and all(item.get(k) == v for k, v in attrs.items()))
    return pred


def form_field(form_xml, var):
    for f in form_xml.findall('{%s}field' % NS_DATA):
        if f.get('var') == var:
            return f
    return None


async def error_of(aw):
    """The stanza error condition @aw raised (None if it succeeded)."""
    import slixmpp.exceptions
    try:
        await aw
    except slixmpp.exceptions.IqError as e:
        return e.iq['error']['condition']
    return None


def steps(mynad):
    st = {}

    async def start():
        mynad.configure()
        await mynad.astart()
        for jid, pw in ((ALICE, PW_A), (BOB, PW_B), (CAROL, PW_C)):
            rc, out, err = mynad.mynactl('user', 'add', jid, input=pw + '\n')
            check(rc == 0, 'mynactl user add %s: %s%s' % (jid, out, err))

    async def online():
        st['a'] = await muc_login(ALICE, PW_A, mynad.c2s, 'a')
        st['b'] = await muc_login(BOB, PW_B, mynad.c2s, 'b')
        st['c'] = await muc_login(CAROL, PW_C, mynad.c2s, 'c')

    async def create():
        a = st['a']
        start = len(a.received)
        await mi.bounded(a['xep_0045'].join_muc_wait(ROOM, 'alice', maxstanzas=0,
                                                     timeout=mi.TIMEOUT), 'alice creates the room')
        created = await wait_stanza(a, occupant_presence('alice', codes=(110, 201),
                                                         affiliation='owner'),
                                    'the 201 self-presence', start=start)
        check(created is not None, 'no 201')
        form = await mi.bounded(a['xep_0045'].get_room_config(ROOM, timeout=mi.TIMEOUT),
                                'the configuration form')
        fields = form.get_fields()
        for var in ('muc#roomconfig_roomname', 'muc#roomconfig_membersonly',
                    'muc#roomconfig_moderatedroom', 'muc#roomconfig_passwordprotectedroom',
                    'muc#roomconfig_roomsecret', 'muc#roomconfig_maxusers',
                    'muc#roomconfig_whois', 'muc#roomconfig_allowpm',
                    'muc#roomconfig_enablearchiving', 'muc#roomconfig_roomowners'):
            check(var in fields, '%s missing from the form: %s' % (var, sorted(fields)))
        check(fields['muc#roomconfig_roomowners'].get_value() == [ALICE],
              'owners: %s' % fields['muc#roomconfig_roomowners'].get_value())
        # Beyond the service's max_occupants: not-acceptable, nothing applied.
        bad = a['xep_0004'].make_form(ftype='submit')
        bad.add_field(var='FORM_TYPE', value='http://jabber.org/protocol/muc#roomconfig')
        bad.add_field(var='muc#roomconfig_maxusers', value='100000000')
        cond = await mi.bounded(error_of(a['xep_0045'].set_room_config(ROOM, bad, timeout=mi.TIMEOUT)),
                                'a too large room')
        check(cond == 'not-acceptable', 'maxusers beyond the limit: %s' % cond)
        # The form as read, changed and submitted: a moderated, named room.
        form['type'] = 'submit'
        fields['muc#roomconfig_roomname'].set_value('The Coven')
        fields['muc#roomconfig_moderatedroom'].set_value(True)
        fields['muc#roomconfig_persistentroom'].set_value(True)
        await mi.bounded(a['xep_0045'].set_room_config(ROOM, form, timeout=mi.TIMEOUT),
                         'the configuration submitted')
        again = await mi.bounded(a['xep_0045'].get_room_config(ROOM, timeout=mi.TIMEOUT),
                                 'the configuration form again')
        f2 = again.get_fields()
        check(f2['muc#roomconfig_roomname'].get_value() == 'The Coven',
              'name: %s' % f2['muc#roomconfig_roomname'].get_value())
        check(f2['muc#roomconfig_moderatedroom'].get_value() is True, 'not moderated')

    async def others_join():
        for key, nick in (('b', 'bob'), ('c', 'carol')):
            await mi.bounded(st[key]['xep_0045'].join_muc_wait(ROOM, nick, maxstanzas=0,
                                                                timeout=mi.TIMEOUT),
                             '%s joins' % nick)
        roster = st['a']['xep_0045'].get_roster(ROOM)
        check(set(roster) >= {'alice', 'bob', 'carol'}, 'occupants: %s' % roster)
        # moderated: the newcomers are visitors
        visitors = await mi.bounded(st['a']['xep_0045'].get_roles_list(ROOM, 'visitor',
                                                                        timeout=mi.TIMEOUT),
                                    'the visitor list')
        check(sorted(visitors) == ['bob', 'carol'], 'visitors: %s' % visitors)

    async def non_owner():
        b = st['b']
        cond = await mi.bounded(error_of(b['xep_0045'].get_room_config(ROOM, timeout=mi.TIMEOUT)),
                                'bob asks for the configuration')
        check(cond == 'forbidden', 'configuration by a non-owner: %s' % cond)
        cond = await mi.bounded(error_of(b['xep_0045'].set_affiliation(
            ROOM, 'member', jid=CAROL, timeout=mi.TIMEOUT)), 'bob grants membership')
        check(cond == 'forbidden', 'membership by a visitor: %s' % cond)
        cond = await mi.bounded(error_of(b['xep_0045'].get_affiliation_list(
            ROOM, 'outcast', timeout=mi.TIMEOUT)), 'bob reads the ban list')
        check(cond == 'forbidden', 'ban list by a visitor: %s' % cond)

    async def membership():
        a, b = st['a'], st['b']
        start = len(b.received)
        await mi.bounded(a['xep_0045'].set_affiliation(ROOM, 'member', jid=BOB, timeout=mi.TIMEOUT),
                         'alice makes bob a member')
        # a member of a moderated room gets voice
        await wait_stanza(b, occupant_presence('bob', codes=(110,), affiliation='member',
                                               role='participant'),
                          "bob's new item", start=start)
        members = await mi.bounded(a['xep_0045'].get_affiliation_list(ROOM, 'member',
                                                                       timeout=mi.TIMEOUT),
                                   'the member list')
        check([str(j) for j in members] == [BOB], 'members: %s' % members)

    async def voice():
        a, c = st['a'], st['c']
        start = len(c.received)
        await mi.bounded(a['xep_0045'].set_role(ROOM, 'carol', 'participant', reason='Speak',
                                                timeout=mi.TIMEOUT), 'alice gives carol voice')
        await wait_stanza(c, occupant_presence('carol', role='participant'), 'carol has voice',
                          start=start)
        start = len(c.received)
        await mi.bounded(a['xep_0045'].set_role(ROOM, 'carol', 'visitor', timeout=mi.TIMEOUT),
                         'alice takes it back')
        await wait_stanza(c, occupant_presence('carol', role='visitor'), 'carol is a visitor',
                          start=start)

    async def voice_request():
        a, c = st['a'], st['c']
        start_a, start_c = len(a.received), len(c.received)
        c['xep_0045'].request_voice(ROOM, 'participant')

        def is_request(s):
            x = s.xml.find('{%s}x' % NS_DATA)
            return (s.xml.tag == '{jabber:client}message' and str(s['from']) == ROOM
                    and x is not None and x.get('type') == 'form'
                    and form_field(x, 'FORM_TYPE').findtext('{%s}value' % NS_DATA) == NS_REQUEST)
        req = await wait_stanza(a, is_request, 'the voice request at the moderator', start=start_a)
        x = req.xml.find('{%s}x' % NS_DATA)
        check(form_field(x, 'muc#roomnick').findtext('{%s}value' % NS_DATA) == 'carol',
              'request for: %s' % ET.tostring(x))
        # The moderator approves: the form submitted back with request_allow.
        m = a.make_message(ROOM)
        form = m['form']
        form['type'] = 'submit'
        form.add_field(var='FORM_TYPE', value=NS_REQUEST)
        form.add_field(var='muc#role', value='participant')
        form.add_field(var='muc#jid', value=form_field(x, 'muc#jid').findtext('{%s}value' % NS_DATA))
        form.add_field(var='muc#roomnick', value='carol')
        form.add_field(var='muc#request_allow', ftype='boolean', value=True)
        m.send()
        await wait_stanza(c, occupant_presence('carol', role='participant'),
                          'carol has voice after the approval', start=start_c)

    async def lists():
        a = st['a']
        parts = await mi.bounded(a['xep_0045'].get_roles_list(ROOM, 'participant',
                                                               timeout=mi.TIMEOUT),
                                 'the voice list')
        check(sorted(parts) == ['bob', 'carol'], 'participants: %s' % parts)
        mods = await mi.bounded(a['xep_0045'].get_roles_list(ROOM, 'moderator',
                                                              timeout=mi.TIMEOUT),
                                'the moderator list')
        check(mods == ['alice'], 'moderators: %s' % mods)
        owners = await mi.bounded(a['xep_0045'].get_affiliation_list(ROOM, 'owner',
                                                                      timeout=mi.TIMEOUT),
                                  'the owner list')
        check([str(j) for j in owners] == [ALICE], 'owners: %s' % owners)
        # the last owner cannot step down
        cond = await mi.bounded(error_of(a['xep_0045'].set_affiliation(
            ROOM, 'admin', jid=ALICE, timeout=mi.TIMEOUT)), 'the last owner steps down')
        check(cond == 'conflict', 'last owner: %s' % cond)

    async def kick():
        a, b, c = st['a'], st['b'], st['c']
        start_b, start_c = len(b.received), len(c.received)
        await mi.bounded(a['xep_0045'].set_role(ROOM, 'bob', 'none', reason='Out',
                                                timeout=mi.TIMEOUT), 'alice kicks bob')
        p = await wait_stanza(b, occupant_presence('bob', 'unavailable', codes=(307, 110),
                                                   role='none'),
                              "bob's kick", start=start_b)
        check(item_of(p).findtext('{%s}reason' % NS_USER) == 'Out', 'no reason')
        await wait_stanza(c, occupant_presence('bob', 'unavailable', codes=(307,)),
                          "carol sees bob's kick", start=start_c)
        check('bob' not in a['xep_0045'].get_roster(ROOM), 'bob still listed')

    async def ban():
        a, c = st['a'], st['c']
        start = len(c.received)
        await mi.bounded(a['xep_0045'].set_affiliation(ROOM, 'outcast', jid=CAROL, reason='Spam',
                                                       timeout=mi.TIMEOUT), 'alice bans carol')
        await wait_stanza(c, occupant_presence('carol', 'unavailable', codes=(301, 110),
                                               affiliation='outcast'),
                          "carol's ban", start=start)
        outcasts = await mi.bounded(a['xep_0045'].get_affiliation_list(ROOM, 'outcast',
                                                                        timeout=mi.TIMEOUT),
                                    'the ban list')
        check([str(j) for j in outcasts] == [CAROL], 'outcasts: %s' % outcasts)
        cond = await mi.bounded(error_of(a['xep_0045'].set_affiliation(
            ROOM, 'outcast', jid=ALICE, timeout=mi.TIMEOUT)), 'alice bans herself')
        check(cond == 'conflict', 'self-ban: %s' % cond)

    async def invite():
        a, b = st['a'], st['b']
        start_a, start_b = len(a.received), len(b.received)
        a['xep_0045'].invite(ROOM, BOB, reason='Come back')

        # (slixmpp raises groupchat_invite only for rooms it never joined:
        # bob was in this one, so the stanza itself is awaited)
        def is_invite(s):
            return (s.xml.tag == '{jabber:client}message' and str(s['from']) == ROOM
                    and s.xml.find('{%s}x/{%s}invite' % (NS_USER, NS_USER)) is not None)
        inv = await wait_stanza(b, is_invite, "bob's invitation", start=start_b)
        check(str(inv['muc']['invite']['from']).startswith(ALICE),
              'invite from: %s' % inv['muc']['invite']['from'])
        check(inv['muc']['invite']['reason'] == 'Come back',
              'reason: %s' % inv['muc']['invite']['reason'])
        conf = inv.xml.find('{jabber:x:conference}x')
        check(conf is not None and conf.get('jid') == ROOM, 'no jabber:x:conference element')
        b['xep_0045'].decline(ROOM, str(inv['muc']['invite']['from']), reason='Later')

        def is_decline(s):
            d = s.xml.find('{%s}x/{%s}decline' % (NS_USER, NS_USER))
            return (s.xml.tag == '{jabber:client}message' and str(s['from']) == ROOM
                    and d is not None and d.get('from') == BOB
                    and d.findtext('{%s}reason' % NS_USER) == 'Later')
        await wait_stanza(a, is_decline, "bob's decline at alice", start=start_a)

    async def register():
        b = st['b']
        iq = b.make_iq_get(NS_REGISTER, ito=ROOM)
        res = await mi.bounded(iq.send(timeout=mi.TIMEOUT), 'the registration form')
        x = res.xml.find('{%s}query/{%s}x' % (NS_REGISTER, NS_DATA))
        check(x is not None and form_field(x, 'muc#register_roomnick') is not None,
              'no muc#register form: %s' % res)
        iq = b.make_iq_set(ito=ROOM)
        q = ET.SubElement(iq.xml, '{%s}query' % NS_REGISTER)
        form = b['xep_0004'].make_form(ftype='submit')
        form.add_field(var='FORM_TYPE', value='http://jabber.org/protocol/muc#register')
        form.add_field(var='muc#register_roomnick', value='bobby')
        q.append(form.xml)
        await mi.bounded(iq.send(timeout=mi.TIMEOUT), 'the registration')
        iq = b.make_iq_get(NS_REGISTER, ito=ROOM)
        res = await mi.bounded(iq.send(timeout=mi.TIMEOUT), 'the registration again')
        q = res.xml.find('{%s}query' % NS_REGISTER)
        check(q.find('{%s}registered' % NS_REGISTER) is not None
              and q.findtext('{%s}username' % NS_REGISTER) == 'bobby',
              'not registered: %s' % res)

    async def destroy():
        a, b = st['a'], st['b']
        await mi.bounded(b['xep_0045'].join_muc_wait(ROOM, 'bobby', maxstanzas=0,
                                                     timeout=mi.TIMEOUT), 'bob comes back')
        start = len(b.received)
        await mi.bounded(a['xep_0045'].destroy(ROOM, reason='Moved',
                                               altroom='newcoven@conference.localhost',
                                               timeout=mi.TIMEOUT), 'alice destroys the room')

        def is_destroyed(s):
            x = s.xml.find('{%s}x' % NS_USER)
            d = x.find('{%s}destroy' % NS_USER) if x is not None else None
            return (s.xml.tag == '{jabber:client}presence' and s.xml.get('type') == 'unavailable'
                    and d is not None and d.get('jid') == 'newcoven@conference.localhost'
                    and d.findtext('{%s}reason' % NS_USER) == 'Moved')
        await wait_stanza(b, is_destroyed, "bob's room destroyed", start=start)

    async def stop():
        for k in ('a', 'b', 'c'):
            await close(st.pop(k))
        await mynad.astop()

    async def cleanup():
        for c in list(st.values()):
            await close(c)

    return [
        ('mynad starts on the shipped configuration; alice, bob, carol exist', start),
        ('alice, bob and carol log in (SCRAM-SHA-256) and are available', online),
        ('alice creates the room (201), reads, refuses and submits the configuration form', create),
        ('bob and carol join the moderated room as visitors', others_join),
        ('a non-owner is refused the configuration, affiliations and lists (forbidden)', non_owner),
        ('membership granted: the member list and voice in a moderated room', membership),
        ('voice granted and revoked (roles participant, visitor)', voice),
        ("a visitor's voice request reaches the moderator, whose approval grants voice", voice_request),
        ('the voice, moderator and owner lists; the last owner cannot step down', lists),
        ('a kick: 307 with the reason, to the kicked and the others', kick),
        ('a ban: 301, the ban list, no banning oneself', ban),
        ('a mediated invitation and its decline', invite),
        ('nick registration (jabber:iq:register, muc#register)', register),
        ('the room destroyed with an alternate venue', destroy),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup


if __name__ == '__main__':
    sys.exit(mi.main(steps, name='muc-admin'))
