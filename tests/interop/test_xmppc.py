#!/usr/bin/python3
"""xmppc (Debian's, on libstrophe) against mynad on the shipped
configuration: the account's disco#info (account/registered, pubsub/pep and
the PEP features; XEP-0030 §3.1), its disco#items (the PEP nodes), the
OMEMO device list and bundle fingerprints (`xmppc -m omemo list`, XEP-0384
nodes published with `open` access by a slixmpp client), the XEP-0048
bookmarks it reads from PEP (`xmppc -m bookmark list`: a bookmark a
slixmpp client stored as bookmarks 2, mirrored by the bookmarks module,
XEP-0411), and the server's
disco#info.  xmppc has no port option and checks certificates: it runs
with HOME holding its account file, SSL_CERT_FILE the development
certificate mynad made, and tests/interop/connect-shim.c preloaded to send
its connection to 127.0.0.1:5222 to the test's port."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import myna_interop as mi
from myna_interop import check, login, close

ALICE, PW_A = 'alice@localhost', 'alice-secret-1'
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)
NS_AXOLOTL = 'eu.siacs.conversations.axolotl'
DEVICE = 12345
IDENTITY = 'BWSx9kqNTR3J2Ilm8e4uXmQYRwwgBDiQlchOHkT5MIJP'


def steps(mynad):
    st = {}

    def xmppc(*args):
        env = dict(os.environ, HOME=str(st['home']),
                   SSL_CERT_FILE=str(mynad.data_dir / 'certs' / 'localhost.crt'),
                   LD_PRELOAD=str(mi.BUILD_ROOT / 'tests' / 'interop' / 'connect-shim.so'),
                   MYNA_SHIM_PORT=str(mynad.ports['c2s']))
        try:
            p = subprocess.run([st['xmppc'], *args], capture_output=True, text=True,
                               timeout=mi.TIMEOUT, env=env)
        except subprocess.TimeoutExpired:
            raise mi.StepFailed('xmppc %s did not finish in %ss' % (' '.join(args), mi.TIMEOUT))
        check(p.returncode == 0, 'xmppc %s: exit %d\n%s%s' % (' '.join(args), p.returncode,
                                                             p.stdout, p.stderr))
        return p.stdout

    async def start():
        st['xmppc'] = shutil.which('xmppc')
        check(st['xmppc'] is not None, 'xmppc is not installed')
        mynad.configure()
        await mynad.astart()
        rc, out, err = mynad.mynactl('user', 'add', ALICE, input=PW_A + '\n')
        check(rc == 0, 'mynactl user add: %s%s' % (out, err))
        st['home'] = Path(tempfile.mkdtemp(prefix='myna-xmppc-home-'))
        (st['home'] / '.config').mkdir()
        (st['home'] / '.config' / 'xmppc.conf').write_text(
            '[default]\njid=%s\npwd=%s\n' % (ALICE, PW_A))

    async def publish():
        from slixmpp.xmlstream import ET
        c = await login(ALICE, PW_A, mynad.c2s, resource='pub', **SCRAM)
        st['c'] = c
        c.register_plugin('xep_0060')
        opts = c['xep_0004'].make_form(ftype='submit')
        opts.add_field(var='FORM_TYPE', ftype='hidden',
                       value='http://jabber.org/protocol/pubsub#publish-options')
        opts.add_field(var='pubsub#access_model', value='open')
        dl = ET.fromstring("<list xmlns='%s'><device id='%d'/></list>" % (NS_AXOLOTL, DEVICE))
        await c['xep_0060'].publish(ALICE, NS_AXOLOTL + '.devicelist', id='current', payload=dl,
                                    options=opts, timeout=mi.TIMEOUT)
        bundle = ET.fromstring(
            "<bundle xmlns='%s'><signedPreKeyPublic signedPreKeyId='1'>BQ==</signedPreKeyPublic>"
            "<signedPreKeySignature>AA==</signedPreKeySignature><identityKey>%s</identityKey>"
            "<prekeys><preKeyPublic preKeyId='1'>BQ==</preKeyPublic></prekeys></bundle>"
            % (NS_AXOLOTL, IDENTITY))
        await c['xep_0060'].publish(ALICE, '%s.bundles:%d' % (NS_AXOLOTL, DEVICE), id='current',
                                    payload=bundle, options=opts, timeout=mi.TIMEOUT)
        # Bookmarks 2 (XEP-0402) as a modern client stores them; xmppc reads
        # XEP-0048's PEP node, which the bookmarks module keeps in step
        # (XEP-0411 #compat-pep).
        conf = ET.fromstring("<conference xmlns='urn:xmpp:bookmarks:1' autojoin='true' "
                             "name='The Room'><nick>al</nick></conference>")
        bopts = c['xep_0004'].make_form(ftype='submit')
        bopts.add_field(var='FORM_TYPE', ftype='hidden',
                        value='http://jabber.org/protocol/pubsub#publish-options')
        bopts.add_field(var='pubsub#persist_items', value='true')
        bopts.add_field(var='pubsub#max_items', value='max')
        bopts.add_field(var='pubsub#send_last_published_item', value='never')
        bopts.add_field(var='pubsub#access_model', value='whitelist')
        await c['xep_0060'].publish(ALICE, 'urn:xmpp:bookmarks:1', id='room@conference.localhost',
                                    payload=conf, options=bopts, timeout=mi.TIMEOUT)
        await close(c)

    async def account_info():
        out = xmppc('-m', 'discovery', 'info', ALICE)
        check('registered' in out and 'account' in out, 'no account/registered: %s' % out)
        check('pep' in out and 'pubsub' in out, 'no pubsub/pep identity: %s' % out)
        for f in ('http://jabber.org/protocol/pubsub#publish',
                  'http://jabber.org/protocol/pubsub#publish-options'):
            check(f in out, 'feature %s missing: %s' % (f, out))

    async def account_items():
        out = xmppc('-m', 'discovery', 'item', ALICE)
        check(out.count(ALICE) >= 3, 'the three nodes are not listed: %s' % out)

    async def omemo():
        out = xmppc('-m', 'omemo', 'list')
        # The fingerprint is the identity key without its type byte, in hex.
        import base64
        want = base64.b64decode(IDENTITY)[1:].hex()
        check('omemo-sid-%d=%s' % (DEVICE, want) in out, 'device or fingerprint missing: %s' % out)
        return out.strip()

    async def bookmarks():
        out = xmppc('-m', 'bookmark', 'list')
        check('room@conference.localhost' in out and 'The Room' in out,
              'the bookmark is not listed: %s' % out)

    async def server_info():
        out = xmppc('-m', 'discovery', 'info', 'localhost')
        check('Myna' in out and 'urn:xmpp:ping' in out, 'server disco#info: %s' % out)

    async def stop():
        await mynad.astop()

    async def cleanup():
        if 'c' in st:
            await close(st['c'])
        if 'home' in st:
            shutil.rmtree(st['home'], ignore_errors=True)

    return [
        ('mynad starts on the shipped configuration', start),
        ('a slixmpp client publishes an OMEMO device list and bundle (open) and '
         'a bookmarks 2 conference to PEP', publish),
        ('xmppc: disco#info of the account (account/registered, pubsub/pep, PEP features)',
         account_info),
        ('xmppc: disco#items of the account lists its nodes', account_items),
        ('xmppc: omemo list shows the device and its fingerprint', omemo),
        ('xmppc: bookmark list (XEP-0048 in PEP) shows the bookmarks 2 conference', bookmarks),
        ('xmppc: disco#info of the server', server_info),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup


if __name__ == '__main__':
    sys.exit(mi.main(steps, name='xmppc'))
