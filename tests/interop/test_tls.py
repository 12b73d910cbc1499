#!/usr/bin/python3
"""TLS as a standard TLS stack sees it (Python's ssl, OpenSSL), against
mynad on the shipped configuration: STARTTLS is required and offered with
<required/>, direct TLS (XEP-0368) negotiates ALPN xmpp-client, the
development certificate names the host, and sessions resume (tickets) on
TLS 1.3 and TLS 1.2.  Over TLS 1.2 only AEAD suites of Mozilla's
intermediate profile are negotiated (tests/integration/test-tls.c offers
every suite one by one)."""
import asyncio
import socket
import ssl

import myna_interop as mi
from myna_interop import check

HEADER = (b"<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' "
          b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")


def read_until(sock, needle, limit=65536):
    """Reads until @needle is seen (the socket has a timeout)."""
    data = b''
    while needle not in data and len(data) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def context(max_version=None, ciphers=None):
    ctx = ssl.create_default_context()
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(['xmpp-client'])
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


def direct_tls(addr, ctx, session=None):
    """One direct TLS connection up to the stream features; returns what
    the connection showed."""
    raw = socket.create_connection(addr, timeout=mi.TIMEOUT)
    with ctx.wrap_socket(raw, server_hostname='localhost', session=session) as s:
        s.sendall(HEADER)
        feats = read_until(s, b'</stream:features>')
        return dict(version=s.version(), alpn=s.selected_alpn_protocol(),
                    reused=s.session_reused, session=s.session, features=feats,
                    cert=s.getpeercert(binary_form=True))


def steps(mynad):
    async def start():
        await mynad.astart()

    async def starttls_required():
        with socket.create_connection(mynad.c2s, timeout=mi.TIMEOUT) as s:
            s.sendall(HEADER)
            feats = read_until(s, b'</stream:features>')
            check(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>" in feats,
                  'STARTTLS offered as required: %r' % feats)
            check(b'mechanisms' not in feats, 'no SASL before TLS: %r' % feats)
            # Anything but <starttls/> before TLS is refused.
            s.sendall(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>")
            err = read_until(s, b'</stream:stream>')
            check(b'<policy-violation' in err, 'policy-violation before TLS: %r' % err)

    async def starttls_upgrade():
        with socket.create_connection(mynad.c2s, timeout=mi.TIMEOUT) as raw:
            raw.sendall(HEADER)
            read_until(raw, b'</stream:features>')
            raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            check(b'<proceed' in read_until(raw, b'/>'), 'proceed')
            with context().wrap_socket(raw, server_hostname='localhost') as s:
                s.sendall(HEADER)
                feats = read_until(s, b'</stream:features>')
                check(b'<mechanism>SCRAM-SHA-256</mechanism>' in feats, 'SASL after TLS: %r' % feats)
                check(b'<mechanism>PLAIN</mechanism>' in feats, 'PLAIN inside TLS')
                check(b'starttls' not in feats, 'no STARTTLS again')

    async def alpn_and_certificate():
        info = direct_tls(mynad.c2s_tls, context())
        check(info['alpn'] == 'xmpp-client', 'ALPN: %r' % info['alpn'])
        check(info['version'] == 'TLSv1.3', 'TLS 1.3 by default: %s' % info['version'])
        pem = ssl.DER_cert_to_PEM_cert(info['cert'])
        # The dev certificate verifies as "localhost" when trusted.
        ctx = ssl.create_default_context(cadata=pem)
        raw = socket.create_connection(mynad.c2s_tls, timeout=mi.TIMEOUT)
        with ctx.wrap_socket(raw, server_hostname='localhost') as s:
            check(s.version() is not None, 'verified handshake')

    async def resumption_tls13():
        ctx = context()
        first = direct_tls(mynad.c2s_tls, ctx)
        check(not first['reused'], 'first handshake is full')
        second = direct_tls(mynad.c2s_tls, ctx, session=first['session'])
        check(second['reused'], 'TLS 1.3 session resumed from a ticket')

    async def resumption_tls12():
        ctx = context(ssl.TLSVersion.TLSv1_2)
        first = direct_tls(mynad.c2s_tls, ctx)
        check(first['version'] == 'TLSv1.2', 'TLS 1.2 negotiated: %s' % first['version'])
        second = direct_tls(mynad.c2s_tls, ctx, session=first['session'])
        check(second['reused'], 'TLS 1.2 session resumed')

    async def tls12_suites():
        def try_suite(ciphers):
            try:
                return direct_tls(mynad.c2s_tls, context(ssl.TLSVersion.TLSv1_2, ciphers))['version']
            except (ssl.SSLError, ConnectionError):
                return None
        for ok in ('ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384',
                   'ECDHE-ECDSA-CHACHA20-POLY1305'):
            check(try_suite(ok) == 'TLSv1.2', '%s negotiated' % ok)
        for bad in ('ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA',
                    'ECDHE-ECDSA-AES128-SHA256', 'ECDHE-ECDSA-AES128-CCM'):
            check(try_suite(bad) is None, '%s refused' % bad)

    async def stop():
        mynad.stop()

    return [
        ('mynad starts on the shipped configuration', start),
        ('STARTTLS is required before anything else', starttls_required),
        ('STARTTLS upgrade, then SASL is offered', starttls_upgrade),
        ('direct TLS: ALPN xmpp-client and a certificate for localhost', alpn_and_certificate),
        ('TLS 1.3 session resumption', resumption_tls13),
        ('TLS 1.2 session resumption', resumption_tls12),
        ('TLS 1.2: AES-GCM and ChaCha20 only, no CBC, no CCM', tls12_suites),
        ('mynad stops cleanly', stop),
    ]


if __name__ == '__main__':
    raise SystemExit(mi.main(steps, needs=(), name='tls'))
