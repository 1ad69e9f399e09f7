"""An opt-in log of what the index served: one line per request, ``METHOD path status bytes content-type``.

Turned on by ``INDEX_REQUEST_LOG=<file>`` (tests count the wheel bytes a resolver
downloads). It counts the body as it is sent, so it sees every route alike. The path is
the client's: its control characters (a ``%0A`` would start a forged line), line
separators, spaces (the field separator) and backslashes are written as ``\\xNN``.
"""

from __future__ import annotations

import re
import threading
import typing as t
import urllib.parse


# What a log line must not hold as itself: C0 and C1 controls, DEL, Unicode line and paragraph separators,
# the space between fields, and the backslash that starts an escape.
UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029\\]")


def escaped(text: str) -> str:
    r"""``text`` on one line of the log, unambiguous.

    >>> print(escaped("/simple/x\nGET /fake 200 1 text/plain"))
    /simple/x\x0aGET\x20/fake\x20200\x201\x20text/plain
    >>> print(escaped("/a\\b\u2028c"))
    /a\x5cb\u2028c
    """
    return UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


def logged(app: t.Callable, log_file: str) -> t.Callable:
    lock = threading.Lock()

    def application(environ: dict, start_response: t.Callable) -> t.Iterator[bytes]:
        status, content_type = [], []

        def start(code: str, headers: list, exc_info: t.Any = None) -> t.Callable:
            status.append(code.split()[0])
            content_type.extend(value.split(";")[0] for name, value in headers if name.lower() == "content-type")
            return start_response(code, headers, exc_info)

        body, sent = app(environ, start), 0
        try:
            for chunk in body:
                sent += len(chunk)
                yield chunk
        finally:
            getattr(body, "close", lambda: None)()
            path = escaped(urllib.parse.unquote(environ.get("PATH_INFO", "")))
            with lock, open(log_file, "a", encoding="utf-8") as log:
                log.write(f"{environ['REQUEST_METHOD']} {path} {status[0] if status else '-'} {sent} "
                          f"{content_type[0] if content_type else '-'}\n")

    return application
