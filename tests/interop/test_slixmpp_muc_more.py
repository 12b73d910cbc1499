#!/usr/bin/python3
"""More of XEP-0045 through slixmpp's own plugins (xep_0045, xep_0249),
against mynad on the shipped configuration (conference.localhost served by
the muc module), the points the other muc interop tests leave out:

 - a password-protected room: no or a wrong password is not-authorized
   (auth), the right one joins;
 - a members-only room: a non-member gets registration-required (auth),
   a member granted by the owner joins;
 - one user in a room under one nick from two resources (§7.2.8 as
   Prosody and ejabberd do it): both sessions get the occupants and the
   self-presence (110), the others see one occupant, groupchat reaches both
   sessions, the nick stays until the last session leaves;
 - a direct invitation (XEP-0249) passed through from the inviter's full
   JID;
 - a voice request (§7.13) written by hand, reaching the moderator as a
   form, whose approval gives voice;
 - bad input: a visitor speaking in a moderated room (forbidden), a subject
   over max_subject_length (not-acceptable), groupchat to a room one is not
   in (not-acceptable), a configuration form from a non-owner (forbidden),
   blank and empty nicks (jid-malformed);
 - `mynactl muc create|list|destroy`, the destroyed room's occupants
   getting <destroy/> with 110."""
import sys
import xml.etree.ElementTree as ET

import myna_interop as mi
from myna_interop import check, close, wait_stanza

ALICE, PW_A = 'alice@localhost', 'alice-secret-1'
BOB, PW_B = 'bob@localhost', 'bob-secret-1'
CAROL, PW_C = 'carol@localhost', 'carol-secret-1'
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)
MUC = 'conference.localhost'
VAULT = 'vault@' + MUC        # password-protected
CLUB = 'club@' + MUC          # members-only
LOBBY = 'lobby@' + MUC        # open: two resources of carol
STAGE = 'stage@' + MUC        # moderated
HALL = 'hall@' + MUC          # made and destroyed with mynactl
SECRET = 'sesame'
MAX_SUBJECT = 1024            # max_subject_length in the shipped conf/myna.conf
NS_MUC = 'http://jabber.org/protocol/muc'
NS_USER = 'http://jabber.org/protocol/muc#user'
NS_DATA = 'jabber:x:data'
NS_REQUEST = 'http://jabber.org/protocol/muc#request'
NS_CONFIG = 'http://jabber.org/protocol/muc#roomconfig'
NS_CONFERENCE = 'jabber:x:conference'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'


async def muc_login(jid, password, addr, resource):
    """A slixmpp client with the XEP-0004, XEP-0045 and XEP-0249 plugins,
    logged in and available."""
    c = mi.make_slixmpp_client(jid, password, resource=resource, **SCRAM)
    for p in ('xep_0004', 'xep_0045', 'xep_0249', 'xep_0128'):
        c.register_plugin(p)
    c.direct_invites = []
    c.add_event_handler('groupchat_direct_invite', c.direct_invites.append)
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


def presence_from(jid, ptype=None, codes=(), **attrs):
    """A presence from @jid of type @ptype holding the status @codes and an
    <item/> with @attrs."""
    def pred(s):
        if s.xml.tag != '{jabber:client}presence' or str(s['from']) != jid:
            return False
        if (s.xml.get('type') or 'available') != (ptype or 'available'):
            return False
        item = item_of(s)
        return (set(codes) <= statuses(s)
                and (not attrs or item is not None)
                and all(item.get(k) == v for k, v in attrs.items()))
    return pred


def error_from(jid, tag='message'):
    """A stanza of type error named @tag from @jid."""
    def pred(s):
        return (s.xml.tag == '{jabber:client}%s' % tag and s.xml.get('type') == 'error'
                and str(s['from']) == jid)
    return pred


def condition(s):
    """(type, condition) of the <error/> of @s."""
    e = s.xml.find('{jabber:client}error')
    check(e is not None, 'error stanza without <error/>: %s' % s)
    conds = [c.tag.split('}')[1] for c in e if c.tag.startswith('{%s}' % NS_STANZAS)
             and c.tag != '{%s}text' % NS_STANZAS]
    return e.get('type'), conds[0] if len(conds) == 1 else conds


def form_field(x, var):
    for f in x.findall('{%s}field' % NS_DATA):
        if f.get('var') == var:
            return f
    return None


def field_value(x, var):
    f = form_field(x, var)
    return None if f is None else f.findtext('{%s}value' % NS_DATA)


async def join_refused(c, room, nick, password=None):
    """Joins @room as @nick and expects an error presence: its (type,
    condition)."""
    from slixmpp.exceptions import PresenceError
    try:
        await mi.bounded(c['xep_0045'].join_muc_wait(room, nick, password=password,
                                                     maxstanzas=0, timeout=mi.TIMEOUT),
                         '%s joining %s' % (nick, room))
    except PresenceError as e:
        check(str(e.presence['from']) == '%s/%s' % (room, nick),
              'error presence from %s' % e.presence['from'])
        return e.etype, e.condition
    raise mi.StepFailed('%s joined %s but must be refused' % (nick, room))


async def iq_error(aw):
    """(type, condition) of the IQ error @aw raised; fails if it succeeded."""
    from slixmpp.exceptions import IqError
    try:
        await mi.bounded(aw, 'an IQ answer')
    except IqError as e:
        return e.etype, e.condition
    raise mi.StepFailed('the IQ succeeded but must be refused')


async def create_room(c, room, nick, **fields):
    """@c creates @room as @nick (201) and submits the configuration form
    with muc#roomconfig_@fields."""
    pres, _, _, _ = await mi.bounded(c['xep_0045'].join_muc_wait(room, nick, maxstanzas=0,
                                                                  timeout=mi.TIMEOUT),
                                     'the creation of %s' % room)
    check({110, 201} <= statuses(pres), 'creation of %s: codes %s' % (room, statuses(pres)))
    form = c['xep_0004'].make_form(ftype='submit')
    form.add_field(var='FORM_TYPE', value=NS_CONFIG)
    for k, v in fields.items():
        form.add_field(var='muc#roomconfig_' + k, value=v)
    await mi.bounded(c['xep_0045'].set_room_config(room, form, timeout=mi.TIMEOUT),
                     'the configuration of %s' % room)


async def settled(c, service=MUC):
    """A round trip to the muc service from @c: whatever the service sent
    @c before its answer has arrived when this returns (one session's
    stanzas are delivered in order)."""
    await mi.bounded(c['xep_0030'].get_info(jid=service, timeout=mi.TIMEOUT),
                     'a disco#info round trip to %s' % service)


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
        st['c1'] = await muc_login(CAROL, PW_C, mynad.c2s, 'one')
        st['c2'] = await muc_login(CAROL, PW_C, mynad.c2s, 'two')

    async def password():
        a, b = st['a'], st['b']
        await create_room(a, VAULT, 'alice', passwordprotectedroom='1', roomsecret=SECRET)
        r = await b['xep_0030'].get_info(jid=VAULT, timeout=mi.TIMEOUT)
        check('muc_passwordprotected' in r['disco_info']['features'],
              'vault is not muc_passwordprotected: %s' % r['disco_info']['features'])
        got = await join_refused(b, VAULT, 'bob')
        check(got == ('auth', 'not-authorized'), 'no password: %s/%s' % got)
        got = await join_refused(b, VAULT, 'bob', password='open-sesame')
        check(got == ('auth', 'not-authorized'), 'a wrong password: %s/%s' % got)
        check('bob' not in a['xep_0045'].get_roster(VAULT), 'a refused bob is listed')
        # The right one, with slixmpp's join_muc(password=…).
        start = len(b.received)
        fut = b['xep_0045'].join_muc(VAULT, 'bob', password=SECRET)
        pres, _, occupants, _ = await mi.bounded(fut, 'bob joining with the password')
        check(pres['type'] != 'error' and 110 in statuses(pres),
              'self-presence with the password: %s' % pres)
        check([p['from'].resource for p in occupants if p['from'].resource != 'bob'] == ['alice'],
              'bob saw %s' % occupants)
        sent = [s for s in b.received[start:] if s.xml.tag == '{jabber:client}presence'
                and s.xml.get('type') == 'error']
        check(not sent, 'error presence beside the join: %s' % sent)

    async def members_only():
        a, b = st['a'], st['b']
        await create_room(a, CLUB, 'alice', membersonly='1')
        got = await join_refused(b, CLUB, 'bob')
        check(got == ('auth', 'registration-required'), 'non-member: %s/%s' % got)
        await mi.bounded(a['xep_0045'].set_affiliation(CLUB, 'member', jid=BOB,
                                                       timeout=mi.TIMEOUT),
                         'alice makes bob a member')
        pres, _, _, _ = await mi.bounded(b['xep_0045'].join_muc_wait(CLUB, 'bob', maxstanzas=0,
                                                                     timeout=mi.TIMEOUT),
                                         'bob joining as a member')
        check(110 in statuses(pres) and pres['muc']['affiliation'] == 'member'
              and pres['muc']['role'] == 'participant',
              'member joined as %s/%s codes %s' % (pres['muc']['affiliation'],
                                                  pres['muc']['role'], statuses(pres)))

    async def two_resources():
        a, c1, c2 = st['a'], st['c1'], st['c2']
        await create_room(a, LOBBY, 'alice')
        start_a = len(a.received)
        pres, _, occ1, _ = await mi.bounded(c1['xep_0045'].join_muc_wait(
            LOBBY, 'carol', maxstanzas=0, timeout=mi.TIMEOUT), 'carol/one joining')
        check(110 in statuses(pres), 'carol/one self-presence codes %s' % statuses(pres))
        await wait_stanza(a, presence_from(LOBBY + '/carol'), "carol's presence at alice",
                          start=start_a)
        start_c1 = len(c1.received)
        pres, _, occ2, _ = await mi.bounded(c2['xep_0045'].join_muc_wait(
            LOBBY, 'carol', maxstanzas=0, timeout=mi.TIMEOUT), 'carol/two joining')
        check(110 in statuses(pres) and 201 not in statuses(pres)
              and pres['muc']['role'] == 'participant',
              'carol/two self-presence: codes %s role %s' % (statuses(pres), pres['muc']['role']))
        nicks = sorted(p['from'].resource for p in occ2)
        check(nicks == ['alice', 'carol'], 'carol/two got the occupants %s' % nicks)
        # carol/one is told its nick again (self-presence, 110)
        await wait_stanza(c1, presence_from(LOBBY + '/carol', codes=(110,)),
                          'the self-presence again at carol/one', start=start_c1)
        # Alice sees one occupant carol, not two.
        await settled(a)
        # (the second session's join is at most a presence update of the
        # nick: never a leave, never 110 or 201 to the others)
        joins = [s for s in a.received[start_a:] if presence_from(LOBBY + '/carol')(s)]
        check(1 <= len(joins) <= 2 and not any(statuses(s) for s in joins),
              'alice got presences of carol: %s' % joins)
        gone = [s for s in a.received[start_a:]
                if presence_from(LOBBY + '/carol', 'unavailable')(s)]
        check(not gone, 'alice saw carol leave on the second join: %s' % gone)
        parts = await mi.bounded(a['xep_0045'].get_roles_list(LOBBY, 'participant',
                                                               timeout=mi.TIMEOUT),
                                 'the participant list')
        check(parts == ['carol'], 'participants: %s' % parts)
        r = await a['xep_0030'].get_info(jid=LOBBY, timeout=mi.TIMEOUT)
        n = r['disco_info']['form'].get_values().get('muc#roominfo_occupants')
        check(str(n) == '2', 'muc#roominfo_occupants %s with alice and carol twice' % n)
        # Groupchat reaches both sessions.
        s1, s2 = len(c1.received), len(c2.received)
        a.send_message(mto=LOBBY, mbody='hello both', mtype='groupchat')
        for c, s in ((c1, s1), (c2, s2)):
            m = await wait_stanza(c, mi.is_message(LOBBY, 'hello both'),
                                  'the groupchat at %s' % c.boundjid, start=s)
            check(str(m['from']) == LOBBY + '/alice' and m['type'] == 'groupchat',
                  'groupchat at %s from %s' % (c.boundjid, m['from']))
        # One session leaves: it alone gets its unavailable; the nick stays.
        start_a = len(a.received)
        s1 = len(c1.received)
        c1['xep_0045'].leave_muc(LOBBY, 'carol')
        await wait_stanza(c1, presence_from(LOBBY + '/carol', 'unavailable', codes=(110,)),
                          'carol/one leaving', start=s1)
        await settled(a)
        gone = [s for s in a.received[start_a:] if presence_from(LOBBY + '/carol',
                                                                'unavailable')(s)]
        check(not gone, 'alice saw carol leave while carol/two stays: %s' % gone)
        check('carol' in a['xep_0045'].get_roster(LOBBY), 'carol left alice\'s roster')
        s2 = len(c2.received)
        a.send_message(mto=LOBBY, mbody='still here?', mtype='groupchat')
        await wait_stanza(c2, mi.is_message(LOBBY, 'still here?'), 'the groupchat at carol/two',
                          start=s2)
        # The last session leaves: now the nick goes.
        c2['xep_0045'].leave_muc(LOBBY, 'carol')
        await wait_stanza(a, presence_from(LOBBY + '/carol', 'unavailable'),
                          'carol leaving at alice', start=start_a)
        check('carol' not in a['xep_0045'].get_roster(LOBBY), 'carol still in alice\'s roster')

    async def direct_invite():
        a, b = st['a'], st['b']
        start = len(b.received)
        a['xep_0249'].send_invitation(BOB, VAULT, password=SECRET, reason='Join us')

        def is_invite(s):
            return (s.xml.tag == '{jabber:client}message'
                    and s.xml.find('{%s}x' % NS_CONFERENCE) is not None)
        m = await wait_stanza(b, is_invite, 'the direct invitation', start=start)
        check(str(m['from']) == str(a.boundjid), 'invitation from %s, not %s'
              % (m['from'], a.boundjid))
        x = m.xml.find('{%s}x' % NS_CONFERENCE)
        check((x.get('jid'), x.get('reason'), x.get('password')) == (VAULT, 'Join us', SECRET),
              'invitation %s' % ET.tostring(x))
        # (the room's own invitation of step 4, membership of club, came
        # earlier with a jabber:x:conference element too)
        mine = [m for m in b.direct_invites if str(m['from']) == str(a.boundjid)]
        check(len(mine) == 1 and mine[0]['groupchat_invite']['jid'] == VAULT
              and mine[0]['groupchat_invite']['password'] == SECRET,
              'slixmpp groupchat_direct_invite events: %s' % b.direct_invites)

    async def voice_request():
        a, c1 = st['a'], st['c1']
        await create_room(a, STAGE, 'alice', moderatedroom='1')
        pres, _, _, _ = await mi.bounded(c1['xep_0045'].join_muc_wait(
            STAGE, 'carol', maxstanzas=0, timeout=mi.TIMEOUT), 'carol joining the stage')
        check(pres['muc']['role'] == 'visitor', 'carol is %s' % pres['muc']['role'])
        start_a, start_c = len(a.received), len(c1.received)
        # §7.13 Example 92, written out (not slixmpp's request_voice).
        c1.send_raw("<message to='%s'><x xmlns='%s' type='submit'>"
                    "<field var='FORM_TYPE'><value>%s</value></field>"
                    "<field var='muc#role' type='list-single'><value>participant</value></field>"
                    "</x></message>" % (STAGE, NS_DATA, NS_REQUEST))

        def is_request(s):
            x = s.xml.find('{%s}x' % NS_DATA)
            return (s.xml.tag == '{jabber:client}message' and str(s['from']) == STAGE
                    and s.xml.get('type') != 'error' and x is not None
                    and x.get('type') == 'form' and field_value(x, 'FORM_TYPE') == NS_REQUEST)
        req = await wait_stanza(a, is_request, 'the voice request at alice', start=start_a)
        x = req.xml.find('{%s}x' % NS_DATA)
        check(field_value(x, 'muc#role') == 'participant', 'muc#role %s' % field_value(x, 'muc#role'))
        check(field_value(x, 'muc#roomnick') == 'carol', 'muc#roomnick %s'
              % field_value(x, 'muc#roomnick'))
        check(field_value(x, 'muc#jid') in (CAROL, str(c1.boundjid)),
              'muc#jid %s' % field_value(x, 'muc#jid'))
        allow = form_field(x, 'muc#request_allow')
        check(allow is not None and allow.get('type') == 'boolean',
              'muc#request_allow %s' % (None if allow is None else ET.tostring(allow)))
        # The approval: the form submitted back, request_allow true.
        m = a.make_message(STAGE)
        form = m['form']
        form['type'] = 'submit'
        form.add_field(var='FORM_TYPE', value=NS_REQUEST)
        form.add_field(var='muc#role', value='participant')
        form.add_field(var='muc#jid', value=field_value(x, 'muc#jid'))
        form.add_field(var='muc#roomnick', value='carol')
        form.add_field(var='muc#request_allow', ftype='boolean', value=True)
        m.send()
        await wait_stanza(c1, presence_from(STAGE + '/carol', codes=(110,), role='participant'),
                          'carol\'s self-presence as participant', start=start_c)
        check(not [s for s in c1.received[start_c:] if error_from(STAGE)(s)],
              'the voice request was refused')

    async def bad_input():
        a, b = st['a'], st['b']
        # A visitor speaking in a moderated room.
        await mi.bounded(b['xep_0045'].join_muc_wait(STAGE, 'bob', maxstanzas=0,
                                                     timeout=mi.TIMEOUT), 'bob joining the stage')
        start_a, start_b = len(a.received), len(b.received)
        b.send_message(mto=STAGE, mbody='may I?', mtype='groupchat')
        e = await wait_stanza(b, error_from(STAGE), 'the visitor\'s error', start=start_b)
        check(condition(e) == ('auth', 'forbidden'), 'visitor groupchat: %s/%s' % condition(e))
        await settled(a)
        check(not [s for s in a.received[start_a:] if mi.is_message(STAGE, 'may I?')(s)],
              'the visitor\'s groupchat reached alice')
        # Subjects: max_subject_length bytes pass, one byte more does not.
        start_a, start_b = len(a.received), len(b.received)
        ok_subject = 'é' * (MAX_SUBJECT // 2)               # 1024 bytes, 512 characters
        a['xep_0045'].set_subject(LOBBY, ok_subject)
        await wait_stanza(a, lambda s: s.xml.tag == '{jabber:client}message'
                          and s['subject'] == ok_subject and s.xml.get('type') == 'groupchat',
                          'the %d-byte subject' % MAX_SUBJECT, start=start_a)
        a['xep_0045'].set_subject(LOBBY, ok_subject + 'x')
        e = await wait_stanza(a, error_from(LOBBY), 'the long subject\'s error', start=start_a)
        check(condition(e)[1] == 'not-acceptable', 'long subject: %s/%s' % condition(e))
        # Groupchat to a room one is not in.
        b.send_message(mto=LOBBY, mbody='from outside', mtype='groupchat')
        e = await wait_stanza(b, error_from(LOBBY), 'the outsider\'s error', start=start_b)
        check(condition(e) == ('modify', 'not-acceptable'), 'outsider: %s/%s' % condition(e))
        # A configuration form from a member (not the owner).
        form = b['xep_0004'].make_form(ftype='submit')
        form.add_field(var='FORM_TYPE', value=NS_CONFIG)
        form.add_field(var='muc#roomconfig_membersonly', value='0')
        got = await iq_error(b['xep_0045'].set_room_config(CLUB, form, timeout=mi.TIMEOUT))
        check(got == ('auth', 'forbidden'), 'configuration by a member: %s/%s' % got)
        r = await a['xep_0030'].get_info(jid=CLUB, timeout=mi.TIMEOUT)
        check('muc_membersonly' in r['disco_info']['features'], 'the member changed the room')
        # Blank and empty nicks, written out (slixmpp refuses to build an
        # empty resource).  The blank one reaches the room and is answered
        # from that occupant JID; the empty one is not a JID (RFC 7622
        # §3.4): the router answers it from the server (no 'from'), not
        # from an address the client could not parse.
        for nick, sender in (('   ', '%s/   ' % LOBBY), ('', None)):
            start = len(b.received)
            b.send_raw("<presence to='%s/%s'><x xmlns='%s'/></presence>" % (LOBBY, nick, NS_MUC))
            e = await wait_stanza(b, lambda s: (s.xml.tag == '{jabber:client}presence'
                                                and s.xml.get('type') == 'error'
                                                and s.xml.get('from') == sender),
                                  'the error of the nick %r' % nick, start=start)
            check(condition(e) == ('modify', 'jid-malformed'),
                  'nick %r: %s/%s' % ((nick,) + condition(e)))
        check(b.transport is not None, 'bob was disconnected: %s' % b.stream_errors)
        check('   ' not in a['xep_0045'].get_roster(LOBBY), 'a blank nick joined')

    async def mynactl_rooms():
        a, b = st['a'], st['b']

        def ctl(*args):
            rc, out, err = mynad.mynactl(*args)
            check(rc == 0, 'mynactl %s: %s%s' % (' '.join(args), out, err))
            return out

        def listed(out):
            return {l.split('\t')[0]: l.split('\t') for l in out.splitlines() if '\t' in l}
        out = ctl('muc', 'create', HALL, '--persistent', '--owner', ALICE, '--name', 'Great', 'Hall')
        check(HALL in out, 'mynactl muc create said %r' % out)
        rc, out, err = mynad.mynactl('muc', 'create', HALL)
        check(rc != 0, 'creating %s twice succeeded: %s' % (HALL, out))
        rooms = listed(ctl('muc', 'list', MUC))
        check(rooms.get(HALL) == [HALL, '0', 'persistent', 'public', 'Great Hall'],
              'the hall in mynactl muc list: %s' % rooms.get(HALL))
        pres, _, _, _ = await mi.bounded(a['xep_0045'].join_muc_wait(
            HALL, 'alice', maxstanzas=0, timeout=mi.TIMEOUT), 'alice joining the hall')
        check(pres['muc']['affiliation'] == 'owner' and 201 not in statuses(pres),
              'alice in the hall: %s codes %s' % (pres['muc']['affiliation'], statuses(pres)))
        await mi.bounded(b['xep_0045'].join_muc_wait(HALL, 'bob', maxstanzas=0,
                                                     timeout=mi.TIMEOUT), 'bob joining the hall')
        rooms = listed(ctl('muc', 'list'))
        check(rooms.get(HALL, [None, None])[1] == '2', 'occupants listed: %s' % rooms.get(HALL))
        start = {k: len(st[k].received) for k in ('a', 'b')}
        ctl('muc', 'destroy', HALL, 'Closing', 'time')
        for k, nick in (('a', 'alice'), ('b', 'bob')):
            def is_destroyed(s, nick=nick):
                x = s.xml.find('{%s}x' % NS_USER)
                d = x.find('{%s}destroy' % NS_USER) if x is not None else None
                return (presence_from('%s/%s' % (HALL, nick), 'unavailable', codes=(110,),
                                      role='none')(s)
                        and d is not None and d.findtext('{%s}reason' % NS_USER) == 'Closing time')
            await wait_stanza(st[k], is_destroyed, '<destroy/> at %s' % nick, start=start[k])
        check(HALL not in listed(ctl('muc', 'list')), 'the destroyed hall is listed')
        got = await iq_error(b['xep_0030'].get_info(jid=HALL, timeout=mi.TIMEOUT))
        check(got[1] == 'item-not-found', 'disco#info of the destroyed hall: %s/%s' % got)

    async def stop():
        for k in list(st):
            await close(st.pop(k))
        await mynad.astop()

    async def cleanup():
        for c in list(st.values()):
            await close(c)

    return [
        ('mynad starts on the shipped configuration; alice, bob, carol exist', start),
        ('alice, bob and carol (two resources) log in', online),
        ('a password-protected room: none or a wrong one not-authorized, the right one joins',
         password),
        ('a members-only room: registration-required, then joined once a member', members_only),
        ('one nick from two resources: both joined, one occupant to others, left by the last',
         two_resources),
        ('a direct invitation (XEP-0249) passes through from the inviter\'s full JID',
         direct_invite),
        ('a hand-written voice request reaches the moderator; the approval gives voice',
         voice_request),
        ('bad input: visitor, long subject, outsider, non-owner configuration, blank nicks',
         bad_input),
        ('mynactl muc create/list/destroy; the occupants get <destroy/>', mynactl_rooms),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup


if __name__ == '__main__':
    sys.exit(mi.main(steps, name='muc-more'))
