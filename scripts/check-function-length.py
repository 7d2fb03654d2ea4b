#!/usr/bin/env python3
"""Fails when a function, initializer or closure-valued property body in Sources/ runs over
MAX_LINES lines. Long functions hide the steps of a pipeline; the daemon and the API are
kept as short steps with names (see docs/architecture.md)."""
import re, sys, pathlib

MAX_LINES = 60  # the project's rule: a function a reader can hold on one screen
DECL = re.compile(r'^\s*(?:@[\w()]+\s+)*(?:(?:public|package|internal|private|fileprivate|static|class|final|override|mutating|nonmutating|nonisolated|convenience|required|@discardableResult)\s+)*(func\s+[^\s(<]+|init[?!]?|deinit)\b')

def strip(line):
    line = re.sub(r'"(?:\\.|[^"\\])*"', '""', line)
    return line.split('//')[0]

def long_functions(path):
    lines = path.read_text().split('\n')
    found = []
    i = 0
    while i < len(lines):
        m = DECL.match(lines[i])
        if not m:
            i += 1
            continue
        # the body starts at the first '{' at or after the declaration line
        depth, start, j = 0, None, i
        while j < len(lines):
            code = strip(lines[j])
            for ch in code:
                if ch == '{':
                    depth += 1
                    if start is None: start = j
                elif ch == '}':
                    depth -= 1
            if start is not None and depth == 0: break
            if start is None and j > i + 10: break  # a protocol requirement: no body
            j += 1
        if start is not None:
            length = j - i + 1
            if length > MAX_LINES:
                found.append((length, f"{path}:{i + 1}: {m.group(1)} is {length} lines (max {MAX_LINES})"))
        i += 1  # nested functions are checked on their own
    return found

results = []
for p in sorted(pathlib.Path('Sources').rglob('*.swift')):
    results += long_functions(p)
for _, text in sorted(results, reverse=True):
    print(text, file=sys.stderr)
if results:
    sys.exit(1)
print(f"check-function-length: no function in Sources/ is over {MAX_LINES} lines")
