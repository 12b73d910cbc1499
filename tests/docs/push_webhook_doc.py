#!/usr/bin/python3
"""push_webhook_doc: the XEP-0357 section of docs/push.md followed as a
new user reads it: the mynad of the build tree (modules found as the
shipped configuration finds them, no module_path) on conf/myna.conf with
its commented [component:push.localhost] / [module:push_webhook] block
uncommented (webhook_url pointed at an HTTP sink this test runs), a
slixmpp client enabling push with the page's <enable/> example, going
offline, and a message from a contact: the sink gets the page's JSON
(node, message_count, last_sender, publish_options) with the bearer
token.  Reports TAP; every wait is bounded; mynad is always stopped."""
import asyncio
import http.server
import json
import re
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'interop'))
import myna_interop as mi  # noqa: E402
from myna_interop import StepFailed, check, login, close  # noqa: E402

ALICE, BOB = 'alice@localhost', 'bob@localhost'
PW = 'secret-pass'
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)
# docs/push.md, "The flow", step 1, as it is written there.
ENABLE = ("<enable xmlns='urn:xmpp:push:0' jid='push.localhost' node='device-token-abc'>"
          "<x xmlns='jabber:x:data' type='submit'>"
          "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options"
          "</value></field>"
          "<field var='secret'><value>s3cr3t</value></field></x></enable>")


class Sink(http.server.BaseHTTPRequestHandler):
    """Records each POST (headers and JSON body) and answers 200."""
    posts = []
    cond = threading.Condition()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', '0')))
        with Sink.cond:
            Sink.posts.append((self.path, dict(self.headers), body))
            Sink.cond.notify_all()
        self.send_response(200)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, *args):
        pass


def wait_post(timeout):
    with Sink.cond:
        Sink.cond.wait_for(lambda: Sink.posts, timeout)
        return Sink.posts[0] if Sink.posts else None


class WebhookMynad(mi.Mynad):
    """mynad on the shipped configuration, its push_webhook block
    uncommented as docs/push.md and the comment above it say."""

    sink_url = None

    def configure(self):
        super().configure()
        text = self.conf.read_text()
        at = text.find('\n#[component:push.localhost]\n')
        if at < 0:
            raise StepFailed('conf/myna.conf has no commented [component:push.localhost]')
        head, block = text[:at], text[at:]
        for line in ('[component:push.localhost]', 'module = push_webhook',
                     '[module:push_webhook]', 'token = CHANGE-ME'):
            block, n = re.subn(r'(?m)^#' + re.escape(line) + '$', line, block, count=1)
            if n != 1:
                raise StepFailed('conf/myna.conf has no commented line %r' % line)
        block, n = re.subn(r'(?m)^#webhook_url = .*$', 'webhook_url = ' + self.sink_url,
                           block, count=1)
        if n != 1:
            raise StepFailed('conf/myna.conf has no commented webhook_url')
        text = head + block
        self.conf.write_text(text)


def steps(mynad):
    st = {}

    async def start():
        srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Sink)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        st['srv'] = srv
        mynad.sink_url = 'http://127.0.0.1:%d/notify' % srv.server_address[1]
        await mynad.astart()
        rc, out, err = mynad.mynactl('modules')
        check(rc == 0 and re.search(r'(?m)^push_webhook ', out),
              'mynactl modules does not list push_webhook: %s%s' % (out, err))
        for user in ('alice', 'bob'):
            rc, out, err = mynad.mynactl('user', 'add', user + '@localhost', input=PW + '\n')
            check(rc == 0, 'mynactl user add %s: %s%s' % (user, out, err))

    async def enable_then_offline():
        from slixmpp.xmlstream import ET
        a = await login(ALICE, PW, mynad.c2s, resource='phone', **SCRAM)
        iq = a.make_iq_set()
        iq.append(ET.fromstring(ENABLE))
        try:
            r = await iq.send(timeout=mi.TIMEOUT)
        finally:
            await close(a)
        check(r['type'] == 'result', 'the enable was answered %s' % r)

    async def message_posts():
        b = await login(BOB, PW, mynad.c2s, resource='desk', **SCRAM)
        b.send_message(mto=ALICE, mbody='are you there?', mtype='chat')
        post = await asyncio.get_running_loop().run_in_executor(None, wait_post, mi.TIMEOUT)
        await close(b)
        check(post is not None, 'the webhook got no POST within %ss' % mi.TIMEOUT)
        path, headers, body = post
        check(path == '/notify', 'posted to %s' % path)
        check(headers.get('Authorization') == 'Bearer CHANGE-ME',
              'Authorization: %r' % headers.get('Authorization'))
        check(headers.get('Content-Type', '').startswith('application/json'),
              'Content-Type: %r' % headers.get('Content-Type'))
        doc = json.loads(body)
        want = {'node': 'device-token-abc', 'message_count': 1,
                'publish_options': {'secret': 's3cr3t'}}
        for k, v in want.items():
            check(doc.get(k) == v, '%s is %r, not %r: %s' % (k, doc.get(k), v, body))
        check(str(doc.get('last_sender', '')).startswith(BOB), 'last_sender: %s' % body)
        check('last_body' not in doc, 'the body left the server: %s' % body)

    async def stop():
        await mynad.astop()
        st['srv'].shutdown()

    async def cleanup():
        if 'srv' in st:
            st['srv'].shutdown()

    return ([('start mynad with push_webhook as docs/push.md says', start),
             ('alice enables push as the page shows, then goes offline', enable_then_offline),
             ("bob's message makes push_webhook POST the page's JSON", message_posts),
             ('stop', stop)], cleanup)


if __name__ == '__main__':
    # mi.main runs its own Mynad: this one, with the block uncommented.
    mi.Mynad = WebhookMynad
    sys.exit(mi.main(steps, name='doc-push-webhook'))
