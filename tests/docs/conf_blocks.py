#!/usr/bin/python3
"""conf_blocks: every commented setting of the shipped conf/myna.conf works
when a user uncomments it, as the file's comments and docs/push.md tell
them to.  Each commented `#key = value` line is uncommented where it
stands (section headers `#[…]` too), one commented block at a time, and
`mynactl check-config` must find no error; and no such line may carry a
trailing `# …` remark, which the configuration format does not strip (a
string key would silently take it as part of its value).

Usage: conf_blocks.py SOURCE_ROOT MYNACTL.  Reports TAP."""
import re
import subprocess
import sys
import tempfile
from pathlib import Path

KEY = re.compile(r'^#([A-Za-z0-9_.]+ = .*)$')
SECTION = re.compile(r'^#(\[[^\]]+\])\s*$')


def blocks(lines):
    """Yields the (first, last) line indexes of each run of commented lines
    that holds a setting or a section header."""
    i = 0
    while i < len(lines):
        if lines[i].startswith('#'):
            j = i
            while j + 1 < len(lines) and lines[j + 1].startswith('#'):
                j += 1
            if any(KEY.match(l) or SECTION.match(l) for l in lines[i:j + 1]):
                yield i, j
            i = j + 1
        else:
            i += 1


def main():
    root, mynactl = Path(sys.argv[1]), str(Path(sys.argv[2]).resolve())
    lines = (root / 'conf' / 'myna.conf').read_text().splitlines()
    found = list(blocks(lines))
    print('1..%d' % (len(found) + 1), flush=True)
    failed = 0
    remarks = [n + 1 for n, l in enumerate(lines)
               if KEY.match(l) and re.search(r'\S\s+#', KEY.match(l).group(1))]
    if remarks:
        failed += 1
        print('not ok 1 - commented settings with a trailing remark (kept in the value '
              'once uncommented): conf/myna.conf lines %s' % remarks)
    else:
        print('ok 1 - no commented setting carries a trailing remark')
    with tempfile.TemporaryDirectory(prefix='myna-conf-blocks-') as tmp:
        for n, (first, last) in enumerate(found, 2):
            if any(l == '#module = muc' for l in lines[first:last + 1]):
                # The example of a component names a module to come (MUC).
                print('ok %d - conf/myna.conf lines %d-%d # SKIP names the muc module, '
                      'not built yet' % (n, first + 1, last + 1))
                continue
            out = list(lines)
            for k in range(first, last + 1):
                m = KEY.match(out[k]) or SECTION.match(out[k])
                if m:
                    out[k] = m.group(1)
            conf = Path(tmp) / 'myna.conf'
            conf.write_text('\n'.join(out) + '\n')
            r = subprocess.run([mynactl, '-c', str(conf), 'check-config'],
                               capture_output=True, text=True, timeout=60, cwd=tmp)
            what = 'conf/myna.conf lines %d-%d uncommented' % (first + 1, last + 1)
            if r.returncode != 0 or ' 0 error(s)' not in r.stdout + r.stderr:
                failed += 1
                print('not ok %d - %s: check-config fails' % (n, what))
                for l in (r.stdout + r.stderr).splitlines():
                    print('# ' + l)
            else:
                print('ok %d - %s: check-config passes' % (n, what))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
