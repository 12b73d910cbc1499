#!/usr/bin/python3
"""go-sendxmpp (Debian's one-shot sender, Go and go-xmpp) against mynad on
the shipped configuration: alice sends bob a message over STARTTLS and
over direct TLS while bob is online with slixmpp."""
import asyncio
import os
import shutil
import sys
import time
import uuid

import myna_interop as mi
from myna_interop import Skip, StepFailed, check, login, close, wait_stanza, is_message

ALICE, BOB = 'alice@localhost', 'bob@localhost'
PW_A, PW_B = 'alice-secret-1', 'bob-secret-1'
SCRAM = dict(mech='SCRAM-SHA-256', channel_binding=False)


def go_sendxmpp():
    path = os.environ.get('MYNA_GO_SENDXMPP') or shutil.which('go-sendxmpp')
    if not path or not os.access(path, os.X_OK):
        raise Skip('go-sendxmpp is not installed')
    return path


async def run_sendxmpp(mynad, args, body, home):
    """Runs go-sendxmpp with @args, @body on stdin; returns (exit status,
    output, seconds).  Its HOME is a scratch directory so that no user
    configuration file is read."""
    env = dict(os.environ, HOME=str(home))
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        go_sendxmpp(), *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=env, cwd=str(home))
    try:
        out, _ = await asyncio.wait_for(proc.communicate(body.encode()), mi.TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        raise StepFailed('go-sendxmpp did not finish within %.0fs; its output:\n%s'
                         % (mi.TIMEOUT, out.decode(errors='replace')[-4000:])) from None
    return proc.returncode, out.decode(errors='replace'), time.monotonic() - t0


def sasl_mechanism(debug_output):
    """go-sendxmpp -d prints what it receives, not what it sends: a SASL
    exchange without <challenge/> was PLAIN (this go-xmpp has no SCRAM)."""
    if '<success' not in debug_output:
        return 'unknown'
    return 'SCRAM (challenge seen)' if '<challenge' in debug_output else 'PLAIN (no challenge)'


def steps(mynad):
    st = {}
    home = mynad.dir / 'home'

    async def start():
        home.mkdir(exist_ok=True)
        await mynad.astart()

    async def register():
        for jid, pw in ((ALICE, PW_A), (BOB, PW_B)):
            c = await login(jid, pw, mynad.c2s, register=True, **SCRAM)
            await close(c)
            check(c.registered is True, 'registration of %s: %s' % (jid, c.registered))

    async def bob_online():
        st['b'] = await login(BOB, PW_B, mynad.c2s, resource='slix', **SCRAM)
        st['b'].send_presence()

    async def send(direct_tls):
        addr = mynad.c2s_tls if direct_tls else mynad.c2s
        body = 'from go-sendxmpp %s %s' % ('direct TLS' if direct_tls else 'STARTTLS', uuid.uuid4().hex)
        args = ['-d', '-n', '-u', ALICE, '-p', PW_A, '-j', '%s:%d' % addr]
        if direct_tls:
            args.append('-t')
        args.append(BOB)
        n = len(st['b'].received)
        status, out, secs = await run_sendxmpp(mynad, args, body, home)
        if status != 0:
            raise StepFailed('go-sendxmpp exited with %d; its debug output:\n%s' % (status, out[-6000:]))
        try:
            m = await wait_stanza(st['b'], is_message(ALICE, body), 'the message from go-sendxmpp',
                                  start=n)
        except StepFailed as e:
            raise StepFailed('%s; go-sendxmpp debug output:\n%s' % (e, out[-6000:])) from None
        if os.environ.get('MYNA_INTEROP_VERBOSE'):
            mi.diag(out)
        return 'go-sendxmpp ran %.2fs, SASL %s, type=%s' % (secs, sasl_mechanism(out), m['type'])

    async def send_starttls():
        return await send(False)

    async def send_direct_tls():
        return await send(True)

    async def wrong_password():
        args = ['-n', '-u', ALICE, '-p', 'not-the-password', '-j', '%s:%d' % mynad.c2s, BOB]
        status, out, secs = await run_sendxmpp(mynad, args, 'never delivered', home)
        check(status != 0, 'go-sendxmpp succeeded with a wrong password:\n%s' % out)
        return 'exit %d: %s' % (status, out.strip().splitlines()[-1] if out.strip() else '')

    async def stop():
        await close(st['b'])
        await mynad.astop()

    async def cleanup():
        if 'b' in st:
            await close(st['b'])

    return [
        ('mynad starts on the shipped configuration', start),
        ('register alice and bob in-band (slixmpp)', register),
        ('bob is online with slixmpp', bob_online),
        ('7. go-sendxmpp sends alice -> bob over STARTTLS (c2s)', send_starttls),
        ('7. go-sendxmpp sends alice -> bob over direct TLS (c2s_tls, -t)', send_direct_tls),
        ('7. go-sendxmpp with a wrong password fails', wrong_password),
        ('mynad stops cleanly on SIGTERM', stop),
    ], cleanup


if __name__ == '__main__':
    try:
        go_sendxmpp()
    except Skip as e:
        print('1..0 # SKIP %s' % e)
        sys.exit(0)
    sys.exit(mi.main(steps, name='gosendxmpp'))
