#!/usr/bin/python3
"""Accounts with slixmpp against mynad on the shipped configuration:
in-band registration (XEP-0077), SCRAM-SHA-256 logins over STARTTLS and
direct TLS (XEP-0368), password change and account removal, and the
auth module's offer_channel_binding switch."""
import socket
import ssl
import sys

import myna_interop as mi
from myna_interop import check, login, close

ALICE, BOB = 'alice@localhost', 'bob@localhost'
PW_A, PW_B, PW_A2 = 'alice-secret-1', 'bob-secret-1', 'alice-secret-2'
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)


def tls_features(addr):
    """The stream features over direct TLS (TLS 1.3), as bytes."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(['xmpp-client'])
    raw = socket.create_connection(addr, timeout=mi.TIMEOUT)
    with ctx.wrap_socket(raw, server_hostname='localhost') as s:
        s.sendall(b"<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' "
                  b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")
        data = b''
        while b'</stream:features>' not in data and len(data) < 65536:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def steps(mynad):
    st = {}

    async def start():
        await mynad.astart()
        return 'c2s %d, c2s_tls %d, started in %.2fs' % (mynad.ports['c2s'], mynad.ports['c2s_tls'],
                                                        mynad.starts[-1])

    async def register(jid, pw):
        c = await login(jid, pw, mynad.c2s, register=True)
        check(c.registered is True, 'the registration iq was not answered with a result: %s'
              % c.registered)
        mech = c.auths[-1][0] if c.auths else None
        await close(c)
        return 'registered, then logged in with %s' % mech

    async def register_alice():
        return await register(ALICE, PW_A)

    async def register_bob():
        return await register(BOB, PW_B)

    async def register_conflict():
        c = await login(ALICE, 'another-password', mynad.c2s, register=True, expect=False)
        await close(c)
        check(isinstance(c.registered, str) and 'conflict' in c.registered,
              'registering alice again should give <conflict/>, got: %s' % c.registered)
        return c.registered

    def user_list():
        rc, out, err = mynad.mynactl('user', 'list')
        check(rc == 0, 'mynactl user list: exit %d: %s%s' % (rc, out, err))
        return {l.strip() for l in out.splitlines() if '@' in l}

    async def listed():
        users = user_list()
        check({ALICE, BOB} <= users, 'mynactl user list: %s' % sorted(users))
        return ' '.join(sorted(users))

    async def mynactl_account():
        rc, out, err = mynad.mynactl('user', 'add', 'carol@localhost', input='carol-secret-1\n')
        check(rc == 0, 'mynactl user add: exit %d: %s%s' % (rc, out, err))
        c = await login('carol@localhost', 'carol-secret-1', mynad.c2s_tls, direct_tls=True, **SCRAM)
        await close(c)

    async def scram256(addr, direct_tls):
        c = await login(ALICE, PW_A, addr, direct_tls=direct_tls, **SCRAM)
        try:
            check(c.auths == [('SCRAM-SHA-256', 'n,,')],
                  'expected one <auth mechanism="SCRAM-SHA-256"> with gs2 header "n,,", sent: %s'
                  % c.auths)
            check(c['feature_mechanisms'].mech.name == 'SCRAM-SHA-256',
                  'slixmpp finished with %s' % c['feature_mechanisms'].mech.name)
            check(c['feature_mechanisms'].mech._mutual_auth,
                  'the server signature (v=) was not verified')
            tls = c.transport.get_extra_info('ssl_object')
            check(tls is not None, 'the stream is not encrypted')
            st['tls_version'] = tls.version()
            check(str(c.boundjid.bare) == ALICE, 'bound JID %s' % c.boundjid)
            return '%s, %s, bound %s' % (c.auths[0][0], tls.version(), c.boundjid)
        finally:
            await close(c)

    async def login_starttls():
        return await scram256(mynad.c2s, False)

    async def login_direct_tls():
        return await scram256(mynad.c2s_tls, True)

    async def verified_cert():
        cert = mynad.data_dir / 'certs' / 'localhost.crt'
        check(cert.is_file(), 'no development certificate at %s' % cert)
        for addr, direct in ((mynad.c2s, False), (mynad.c2s_tls, True)):
            c = await login(ALICE, PW_A, addr, direct_tls=direct, verify_with=cert, **SCRAM)
            await close(c)
        return 'verified as localhost over STARTTLS and direct TLS'

    async def downgrade_refused():
        # slixmpp's own SCRAM-SHA-256 sends gs2 flag "y" (it supports
        # channel binding, and believes the server does not); RFC 5802 s6:
        # a server that offers -PLUS must then fail the authentication.
        c = await login(ALICE, PW_A, mynad.c2s, mech='SCRAM-SHA-256', expect=False)
        await close(c)
        check(c.auths == [('SCRAM-SHA-256', 'y,,')], 'sent: %s' % c.auths)
        return 'refused as RFC 5802 s6 requires (failure: %s)' % (c.sasl_failures or 'stream closed')

    async def plus_tls12():
        c = await login(ALICE, PW_A, mynad.c2s, mech='SCRAM-SHA-256-PLUS',
                        tls_max=ssl.TLSVersion.TLSv1_2)
        try:
            check(c.auths == [('SCRAM-SHA-256-PLUS', 'p=tls-unique,,')], 'sent: %s' % c.auths)
            return 'tls-unique on %s' % c.transport.get_extra_info('ssl_object').version()
        finally:
            await close(c)

    async def default_negotiation(addr, direct_tls):
        c = await login(ALICE, PW_A, addr, direct_tls=direct_tls)
        await close(c)
        return 'tried %s; logged in with %s' % (
            ' '.join('%s(%s)' % a for a in c.auths), c.auths[-1][0])

    async def default_starttls():
        return await default_negotiation(mynad.c2s, False)

    async def default_direct():
        return await default_negotiation(mynad.c2s_tls, True)

    async def change_password():
        c = await login(ALICE, PW_A, mynad.c2s, mech='SCRAM-SHA-256', channel_binding=False)
        try:
            await mi.bounded(c['xep_0077'].change_password(PW_A2), 'the password change')
        finally:
            await close(c)
        return 'result received'

    async def new_password_works():
        c = await login(ALICE, PW_A2, mynad.c2s_tls, direct_tls=True, mech='SCRAM-SHA-256',
                        channel_binding=False)
        await close(c)

    async def old_password_fails():
        c = await login(ALICE, PW_A, mynad.c2s, mech='SCRAM-SHA-256', channel_binding=False,
                        expect=False)
        await close(c)
        check(c.sasl_failures, 'no SASL <failure/> received (stream errors: %s)' % c.stream_errors)
        return 'SASL failure: %s' % c.sasl_failures[0]

    async def cancel_registration():
        c = await login(BOB, PW_B, mynad.c2s, mech='SCRAM-SHA-256', channel_binding=False)
        try:
            await mi.bounded(c['xep_0077'].cancel_registration(), 'the removal result')
            # XEP-0077 s3.2: the server then closes the stream (mynad: <not-authorized/>).
            await mi.bounded(c.disconnected, 'the server to close the stream after the removal')
        finally:
            await close(c)
        return 'result, then stream closed (stream errors: %s)' % (c.stream_errors or 'none')

    async def removed_login_fails():
        c = await login(BOB, PW_B, mynad.c2s, expect=False)
        await close(c)
        check(c.sasl_failures, 'no SASL <failure/> received (stream errors: %s)' % c.stream_errors)
        return 'SASL failures: %s' % ', '.join(c.sasl_failures)

    async def unlisted():
        users = user_list()
        check(BOB not in users and ALICE in users, 'mynactl user list: %s' % sorted(users))
        return ' '.join(sorted(users))

    async def alice_unaffected():
        c = await login(ALICE, PW_A2, mynad.c2s, mech='SCRAM-SHA-256', channel_binding=False)
        await close(c)

    async def plus_offered():
        feats = tls_features(mynad.c2s_tls)
        check(b'<mechanism>SCRAM-SHA-256-PLUS</mechanism>' in feats, 'features: %r' % feats)
        check(b'sasl-channel-binding' in feats, 'no XEP-0440 list: %r' % feats)
        return 'SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS offered'

    async def plus_off():
        await mynad.astop()
        conf = mynad.conf.read_text()
        check('#offer_channel_binding = true' in conf,
              'conf/myna.conf lacks the commented offer_channel_binding line')
        mynad.conf.write_text(conf.replace('#offer_channel_binding = true',
                                           'offer_channel_binding = false'))
        await mynad.astart()
        feats = tls_features(mynad.c2s_tls)
        check(b'-PLUS' not in feats, '-PLUS still offered: %r' % feats)
        check(b'sasl-channel-binding' not in feats, 'XEP-0440 list still sent: %r' % feats)
        check(b'<mechanism>SCRAM-SHA-256</mechanism>' in feats, 'features: %r' % feats)
        return 'no -PLUS, no XEP-0440 list'

    async def y_accepted():
        # What slixmpp 1.8.3 does by default on TLS 1.3 (PEERS.md): SCRAM
        # with gs2 flag "y".  With no -PLUS on offer that is no downgrade
        # (RFC 5802 s6): it logs in at the first try, not on PLAIN.
        c = await login(ALICE, PW_A2, mynad.c2s_tls, direct_tls=True)
        try:
            tls = c.transport.get_extra_info('ssl_object').version()
            check(c.auths == [('SCRAM-SHA-256', 'y,,')], 'sent: %s' % c.auths)
            return '%s with "y" on %s' % (c.auths[0][0], tls)
        finally:
            await close(c)

    async def stop():
        await mynad.astop()

    return [
        ('mynad starts on the shipped configuration', start),
        ('1. register alice in-band (XEP-0077) over STARTTLS', register_alice),
        ('1. register bob in-band (XEP-0077) over STARTTLS', register_bob),
        ('1. registering alice again is refused with <conflict/>', register_conflict),
        ('1. mynactl user list shows alice and bob', listed),
        ('2. login over STARTTLS (c2s) with SCRAM-SHA-256', login_starttls),
        ('2. login over direct TLS (c2s_tls, XEP-0368) with SCRAM-SHA-256', login_direct_tls),
        ('2. the development certificate verifies as "localhost" (both ports)', verified_cert),
        ('2. an account made by mynactl user add logs in with SCRAM-SHA-256', mynactl_account),
        ('2. SCRAM-SHA-256 with gs2 flag "y" is refused while -PLUS is offered', downgrade_refused),
        ('2. SCRAM-SHA-256-PLUS with tls-unique on TLS 1.2', plus_tls12),
        ('2. slixmpp default mechanism negotiation, STARTTLS', default_starttls),
        ('2. slixmpp default mechanism negotiation, direct TLS', default_direct),
        ('5. change the password in-band (XEP-0077)', change_password),
        ('5. login with the new password', new_password_works),
        ('5. login with the old password fails', old_password_fails),
        ('6. remove bob in-band (XEP-0077 cancel)', cancel_registration),
        ('6. login of the removed account fails', removed_login_fails),
        ('6. mynactl user list no longer shows bob', unlisted),
        ('6. alice is unaffected by the removal of bob', alice_unaffected),
        ('7. the -PLUS mechanisms are offered over TLS by default', plus_offered),
        ('7. offer_channel_binding = false: no -PLUS offered after a restart', plus_off),
        ('7. then slixmpp\'s default SCRAM-SHA-256 with flag "y" logs in', y_accepted),
        ('mynad stops cleanly on SIGTERM', stop),
    ]


if __name__ == '__main__':
    sys.exit(mi.main(steps, name='accounts'))
