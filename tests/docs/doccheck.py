#!/usr/bin/env python3
"""doccheck: the code in a Markdown guide comes from files that are built or
run, so the guide cannot drift from them.

Every fenced block in the documents named on the command line must be
announced by a comment on the line before its opening fence (blank lines
allowed between):

  <!-- from: PATH -->        the block is a verbatim excerpt of PATH (a
                             source file the build compiles, a meson file it
                             runs, a config a test loads): each of its lines,
                             in order and contiguous, is in PATH
  <!-- output: PATH -->      the block equals PATH, a transcript written by
                             a test that ran the commands in it
  <!-- not-code -->          a block that is neither (a grammar, a tree)

PATH is relative to the source root, or to the build root when it starts
with @build/ (a file the build generates, e.g. a module's manifest).
Usage: doccheck.py SOURCE_ROOT BUILD_ROOT DOC...  Exits 1 listing every block that
does not hold, with the document's line number."""
import re
import sys
from pathlib import Path

FENCE = re.compile(r'^(```+|~~~+)(.*)$')
MARK = re.compile(r'^<!--\s*(from|output|not-code)\s*:?\s*(\S*)\s*-->\s*$')


def blocks(lines):
    """Yields (opening line number, info string, body lines, marker)."""
    i = 0
    marker = None
    while i < len(lines):
        line = lines[i]
        m = MARK.match(line.strip())
        if m:
            marker = (m.group(1), m.group(2))
            i += 1
            continue
        f = FENCE.match(line)
        if f:
            fence = f.group(1)
            start = i
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith(fence):
                body.append(lines[i])
                i += 1
            yield start + 1, f.group(2).strip(), body, marker
            marker = None
        elif line.strip():
            marker = None
        i += 1


def contains(haystack, needle):
    """Whether @needle's lines occur contiguously in @haystack's lines."""
    n = len(needle)
    if n == 0:
        return True
    for i in range(len(haystack) - n + 1):
        if haystack[i:i + n] == needle:
            return True
    return False


def check(root, build, doc):
    problems = []
    lines = doc.read_text().split('\n')
    count = 0
    for lineno, info, body, marker in blocks(lines):
        count += 1
        where = '%s:%d' % (doc, lineno)
        if marker is None:
            problems.append('%s: %s block without <!-- from: … -->, <!-- output: … --> '
                            'or <!-- not-code --> before it' % (where, info or 'unnamed'))
            continue
        kind, path = marker
        if kind == 'not-code':
            continue
        src = build / path[len('@build/'):] if path.startswith('@build/') else root / path
        if not src.is_file():
            problems.append('%s: %s names %s, which does not exist' % (where, kind, path))
            continue
        text = src.read_text().split('\n')
        if kind == 'from':
            if not contains(text, body):
                problems.append('%s: block is not an excerpt of %s (first differing line: %r)'
                                % (where, path, first_missing(text, body)))
        else:
            if text and text[-1] == '':
                text = text[:-1]
            if text != body:
                problems.append('%s: block differs from %s, which a test writes: copy it in'
                                % (where, path))
    return count, problems


def first_missing(text, body):
    """The first line of @body that cannot continue a match in @text."""
    best = 0
    for i in range(len(text)):
        k = 0
        while k < len(body) and i + k < len(text) and text[i + k] == body[k]:
            k += 1
        best = max(best, k)
    return body[best] if best < len(body) else ''


def main():
    root = Path(sys.argv[1])
    build = Path(sys.argv[2])
    total = 0
    problems = []
    for name in sys.argv[3:]:
        n, p = check(root, build, root / name)
        total += n
        problems += p
    for p in problems:
        print(p)
    print('%d block(s) checked, %d problem(s)' % (total, len(problems)))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
