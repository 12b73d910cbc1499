#!/usr/bin/python3
"""push_curl: runs docs/examples/push-curl.sh, the curl examples that
docs/push.md shows (as excerpts checked by doccheck.py), against a real
mynad on the shipped conf/myna.conf with push turned on as its commented
block says (an http listener, a rest token, `push` in `modules`), and
checks each answer: 201s with the recipients counted, the states read
back, 400 for a bad body, 401 for a wrong token.  Reports TAP; every wait
is bounded; mynad is always stopped."""
import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'interop'))
import myna_interop as mi  # noqa: E402

SCRIPT = mi.SOURCE_ROOT / 'docs' / 'examples' / 'push-curl.sh'
TOKEN = 'doc-token-0123456789'


class PushMynad(mi.Mynad):
    """mynad on the shipped configuration, push turned on."""

    def configure(self):
        super().configure()
        self.ports['http'] = mi.free_port()
        text = self.conf.read_text()
        text, n = re.subn(r'(?m)^(modules = .*)$', r'\1;rest;push', text, count=1)
        if n != 1:
            raise mi.StepFailed('the shipped configuration has no modules line')
        text += ('\n[listener:http]\nkind = http\naddress = 127.0.0.1\nport = %d\n'
                 '[module:rest]\ntoken = %s\n' % (self.ports['http'], TOKEN))
        self.conf.write_text(text)


# What each of the script's six commands must answer: status, then
# patterns of its body.
EXPECT = [
    (201, [r'"id":"[0-9a-f]{32}"', r'"recipients":2']),
    (200, [r'"title":"Hello"', r'"jid":"alice@localhost","state":"queued"',
           r'"jid":"bob@localhost","state":"queued"']),
    (201, [r'"recipients":2']),
    (201, [r'"recipients":1']),
    (400, [r'"error":"\\"to\\" must name accounts by their bare JIDs']),
    (401, [r'"error":"a valid bearer token is required"']),
]


async def main():
    d = PushMynad('doc-push')
    print('1..1', flush=True)
    try:
        await d.astart()
        for user in ('alice', 'bob'):
            rc, out, err = d.mynactl('user', 'add', user + '@localhost', input='secret-pass\n')
            if rc != 0:
                raise mi.StepFailed('mynactl user add %s: %s%s' % (user, out, err))
        env = dict(os.environ, BASE='http://127.0.0.1:%d' % d.ports['http'], TOKEN=TOKEN)
        r = subprocess.run(['/bin/sh', str(SCRIPT)], capture_output=True, text=True,
                           timeout=mi.TIMEOUT, cwd=str(d.dir), env=env)
        lines = [l for l in r.stdout.splitlines() if l.strip()]
        if r.returncode != 0 or len(lines) != len(EXPECT):
            raise mi.StepFailed('the script exited %d with %d answers: %s %s'
                                % (r.returncode, len(lines), r.stdout, r.stderr))
        for n, (line, (status, patterns)) in enumerate(zip(lines, EXPECT), 1):
            if not line.endswith(' %d' % status):
                raise mi.StepFailed('command %d: expected %d: %s' % (n, status, line))
            for p in patterns:
                if not re.search(p, line):
                    raise mi.StepFailed('command %d: %s lacks %s' % (n, line, p))
        await d.astop()
    except mi.StepFailed as e:
        print('not ok 1 - docs/push.md curl examples # %s' % e)
        for line in d.tail():
            print('# mynad| ' + line)
        await d.astop(require_clean=False)
        d.cleanup()
        return 1
    d.cleanup()
    print('ok 1 - the curl examples of docs/push.md answer as documented')
    return 0


if __name__ == '__main__':
    sys.exit(asyncio.run(main()))
