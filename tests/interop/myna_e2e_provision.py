"""myna_e2e_provision: an aioxmpp.e2etest provisioner for mynad.

aioxmpp's e2e cases expect each client from get_connected_client() to be
a fresh account ("each test starts with a fully fresh state", Provisioner's
contract).  Its StaticPasswordProvisioner reuses the same accounts in every
case, so a PEP node one case created is still there in the next; SASL
ANONYMOUS (AnonymousProvisioner) is not offered by mynad.  This provisioner
creates a fresh account with `mynactl user add` for every client instead.

Selected in the --e2etest-config file as
  [global] provisioner=myna_e2e_provision.MynaProvisioner
with this module on PYTHONPATH; its section takes host, domain, port,
no_verify, quirks (as aioxmpp's provisioners do) and mynactl (the command
line, up to "user", that reaches the running mynad's data directory).
"""
import asyncio
import shlex

import aioxmpp
import aioxmpp.connector
from aioxmpp.e2etest import provision


class MynaProvisioner(provision._AutoConfiguredProvisioner):
    """One fresh mynad account per provisioned client."""

    def configure(self, section):
        super().configure(section)
        self._host = section.get('host')
        self._domain = aioxmpp.JID.fromstr(section.get('domain', self._host))
        self._port = section.getint('port')
        self._tls_config = provision.configure_tls_config(section)
        self._quirks = provision.configure_quirks(section)
        self._mynactl = shlex.split(section.get('mynactl'))
        self._serial = 0

    async def _new_account(self):
        """Creates the next account; returns (bare JID, password)."""
        self._serial += 1
        user = 'e2e%d' % self._serial
        password = 'e2e-secret-%d' % self._serial
        jid = aioxmpp.JID(localpart=user, domain=self._domain.domain, resource=None)
        proc = await asyncio.create_subprocess_exec(
            *self._mynactl, 'user', 'add', str(jid),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate((password + '\n').encode()), 30)
        if proc.returncode != 0:
            raise RuntimeError('mynactl user add %s: exit %d: %s%s'
                               % (jid, proc.returncode, out.decode(), err.decode()))
        return jid, password

    async def _make_client(self, logger):
        jid, password = await self._new_account()
        return aioxmpp.PresenceManagedClient(
            jid,
            aioxmpp.make_security_layer(password, **self._tls_config),
            override_peer=[(self._host, self._port, aioxmpp.connector.STARTTLSConnector())],
            logger=logger,
        )
