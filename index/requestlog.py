"""An opt-in log of what the index served: one line per request, ``METHOD path status bytes content-type``.

Turned on by ``INDEX_REQUEST_LOG=<file>`` (tests count the wheel bytes a resolver
downloads). It counts the body as it is sent, so it sees every route alike.
"""

from __future__ import annotations

import threading
import typing as t
import urllib.parse


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
            path = urllib.parse.unquote(environ.get("PATH_INFO", ""))
            with lock, open(log_file, "a", encoding="utf-8") as log:
                log.write(f"{environ['REQUEST_METHOD']} {path} {status[0] if status else '-'} {sent} "
                          f"{content_type[0] if content_type else '-'}\n")

    return application
