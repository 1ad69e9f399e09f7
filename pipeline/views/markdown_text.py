"""Text taken from the data (class labels, column names, target and units, file names), made safe
to write into the model card's Markdown.

The card is the package's long description: the registry page renders it, and so may any other
index. A label such as ``[x](http://evil.example)`` or ``# heading`` must read as itself there,
never become a link or a heading. CommonMark lets every ASCII punctuation character be
backslash-escaped, so ``text`` escapes them all; a line break could start a new block (a heading,
a fence that closes a code block), so every control character becomes a space first.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_BACKTICK_RUNS = re.compile(r"`+")


def one_line(value: object) -> str:
    """``value`` as text on one line: for a fenced code block, where nothing else is interpreted."""
    return _CONTROL.sub(" ", str(value))


def text(value: object) -> str:
    r"""``value`` as Markdown that renders as exactly that text (also inside a table cell).

    >>> print(text("[x](http://evil.example) # h | `b` <b>"))
    \[x\]\(http\:\/\/evil\.example\) \# h \| \`b\` \<b\>
    """
    return _PUNCTUATION.sub(r"\\\1", one_line(value))


def code(value: object) -> str:
    """``value`` as an inline code span that shows it verbatim, backticks included.

    The fence is one backtick longer than the longest run inside; a space pads a value that
    starts or ends with a backtick or a space (CommonMark strips one from each side).
    Not for table cells: a ``|`` there splits the cell even inside code (use ``text``).

    >>> code("survived"), code("a`b"), code("`x`")
    ('`survived`', '``a`b``', '`` `x` ``')
    """
    shown = one_line(value)
    if not shown:
        return ""
    fence = "`" * (max((len(run) for run in _BACKTICK_RUNS.findall(shown)), default=0) + 1)
    pad = " " if shown[0] in "` " or shown[-1] in "` " else ""
    return f"{fence}{pad}{shown}{pad}{fence}"
