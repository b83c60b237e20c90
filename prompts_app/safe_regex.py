"""Regular expressions that cannot hang a worker: what the regex check and JSON Schema patterns use.

Python's `re` backtracks, and a pattern like `(a+)+$` or even `a*a*c` can take minutes on
a long text. The guard, in two parts:

* `regex_problem()` refuses, when a check is configured: patterns over 500 characters,
  nested repeats, optional parts inside a repeat (`(?:a?){25}`), alternatives inside a
  repeat, and back-references (the exponential kinds).
* `regex_search()` runs what is left, which is polynomial: in-process when the worst case on
  this text is small (about 10^7 steps), else in a child process killed after
  REGEX_TIMEOUT_SECONDS (it raises TimeoutError). Callers also cap the text they scan.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from re import _parser as sre_parse  # the stdlib's own parser: the only exact view of a pattern

MAX_PATTERN_CHARS = 500
IN_PROCESS_STEPS = 10**7  # about a third of a second of backtracking on a slow core
REGEX_TIMEOUT_SECONDS = 2.0

_REPEATS = (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, getattr(sre_parse, "POSSESSIVE_REPEAT", None))
_WIDE = 100  # a repeat of more than this many counts like an unbounded one
_HUGE = 10**18  # past this a bound says only "too many"


def regex_problem(pattern: str) -> str | None:
    """Why a pattern is refused, or None. Compile errors say where."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"longer than {MAX_PATTERN_CHARS} characters"
    try:
        re.compile(pattern)
        parsed = sre_parse.parse(pattern)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        return f"does not compile{where}: {exc.msg}"
    return _nesting_problem(parsed, inside_repeat=False)


def _nesting_problem(parsed, *, inside_repeat: bool) -> str | None:
    for op, arg in parsed:
        if op in _REPEATS:
            low, high, body = arg
            if inside_repeat and high > 1:
                return "nested repeats like (a+)+ can take exponential time; remove the inner or outer one"
            if inside_repeat and low != high:
                # (?:a?){25}a{25}: each of the 25 optional parts can match or not, 2^25 tries.
                return (
                    "an optional part inside a repeated group like (a?){20} can take exponential time; "
                    "write the repeat without the optional part"
                )
            problem = _nesting_problem(body, inside_repeat=inside_repeat or high > 1)
            if problem:
                return problem
        elif op is sre_parse.BRANCH:
            if inside_repeat:
                return "alternatives inside a repeated group like (a|ab)* can take exponential time"
            for branch in arg[1]:
                problem = _nesting_problem(branch, inside_repeat=inside_repeat)
                if problem:
                    return problem
        elif op in (sre_parse.GROUPREF, sre_parse.GROUPREF_EXISTS):
            return "back-references are not supported"
        else:
            for sub in _subpatterns(op, arg):
                problem = _nesting_problem(sub, inside_repeat=inside_repeat)
                if problem:
                    return problem
    return None


def _subpatterns(op, arg) -> list:
    if op is sre_parse.SUBPATTERN:
        return [arg[-1]]
    if op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
        return [arg[1]]
    if op is getattr(sre_parse, "ATOMIC_GROUP", None):
        return [arg]
    return []


def _worst_steps(parsed, length: int) -> int:
    """An upper bound on backtracking steps for a pattern that passed regex_problem()."""
    steps = 1
    for op, arg in parsed:
        if op in _REPEATS:
            high, body = arg[1], _worst_steps(arg[2], length)
            steps *= length + 1 if high > _WIDE else high + 1
            # A body with choices, repeated, multiplies them (body ** count), not adds:
            # regex_problem() refuses those, and this keeps the bound honest if one slips by.
            steps *= body if body == 1 else min(body ** min(high, length + 1, 64), _HUGE)
        elif op is sre_parse.BRANCH:
            steps *= sum(_worst_steps(branch, length) for branch in arg[1])
        else:
            for sub in _subpatterns(op, arg):
                steps *= _worst_steps(sub, length)
    return steps


_CHILD = (
    "import json, re, sys\n"
    "job = json.load(sys.stdin)\n"
    "sys.stdout.write('1' if re.search(job['pattern'], job['text'], job['flags']) else '0')\n"
)


def regex_search(pattern: str, text: str, flags: int) -> bool:
    """re.search, in a child process with a hard time limit when the worst case is large.

    Raises TimeoutError when the child does not finish in time.
    """
    parsed = sre_parse.parse(pattern, flags)
    if _worst_steps(parsed, len(text)) * (len(text) + 1) <= IN_PROCESS_STEPS:
        return re.search(pattern, text, flags) is not None
    job = json.dumps({"pattern": pattern, "text": text, "flags": flags})
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _CHILD],
            input=job,
            capture_output=True,
            text=True,
            timeout=REGEX_TIMEOUT_SECONDS,
            check=True,
        )
    except subprocess.TimeoutExpired:
        raise TimeoutError from None
    return done.stdout == "1"
