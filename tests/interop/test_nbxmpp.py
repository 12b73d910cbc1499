#!/usr/bin/python3
"""python3-nbxmpp (Gajim's XMPP library) against mynad on the shipped
configuration: what Gajim does with personal eventing.

nbxmpp runs on a GLib main loop and its requests are generator tasks
finished through callbacks.  Here a GLib main loop runs the default main
context in a thread of its own (GlibThread); every nbxmpp call is made in
that thread (GLib.idle_add), and its result comes back to the asyncio step
through a future (loop.call_soon_threadsafe).  Every wait is bounded
(mi.bounded, and nbxmpp's own task timeouts).

Accounts alice, bob and carol (mynactl user add); alice and bob subscribe
to each other with nbxmpp's Presence module; carol stays a stranger.  Bob's
and alice's entity capabilities (EntityCaps.set_caps, sent in their
presence as Gajim does) announce the +notify features of the OMEMO device
list, the avatar metadata and the nickname.  Steps:
 1. disco#info of the own bare JID (Gajim's login query): account/registered,
    pubsub/pep and the PEP features;
 2. OMEMO (XEP-0384 0.3, the eu.siacs.conversations.axolotl nodes):
    set_devicelist (open) and set_bundle; alice's own notification and
    bob's (+notify in his caps), parsed by nbxmpp's OMEMO module; bob reads
    the device list and the bundle, carol (no subscription) the device list;
 3. the user avatar (XEP-0084) with presence access: bob reads metadata and
    data, carol is refused;
 4. bookmarks 2 (XEP-0402) with NativeBookmarks, XEP-0048 bookmarks in PEP
    with PEPBookmarks;
 5. XEP-0411 (urn:xmpp:bookmarks:1#compat and #compat-pep in the
    account's disco#info): native <-> private XML storage bookmarks, and
    the legacy PEP node mirroring the native set;
 6. the nickname (XEP-0172): published, bob notified and reading it."""
import asyncio
import hashlib
import logging
import sys
import threading

import myna_interop as mi
from myna_interop import check, StepFailed

USERS = {'alice': 'alice-secret-1', 'bob': 'bob-secret-1', 'carol': 'carol-secret-1'}
DEVICES = [1234567, 7654321]
ROOM = 'orchard@conference.localhost'
ROOM2 = 'kitchen@conference.localhost'
ROOM3 = 'cellar@conference.localhost'
ROOM4 = 'attic@conference.localhost'
AVATAR = bytes(range(256)) * 3       # any bytes do: nobody decodes them
CAPS_URI = 'https://myna.example/nbxmpp-interop'

NS_PUBSUB = 'http://jabber.org/protocol/pubsub'
# What Gajim relies on (publish-options for its OMEMO, avatar, bookmark
# and nickname publishes) and what this test exercises.
PEP_FEATURES = [NS_PUBSUB + '#' + f for f in (
    'publish', 'publish-options', 'auto-create', 'access-presence', 'access-open',
    'access-whitelist', 'persistent-items', 'retrieve-items', 'filtered-notifications',
    'last-published')]
# XEP-0163 §5 (Recommended Defaults): "A PEP service MUST ... Support the
# "auto-create", "auto-subscribe", and "filtered-notifications" features";
# §6.1's example lists them in the account's disco#info (Prosody 0.12's
# mod_pep advertises all three).
PEP_MUST_FEATURES = [NS_PUBSUB + '#' + f for f in (
    'auto-create', 'auto-subscribe', 'filtered-notifications')]

# The caps features of every client here: Gajim's +notify interests.
CAPS_FEATURES = [
    'http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/caps',
    'eu.siacs.conversations.axolotl.devicelist',
    'eu.siacs.conversations.axolotl.devicelist+notify',
    'urn:xmpp:avatar:metadata', 'urn:xmpp:avatar:metadata+notify',
    'http://jabber.org/protocol/nick', 'http://jabber.org/protocol/nick+notify',
    'urn:xmpp:bookmarks:1+notify']

log = logging.getLogger('nbx')


def jid(user):
    return '%s@localhost' % user


class GlibThread:
    """A GLib main loop on the default main context, in a thread: nbxmpp's
    sockets, timeouts and callbacks all run there."""

    def __init__(self):
        from gi.repository import GLib
        self.GLib = GLib
        self.loop = GLib.MainLoop()
        self.thread = threading.Thread(target=self.loop.run, name='glib', daemon=True)
        self.thread.start()

    def call(self, fn, *args, **kw):
        """Runs fn(*args, **kw) in the GLib thread; returns an asyncio
        future of its result (or exception)."""
        aloop = asyncio.get_running_loop()
        fut = aloop.create_future()

        def run():
            try:
                r = fn(*args, **kw)
                aloop.call_soon_threadsafe(settle_future, fut, True, r)
            except BaseException as e:
                aloop.call_soon_threadsafe(settle_future, fut, False, e)
            return False
        self.GLib.idle_add(run)
        return fut

    def stop(self):
        self.GLib.idle_add(lambda: self.loop.quit() or False)
        self.thread.join(timeout=5)


class NbClient:
    """An nbxmpp Client for one account, living in the GLib thread; it
    records every stanza in (stanzas, as nbxmpp Nodes) and every pubsub
    event as nbxmpp's modules parsed it (events: (from bare JID, node,
    item id, data))."""

    def __init__(self, gl, user, resource, mynad):
        self.gl = gl
        self.user = user
        self.resource = resource
        self.mynad = mynad
        self.client = None
        self.stanzas = []
        self.sent = []
        self.events = []
        self.avatar_hashes = []    # (full JID, avatar_sha) of presences, as VCardAvatar parsed
        self.changed = asyncio.Event()
        self.aloop = asyncio.get_running_loop()
        self.state = None          # 'connected' / 'failed: …' / 'disconnected'
        self._keep = set()         # done callbacks (nbxmpp holds them weakly)

    def _wake(self):
        self.aloop.call_soon_threadsafe(self.changed.set)

    def _setup(self, caps_features):
        from gi.repository import Gio
        from nbxmpp.client import Client
        from nbxmpp.const import ConnectionProtocol, ConnectionType
        from nbxmpp.structs import StanzaHandler, DiscoIdentity
        from nbxmpp.namespaces import Namespace
        from nbxmpp.simplexml import Node
        c = Client(log_context=self.user)
        c.set_domain('localhost')
        c.set_username(self.user)
        c.set_resource(self.resource)
        c.set_password(USERS[self.user])
        c.set_custom_host('127.0.0.1:%d' % self.mynad.ports['c2s'], ConnectionProtocol.TCP,
                          ConnectionType.START_TLS)
        # The development certificate mynad made: trusted as is (its CA is
        # unknown); any other certificate error still fails the login.
        cert = Gio.TlsCertificate.new_from_file(
            str(self.mynad.data_dir / 'certs' / 'localhost.crt'))
        c.set_accepted_certificates([cert])
        c.set_mechs({'SCRAM-SHA-256', 'PLAIN'})
        if caps_features is not None:
            # Gajim's way: EntityCaps answers the node#ver disco#info query,
            # the caps go in every available presence.
            c.get_module('EntityCaps').set_caps(
                [DiscoIdentity(category='client', type='pc', name='myna-nbxmpp')],
                sorted(caps_features), CAPS_URI)

        def on_connected(*_a):
            self.state = 'connected'
            self._wake()

        def on_failed(*_a):
            self.state = 'failed: %s' % (c.get_error(),)
            self._wake()

        def on_disconnected(*_a):
            if self.state == 'connected' or self.state is None:
                self.state = 'disconnected: %s' % (c.get_error(),)
            self._wake()

        def on_received(_c, _s, stanza):
            # A copy: nbxmpp's handlers reuse parts of the stanza (the
            # <query/> of an iq moves into the reply they build).
            text = str(stanza)
            self.stanzas.append(Node(node=text))
            log.debug('%s RECV %s', self.user, text)
            self._wake()

        def on_sent(_c, _s, data):
            text = data.decode('utf-8', 'replace') if isinstance(data, bytes) else str(data)
            self.sent.append(text)
            log.debug('%s SEND %s', self.user, text)

        def on_event(_c, _stanza, properties):
            if properties.is_pubsub_event:
                ev = properties.pubsub_event
                self.events.append((str(properties.jid.bare), ev.node, ev.id, ev.data))
                self._wake()

        def on_presence(_c, _stanza, properties):
            sha = getattr(properties, 'avatar_sha', None)
            if sha is not None:
                self.avatar_hashes.append((str(properties.jid), sha))
                self._wake()

        c.subscribe('connected', on_connected)
        c.subscribe('connection-failed', on_failed)
        c.subscribe('disconnected', on_disconnected)
        c.subscribe('stanza-received', on_received)
        c.subscribe('stanza-sent', on_sent)
        # After the modules' handlers (priority 15, 16): sees what they parsed.
        c.register_handler(StanzaHandler(name='message', callback=on_event,
                                         ns=Namespace.PUBSUB_EVENT, priority=60))
        c.register_handler(StanzaHandler(name='presence', callback=on_presence, priority=60))
        self._callbacks = (on_connected, on_failed, on_disconnected, on_received, on_sent,
                           on_event, on_presence)
        self.client = c
        c.connect()

    async def connect(self, caps_features=None):
        await self.gl.call(self._setup, caps_features)
        await self.wait(lambda: self.state is not None, 'the login of %s' % self.user)
        check(self.state == 'connected', 'login of %s: %s' % (self.user, self.state))
        mech = [s for s in self.sent if '<auth ' in s]
        return mech[0].split('mechanism="')[1].split('"')[0] if mech and 'mechanism="' in mech[0] \
            else '?'

    async def wait(self, pred, what, timeout=None):
        async def scan():
            while True:
                self.changed.clear()
                r = pred()
                if r:
                    return r
                await self.changed.wait()
        return await mi.bounded(scan(), '%s (at %s)' % (what, self.user), timeout)

    async def wait_stanza(self, pred, what, start=0):
        def find():
            for s in self.stanzas[start:]:
                try:
                    if pred(s):
                        return s
                except Exception:
                    pass
            return None
        return await self.wait(find, what)

    async def wait_event(self, frm, node, what, start=0, data=None):
        def find():
            for ev in self.events[start:]:
                if ev[0] == frm and ev[1] == node and (data is None or data(ev[3])):
                    return ev
            return None
        return await self.wait(find, what)

    def _start_task(self, fut, module, method, args, kw):
        def done(task):
            self._keep.discard(done)
            try:
                r, ok = task.finish(), True
            except BaseException as e:
                r, ok = e, False      # (the name e ends with the except block)
            self.aloop.call_soon_threadsafe(settle_future, fut, ok, r)
        self._keep.add(done)
        getattr(self.client.get_module(module), method)(
            *args, timeout=int(mi.TIMEOUT), callback=done, **kw)

    async def request(self, module, method, *args, **kw):
        """An nbxmpp task (module.method(*args)); its result, or its error
        raised (nbxmpp.errors.StanzaError and the like)."""
        fut = self.aloop.create_future()
        await self.gl.call(self._start_task, fut, module, method, args, kw)
        return await mi.bounded(fut, '%s.%s%r of %s' % (module, method, args, self.user))

    async def fire_and_collect(self, module, method, *args):
        """Calls a task of nbxmpp that starts sub tasks without waiting
        for them (NativeBookmarks/PEPBookmarks.store_bookmarks publish
        that way) and waits for those sub tasks too: returns the task's
        result and theirs (errors as values)."""
        fut = self.aloop.create_future()
        subs = []

        def start():
            before = list(self.client._tasks)
            self._start_task(fut, module, method, args, {})
            for t in self.client._tasks:
                if t not in before and t.state.is_running:
                    sf = self.aloop.create_future()
                    subs.append(sf)

                    def done(task, sf=sf):
                        self._keep.discard(done)
                        self.aloop.call_soon_threadsafe(settle_future, sf, True,
                                                        task.get_result())
                    self._keep.add(done)
                    t.add_done_callback(done)
        await self.gl.call(start)
        result = await mi.bounded(fut, '%s.%s of %s' % (module, method, self.user))
        sub_results = await mi.bounded(asyncio.gather(*subs), 'the publishes of %s.%s'
                                       % (module, method))
        return result, sub_results

    async def presence(self, **kw):
        def send():
            caps = self.client.get_module('EntityCaps').caps
            if caps is not None and kw.get('typ') is None:
                kw['caps'] = {'hash': caps.hash, 'node': caps.node, 'ver': caps.ver}
            self.client.get_module('BasePresence').send(**kw)
        await self.gl.call(send)

    async def close(self):
        if self.client is None:
            return
        c = self.client

        def end():
            from nbxmpp.const import StreamState
            if c.state != StreamState.DISCONNECTED:
                c.disconnect()
        await self.gl.call(end)
        try:
            await self.wait(lambda: self.state is not None and self.state != 'connected',
                            'the end of the stream', timeout=5)
        except StepFailed:
            await self.gl.call(lambda: c.state.name == 'DISCONNECTED' or c.disconnect(True))
        self.client = None


def settle_future(fut, ok, value):
    """Sets @fut's result (@ok) or exception, unless it is done."""
    if not fut.done():
        (fut.set_result if ok else fut.set_exception)(value)


def stanza_error(e):
    """The condition (and application condition) of an nbxmpp error."""
    cond = getattr(e, 'condition', None)
    app = getattr(e, 'app_condition', None)
    return '%s%s' % (cond, '+' + app if app else '') if cond else '%s: %s' % (type(e).__name__, e)


def steps(mynad):
    st = {'clients': {}}
    gl = None

    def c(user):
        return st['clients'][user]

    async def expect_refusal(fut, conditions, what):
        from nbxmpp.errors import StanzaError
        try:
            r = await fut
        except StanzaError as e:
            check(e.condition in conditions, '%s: %s (%s), want one of %s'
                  % (what, stanza_error(e), e.stanza, conditions))
            return stanza_error(e)
        raise StepFailed('%s: succeeded (%r), must be refused' % (what, r))

    async def caps_known(user, feature):
        """Waits until the server knows @user's caps (mynactl caps show,
        polled within the bound) and checks they list @feature."""
        full = '%s/%s' % (jid(user), c(user).resource)
        aloop = asyncio.get_running_loop()
        deadline = aloop.time() + mi.TIMEOUT
        while True:
            rc, out, err = await aloop.run_in_executor(None, mynad.mynactl, 'caps', 'show', full)
            check(rc == 0, 'mynactl caps show %s: %s %s' % (full, rc, err))
            features = out.split()
            if features and features != ['unknown']:
                break
            if aloop.time() > deadline:
                raise StepFailed('the caps of %s stay unknown to the server' % full)
            await asyncio.sleep(0.05)
        check(feature in features, 'the caps of %s lack %s: %s' % (full, feature, features))

    async def no_events_at_carol():
        """A marker message from alice to carol, sent after alice's
        publishes were answered (so after their notifications left): once
        carol has it, she must have no event from alice."""
        from nbxmpp.protocol import Message
        import uuid
        token = uuid.uuid4().hex
        a, cr = c('alice'), c('carol')
        await a.gl.call(lambda: a.client.send_stanza(
            Message(to='%s/gajim' % jid('carol'), body=token, typ='chat')))
        await cr.wait_stanza(lambda s: s.getName() == 'message' and s.getTagData('body') == token,
                             'the marker message from alice')
        got = [e for e in cr.events if e[0] == jid('alice')]
        check(not got, 'carol (no subscription) got alice\'s events: %s' % got)

    async def start():
        nonlocal gl
        await mynad.astart()
        for user, pw in USERS.items():
            rc, out, err = mynad.mynactl('user', 'add', jid(user), input=pw + '\n')
            check(rc == 0, 'mynactl user add %s: %s%s' % (user, out, err))
        gl = GlibThread()

    async def connect():
        from nbxmpp.namespaces import Namespace as NS
        mechs = []
        # carol's caps want the same notifications: she gets none, having no
        # presence subscription to alice (XEP-0163 §4.1: PEP notifications
        # go to the account's contacts).
        for user, caps in (('alice', CAPS_FEATURES), ('bob', CAPS_FEATURES),
                           ('carol', CAPS_FEATURES)):
            cl = NbClient(gl, user, 'gajim', mynad)
            st['clients'][user] = cl
            mechs.append('%s: %s' % (user, await cl.connect(caps)))
        for user in ('alice', 'bob', 'carol'):
            await c(user).presence()
            # The server asks alice for the caps it does not know (XEP-0115
            # §6.3); bob's, the same ver, come from its cache.
            await caps_known(user, NS.OMEMO_TEMP_DL + '+notify')
        check(any(s.getName() == 'iq' and s.getAttr('type') == 'get'
                  and s.getTag('query', namespace=NS.DISCO_INFO) is not None
                  for s in c('alice').stanzas), "the server did not query alice's caps")
        return 'SASL ' + ', '.join(mechs) + '; caps (+notify) known to mynad'

    async def subscribe():
        from nbxmpp.protocol import JID
        a, b = c('alice'), c('bob')

        def is_presence(frm, typ):
            return lambda s: (s.getName() == 'presence' and s.getAttr('type') == typ
                              and s.getAttr('from').split('/')[0] == frm)
        for one, other in ((a, b), (b, a)):
            await one.gl.call(lambda: one.client.get_module('BasePresence').subscribe(
                JID.from_string(jid(other.user))))
            await other.wait_stanza(is_presence(jid(one.user), 'subscribe'),
                                    'the subscription request of %s' % one.user)
            await other.gl.call(lambda: other.client.get_module('BasePresence').subscribed(
                JID.from_string(jid(one.user))))
            await one.wait_stanza(is_presence(jid(other.user), 'subscribed'),
                                  'the approval of %s' % other.user)
        subs = {}
        for one, other in ((a, b), (b, a)):
            roster = await one.request('Roster', 'request_roster')
            items = {str(i.jid): i.subscription for i in roster.items or []}
            subs[one.user] = items
            check(items.get(jid(other.user)) == 'both', 'roster of %s: %s' % (one.user, items))
        # Each sees the other's available presence (with caps) once subscribed.
        for one, other in ((a, b), (b, a)):
            await one.wait_stanza(lambda s, o=other: s.getName() == 'presence'
                                  and s.getAttr('type') in (None, '')
                                  and s.getAttr('from') == '%s/gajim' % jid(o.user),
                                  'the presence of %s' % other.user)
        return 'alice <-> bob: both'

    async def disco_account():
        info = await c('alice').request('Discovery', 'disco_info', jid('alice'))
        idents = {(i.category, i.type) for i in info.identities}
        st['account_features'] = set(info.features)
        check(('account', 'registered') in idents, 'identities %s lack account/registered'
              % sorted(idents))
        check(('pubsub', 'pep') in idents, 'identities %s lack pubsub/pep' % sorted(idents))
        missing = [f for f in PEP_FEATURES if f not in info.features]
        check(not missing, 'PEP features missing: %s (features: %s)' % (missing, info.features))
        # What Gajim derives from it (gajim/common/modules/discovery.py).
        compat = 'urn:xmpp:bookmarks:1#compat' in info.features
        return 'identities %s; %d features; bookmarks#compat %s' % (
            sorted('%s/%s' % i for i in idents), len(info.features),
            'advertised' if compat else 'not advertised')

    async def disco_account_must():
        info = await c('alice').request('Discovery', 'disco_info', jid('alice'))
        missing = [f for f in PEP_MUST_FEATURES if f not in info.features]
        check(not missing, 'XEP-0163 §5 features not advertised: %s' % missing)

    async def omemo():
        from nbxmpp.namespaces import Namespace as NS
        from nbxmpp.structs import OMEMOBundle
        a, b, cr = c('alice'), c('bob'), c('carol')
        mark_a, mark_b = len(a.events), len(b.events)
        await a.request('OMEMO', 'set_devicelist', DEVICES, public=True)
        bundle = OMEMOBundle(spk={'id': 1, 'key': b'\x05' + bytes(32)},
                             spk_signature=bytes(range(64)),
                             ik=b'\x05' + bytes(range(32)),
                             otpks=[{'id': i, 'key': b'\x05' + bytes([i]) * 32}
                                    for i in range(1, 4)])
        await a.request('OMEMO', 'set_bundle', bundle, DEVICES[0], public=True)
        await a.wait_event(jid('alice'), NS.OMEMO_TEMP_DL, 'alice\'s own device list event',
                           start=mark_a, data=lambda d: d == DEVICES)
        await b.wait_event(jid('alice'), NS.OMEMO_TEMP_DL, 'alice\'s device list event at bob',
                           start=mark_b, data=lambda d: d == DEVICES)
        got = await b.request('OMEMO', 'request_devicelist', jid('alice'))
        check(got == DEVICES, 'bob read the device list %s, want %s' % (got, DEVICES))
        got = await b.request('OMEMO', 'request_bundle', jid('alice'), DEVICES[0])
        check(got == bundle, 'bob read the bundle %s, want %s' % (got, bundle))
        got = await cr.request('OMEMO', 'request_devicelist', jid('alice'))
        check(got == DEVICES, 'carol read the device list %s, want %s' % (got, DEVICES))
        got = await cr.request('OMEMO', 'request_bundle', jid('alice'), DEVICES[0])
        check(got == bundle, 'carol read the bundle %s' % (got,))
        await no_events_at_carol()
        return 'events at alice and bob, none at carol; bob and carol read the list and bundle'

    async def avatar():
        from nbxmpp.namespaces import Namespace as NS
        from nbxmpp.modules.user_avatar import Avatar
        a, b, cr = c('alice'), c('bob'), c('carol')
        av = Avatar()
        av.add_image_source(AVATAR, 'image/png', 64, 64)
        sha = hashlib.sha1(AVATAR).hexdigest()
        mark = len(b.events)
        await a.request('UserAvatar', 'set_avatar', av, public=False)
        ev = await b.wait_event(jid('alice'), NS.AVATAR_METADATA, 'the avatar metadata event',
                                start=mark, data=lambda d: d is not None and d.default == sha)
        meta = await b.request('UserAvatar', 'request_avatar_metadata', jid('alice'))
        check(meta is not None and meta.default == sha and meta.avatar_shas == [sha]
              and meta.infos[0].bytes == len(AVATAR) and meta.infos[0].type == 'image/png',
              'the metadata bob read: %s' % (meta,))
        data = await b.request('UserAvatar', 'request_avatar_data', sha, jid('alice'))
        check(data is not None and data.data == AVATAR and data.sha == sha,
              'the avatar data bob read: %s' % (data and len(data.data)))
        conds = []
        conds.append(await expect_refusal(
            cr.request('UserAvatar', 'request_avatar_metadata', jid('alice')),
            ('not-authorized', 'forbidden'), 'carol reading the avatar metadata (presence)'))
        conds.append(await expect_refusal(
            cr.request('UserAvatar', 'request_avatar_data', sha, jid('alice')),
            ('not-authorized', 'forbidden'), 'carol reading the avatar data (presence)'))
        return 'bob: event %s…, metadata and %d bytes; carol: %s' % (
            ev[2][:8], len(data.data), ', '.join(conds))

    async def vcard_conversion():
        feature = 'urn:xmpp:pep-vcard-conversion:0'
        check(feature in st.get('account_features', ()),
              'the account does not advertise %s' % feature)
        a, b = c('alice'), c('bob')
        sha = hashlib.sha1(AVATAR).hexdigest()
        vcard = await b.request('VCardTemp', 'request_vcard', jid('alice'))
        photo, photo_sha = vcard.get_avatar()
        check(photo == AVATAR, 'alice\'s vCard PHOTO at bob: %s (sha %s), want the PEP avatar %s'
              % (photo and len(photo), photo_sha, sha))
        # XEP-0398 §4: the server puts the hash in the account's presence.
        mark = len(b.avatar_hashes)
        await a.presence()
        await b.wait(lambda: any(h == ('%s/gajim' % jid('alice'), sha)
                                 for h in b.avatar_hashes[mark:]),
                     'alice\'s presence advertising the photo hash %s (got %s)'
                     % (sha, b.avatar_hashes[mark:]))
        return 'ran: vCard PHOTO = the PEP avatar; presence photo hash %s…' % sha[:8]

    def bookmark(room, name, nick='alice'):
        from nbxmpp.protocol import JID
        from nbxmpp.structs import BookmarkData
        return BookmarkData(jid=JID.from_string(room), name=name, nick=nick, autojoin=True)

    def same(got, want):
        def key(bs):
            return sorted((str(x.jid), x.name, x.nick, x.autojoin, x.password) for x in bs)
        return key(got) == key(want)

    def publish_errors(results):
        from nbxmpp.errors import is_error
        return [stanza_error(r) for r in results if is_error(r) or isinstance(r, Exception)]

    async def native_bookmarks():
        a, b = c('alice'), c('bob')
        want = [bookmark(ROOM, 'The Orchard'), bookmark(ROOM2, 'The Kitchen', nick='al')]
        _r, subs = await a.fire_and_collect('NativeBookmarks', 'store_bookmarks', want)
        check(len(subs) == len(want) and not publish_errors(subs),
              'the publishes of store_bookmarks: %s' % (subs,))
        got = await a.request('NativeBookmarks', 'request_bookmarks')
        check(same(got, want), 'alice read back %s, want %s' % (got, want))
        st['native'] = want
        cond = await expect_refusal(b.request('PubSub', 'request_items', 'urn:xmpp:bookmarks:1',
                                              jid=jid('alice')),
                                    ('forbidden', 'not-authorized', 'item-not-found',
                                     'not-allowed'),
                                    'bob reading alice\'s bookmarks (whitelist)')
        return '%d bookmarks read back; bob: %s' % (len(got), cond)

    async def pep_bookmarks():
        a = c('alice')
        want = [bookmark(ROOM3, 'The Cellar')]
        _r, subs = await a.fire_and_collect('PEPBookmarks', 'store_bookmarks', want)
        check(len(subs) == 1 and not publish_errors(subs),
              'the publish of store_bookmarks: %s' % (subs,))
        got = await a.request('PEPBookmarks', 'request_bookmarks')
        check(same(got, want), 'alice read back %s, want %s' % (got, want))
        return 'storage:bookmarks in PEP: %d read back' % len(got)

    def compat_gate(feature):
        check(feature in st.get('account_features', ()),
              'the account does not advertise %s (XEP-0411)' % feature)

    async def compat_native_to_private():
        compat_gate('urn:xmpp:bookmarks:1#compat')
        a = c('alice')
        # Self-contained: the native set as this step stores it (a #compat-pep
        # server turned step 4's legacy PEP list into the native set).
        want = [bookmark(ROOM, 'The Orchard'), bookmark(ROOM2, 'The Kitchen', nick='al')]
        _r, subs = await a.fire_and_collect('NativeBookmarks', 'store_bookmarks', want)
        check(len(subs) == len(want) and not publish_errors(subs),
              'the publishes of store_bookmarks: %s' % (subs,))
        got = await a.request('PrivateBookmarks', 'request_bookmarks')
        check(same([x for x in got if str(x.jid) in (ROOM, ROOM2)], want),
              'private XML storage shows %s, want the native %s' % (got, want))
        others = sorted(str(x.jid) for x in got if str(x.jid) not in (ROOM, ROOM2))
        return 'ran: private storage shows the %d native bookmarks (and %s)' % (
            len(want), others or 'nothing else')

    async def compat_private_to_native():
        from nbxmpp.namespaces import Namespace as NS
        compat_gate('urn:xmpp:bookmarks:1#compat')
        a = c('alice')
        # A private XML storage set replaces the whole stored element
        # (XEP-0049), so the native set becomes exactly this list.
        want = [bookmark(ROOM, 'The Orchard'), bookmark(ROOM4, 'The Attic', nick='al')]
        mark = len(a.events)
        await a.request('PrivateBookmarks', 'store_bookmarks', want)
        got = await a.request('NativeBookmarks', 'request_bookmarks')
        check(same(got, want), 'native bookmarks %s after the private store of %s'
              % (got, want))
        # Alice's caps have urn:xmpp:bookmarks:1+notify: the converted
        # publish notifies her like a client's (what Gajim listens to).
        await a.wait_event(jid('alice'), NS.BOOKMARKS_1, 'the native event of the new room',
                           start=mark, data=lambda d: d is not None and str(d.jid) == ROOM4)
        st['native'] = want
        return 'ran: native set = the private list; alice notified of %s' % ROOM4

    async def compat_pep():
        compat_gate('urn:xmpp:bookmarks:1#compat-pep')
        a = c('alice')
        native = await a.request('NativeBookmarks', 'request_bookmarks')
        got = await a.request('PEPBookmarks', 'request_bookmarks')
        check(native and same(got, native), 'storage:bookmarks in PEP shows %s, want the '
              'native %s' % (got, native))
        return 'ran: the legacy PEP node mirrors the native set (%d)' % len(got)

    async def nickname():
        from nbxmpp.namespaces import Namespace as NS
        a, b, cr = c('alice'), c('bob'), c('carol')
        mark = len(b.events)
        await a.request('Nickname', 'set_nickname', 'Alice N.', public=False)
        await b.wait_event(jid('alice'), NS.NICK, 'the nickname event',
                           start=mark, data=lambda d: d == 'Alice N.')
        items = await b.request('PubSub', 'request_items', NS.NICK, jid=jid('alice'))
        nicks = [i.getTagData('nick') for i in items]
        check(nicks == ['Alice N.'], 'bob read the nick items %s' % nicks)
        cond = await expect_refusal(cr.request('PubSub', 'request_items', NS.NICK,
                                               jid=jid('alice')),
                                    ('not-authorized', 'forbidden'),
                                    'carol reading the nick (presence access)')
        await no_events_at_carol()
        return 'bob: event and read; carol: no event, read refused (%s)' % cond

    async def last_items():
        from nbxmpp.namespaces import Namespace as NS
        # Gajim logging in on a second device: XEP-0163 §4.3.2, the last
        # item of each node its caps want, on its initial presence.
        b2 = NbClient(gl, 'bob', 'laptop', mynad)
        st['clients']['bob2'] = b2
        await b2.connect(CAPS_FEATURES)
        await b2.presence()
        sha = hashlib.sha1(AVATAR).hexdigest()
        await b2.wait_event(jid('alice'), NS.OMEMO_TEMP_DL, 'the last device list',
                            data=lambda d: d == DEVICES)
        await b2.wait_event(jid('alice'), NS.AVATAR_METADATA, 'the last avatar metadata',
                            data=lambda d: d is not None and d.default == sha)
        await b2.wait_event(jid('alice'), NS.NICK, 'the last nickname',
                            data=lambda d: d == 'Alice N.')
        return 'device list, avatar metadata and nickname of alice at bob/laptop'

    async def stop():
        for user in list(st['clients']):
            await st['clients'].pop(user).close()
        await mynad.astop()

    async def cleanup():
        for user in list(st['clients']):
            try:
                await st['clients'].pop(user).close()
            except Exception as e:
                print('# close %s: %s' % (user, e), flush=True)
        if gl is not None:
            gl.stop()

    return [
        ('mynad starts on the shipped configuration; alice, bob, carol added', start),
        ('nbxmpp logs in alice, bob, carol (STARTTLS, the development certificate); '
         'their caps (+notify) known to mynad', connect),
        ('alice and bob subscribe to each other (nbxmpp Presence, Roster)', subscribe),
        ('1. disco info of the own bare JID: account/registered, pubsub/pep, PEP features',
         disco_account),
        ('1. the account\'s disco info lists the features XEP-0163 §5 requires (auto-create, '
         'auto-subscribe, filtered-notifications)', disco_account_must),
        ('2. OMEMO: set_devicelist (open) and set_bundle; alice and bob notified; bob and '
         'carol read them', omemo),
        ('3. avatar (presence access): bob notified and reads metadata and data; carol refused',
         avatar),
        ('3. XEP-0398 (pep-vcard-conversion): the PEP avatar in alice\'s vCard and '
         'her presence photo hash (VCardTemp, VCardAvatar)', vcard_conversion),
        ('4. native bookmarks (XEP-0402): store_bookmarks, request_bookmarks; bob refused',
         native_bookmarks),
        ('4. XEP-0048 bookmarks in PEP: store_bookmarks, request_bookmarks', pep_bookmarks),
        ('5. XEP-0411 (bookmarks compat): native bookmarks read through '
         'private XML storage', compat_native_to_private),
        ('5. XEP-0411: private XML storage bookmarks read natively',
         compat_private_to_native),
        ('5. XEP-0402 compat-pep: the native set read through PEPBookmarks',
         compat_pep),
        ('6. nickname (XEP-0172): bob notified and reads it; carol refused', nickname),
        ('a new resource of bob gets alice\'s last items on its presence (XEP-0163 §4.3.2)',
         last_items),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup


if __name__ == '__main__':
    sys.exit(mi.main(steps, needs=('nbxmpp', 'gi'), name='nbxmpp'))
