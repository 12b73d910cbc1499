#!/usr/bin/python3
"""transcript: runs the mynactl session that docs/modules.md §9 shows, on a
real mynad running docs/examples/plugins.conf (data_dir, the listener's
address and port, and module_path rewritten for the test), and compares
what the commands print with docs/examples/mynactl-session.txt, the file
the guide's transcript is checked against (tests/docs/doccheck.py).

  MYNA_UPDATE_DOCS=1   write the new transcript instead of failing

Reports TAP.  Every wait is bounded; mynad is always stopped."""
import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'interop'))
import myna_interop as mi  # noqa: E402

EXAMPLE = mi.SOURCE_ROOT / 'docs' / 'examples' / 'plugins.conf'
EXPECTED = mi.SOURCE_ROOT / 'docs' / 'examples' / 'mynactl-session.txt'

# The session: a command, and an optional pattern its output is filtered
# by (the transcript shows it as `| grep PATTERN`).
SESSION = [
    ('check-config', None),
    ('modules', None),
    ('routes', None),
    ('load hello', None),
    ('routes', 'hello'),
    ('reload hello', None),
    ('unload hello', None),
    ('unload nosuch', None),
    ('unload roster', None),
]


class ExampleMynad(mi.Mynad):
    """mynad on docs/examples/plugins.conf."""

    def configure(self):
        self.ports = {'c2s': mi.free_port()}
        text = EXAMPLE.read_text()
        # Only the two plugins beside the built-in modules, as a user would
        # install them.
        moddir = self.dir / 'plugins'
        moddir.mkdir(exist_ok=True)
        for name in ('mod_hello.so', 'hello.module', 'mod_broadcast.so', 'broadcast.module'):
            shutil.copy(mi.BUILD_ROOT / 'tests' / 'modules' / name, moddir / name)
        subs = [(r'(?m)^data_dir = .*$', 'data_dir = %s' % self.data_dir),
                (r'(?m)^address = .*$', 'address = 127.0.0.1'),
                (r'(?m)^port = .*$', 'port = %d' % self.ports['c2s']),
                (r'(?m)^module_path = .*$', 'module_path = %s' % moddir)]
        for rx, new in subs:
            text, n = re.subn(rx, new, text)
            if n != 1:
                raise mi.StepFailed('%s: expected one line matching %s' % (EXAMPLE, rx))
        self.conf.write_text(text)


def session(d):
    out = []
    for cmd, grep in SESSION:
        # -c relative to the directory, so the transcript names no temp path
        r = subprocess.run([str(d.ctl), '-c', d.conf.name] + cmd.split(),
                           capture_output=True, text=True, timeout=mi.TIMEOUT, cwd=str(d.dir))
        stdout, stderr = r.stdout, r.stderr
        lines = stdout.splitlines()
        shown = '$ mynactl ' + cmd
        if grep is not None:
            lines = [l for l in lines if grep in l]
            shown += ' | grep ' + grep
        out.append(shown)
        out += lines
        out += ['(stderr) ' + l for l in stderr.splitlines()]
    return '\n'.join(out) + '\n'


async def main():
    d = ExampleMynad('doc-transcript')
    print('1..1', flush=True)
    try:
        await d.astart()
        got = session(d)
        await d.astop()
    except mi.StepFailed as e:
        print('not ok 1 - transcript # %s' % e)
        for line in d.tail():
            print('# mynad| ' + line)
        d.cleanup()
        return 1
    d.cleanup()
    want = EXPECTED.read_text() if EXPECTED.exists() else ''
    if got == want:
        print('ok 1 - transcript of docs/modules.md §9 matches a real session')
        return 0
    if os.environ.get('MYNA_UPDATE_DOCS'):
        EXPECTED.write_text(got)
        print('ok 1 - transcript written to %s (MYNA_UPDATE_DOCS)' % EXPECTED)
        return 0
    print('not ok 1 - a real session differs from %s; rerun with MYNA_UPDATE_DOCS=1 '
          'and copy it into docs/modules.md' % EXPECTED)
    import difflib
    for line in difflib.unified_diff(want.splitlines(), got.splitlines(),
                                     'expected', 'got', lineterm=''):
        print('# ' + line)
    return 1


if __name__ == '__main__':
    sys.exit(asyncio.run(main()))
