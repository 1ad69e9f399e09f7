"""Requests with a body are refused on their headers unless they carry the upload credential.

waitress reads a whole request body before it calls the application, spooling it to a
temporary file past 512 KB, up to 1 GiB: an anonymous POST used to reach the disk before
pypiserver's 401 (four 900 MB ones added 3.6 GB in 14 s). Every request that writes (an
upload, a removal, a yank, a seal ``/+seal``, a take-back ``/+take-back``, a promotion
``/+promote``) needs the upload credential, and no read sends a body, so the server's parser
decides as soon as the headers are in, before the first body byte is read, whatever the path:

- no body (Content-Length 0 or none, not chunked): the request goes on as before;
- no Basic credentials: 401 at once; a user htpasswd does not hold, or a read-only one (the
  consumers' credential): 403 at once;
- credentials the auther already verified (index/auth.py keeps them as HMACs): the body is read;
- otherwise the password is checked (bcrypt, about 0.3 s) on a thread beside the event loop,
  which meanwhile reads nothing more from that connection; 403 if it is wrong.

A refused request gets its answer at once. What its client still sends is read and dropped,
never stored, up to DISCARD_LIMIT bytes or DISCARD_SECONDS, then the connection is closed: a
client that sent a small body in full reads the answer (closing on unread data would reset the
connection, and the answer with it), a large one is cut off. The checks behind (pypiserver's
auth, the read-only rule) stay as they were: this only moves the refusal in front of the body.
"""

from __future__ import annotations

import base64
import binascii
import socket
import time
import typing as t
from concurrent.futures import Future, ThreadPoolExecutor

from waitress.parser import HTTPRequestParser
from waitress.utilities import Error

from index.sendfile import SendfileChannel

# After a refusal: what the client may still send (read and dropped) before the connection is closed.
DISCARD_LIMIT = 32 * 2**20
DISCARD_SECONDS = 10.0
READ_WITHOUT_BODY = ("the index takes a request body (an upload, a removal, a yank, a seal, a take-back, a promotion) "
                     "only with the upload credential")


class Unauthorized(Error):
    code = 401
    reason = "Unauthorized"

    def to_response(self, ident: str | None = None) -> tuple[str, list, bytes]:
        status, headers, body = super().to_response(ident)
        return status, [*headers, ("WWW-Authenticate", 'Basic realm="pypi"')], body


class Forbidden(Error):
    code = 403
    reason = "Forbidden"


class BodyGuard:
    """Decides on a request's headers whether its body may be read (see the module's docstring).

    ``auther``: index/access.py's CredentialAuther, or index/auth.py's CachedHtpasswdAuther without a state
    folder (its cache is shared with the application's checks); ``read_only``: is this user one that may not
    send a body?"""

    def __init__(self, auther: t.Any, read_only: t.Callable[[str], bool], checkers: int = 2) -> None:
        self.auther, self.read_only = auther, read_only
        self._checks = ThreadPoolExecutor(max_workers=checkers, thread_name_prefix="credential-check")

    def verdict(self, headers: dict[str, str]) -> Error | Future | None:
        """None: read the body; an Error: refuse now; a Future: the password check, True when it holds."""
        credentials = basic_credentials(headers.get("AUTHORIZATION", ""))
        if credentials is None:
            return Unauthorized(f"{READ_WITHOUT_BODY}; send it (Basic authentication)")
        username, password = credentials
        if self.read_only(username):
            return Forbidden(f"{username} is a read-only credential; {READ_WITHOUT_BODY} (credentials.json)")
        if not self.auther.knows(username):
            return Forbidden(f"{READ_WITHOUT_BODY}; {username!r} is not a user of this index")
        if self.auther.remembered(username, password):
            return None
        return self._checks.submit(self.auther, username, password)


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(user, password) of an ``Authorization: Basic ...`` header; None for anything else.

    >>> basic_credentials("Basic bXltb2RlbDpzM2NyZXQ="), basic_credentials("Bearer x"), basic_credentials("Basic !!")
    (('mymodel', 's3cret'), None, None)
    """
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


class GuardedParser(HTTPRequestParser):
    """waitress's parser, asking the guard once the headers are in and a body is to follow."""

    guard: BodyGuard  # set on the subclass guarded_channel() makes
    asked = False
    pending: Future | None = None  # the password check, while it runs
    held = b""  # what arrived meanwhile (one read at most: the channel stops reading)
    continue_wanted = False  # the client's Expect: 100-continue, answered once the check holds

    def received(self, data: bytes) -> int:
        if self.pending is not None:
            self.held += data
            return len(data)
        consumed = super().received(data)
        if self.headers_finished and not self.asked:
            self.asked = True
            if not self.completed and (self.chunked or self.content_length > 0):
                verdict = self.guard.verdict(self.headers)
                if isinstance(verdict, Future):
                    self.pending, self.continue_wanted, self.expect_continue = verdict, self.expect_continue, False
                elif verdict is not None:
                    self.refuse(verdict)
                    return len(data)  # the rest of this read is body: dropped (the answer closes the connection)
        return consumed

    refused = False

    def refuse(self, error: Error) -> None:
        """Answered with ``error``; not a byte of the body is kept."""
        self.error, self.completed, self.expect_continue, self.refused = error, True, False, True


class GuardedChannel(SendfileChannel):
    """A connection whose request waits, unread, while its credential is checked off the event loop, and
    which after a refusal drops what its client still sends (bounded) before it closes."""

    parser_class = GuardedParser
    discard_left = 0  # bytes still to drop after a refusal; 0: not discarding
    discard_until = 0.0
    lingering = False  # the answer is out and the sending side shut: dropping what still comes, then closing

    # readable() and writable() are asked of every open connection on every turn of the event loop: waitress's
    # own conditions are written out here rather than called through super().
    def readable(self) -> bool:
        request = self.request
        if request is not None and request.pending is not None:
            if not request.pending.done():
                if not getattr(request.pending, "wakes", False):
                    request.pending.wakes = True  # the loop looks again as soon as the check ends
                    request.pending.add_done_callback(lambda _: self.server.pull_trigger())
                return False
            self._settle(request)
        return self.discard_left > 0 or not (self.will_close or self.close_when_flushed or self.total_outbufs_len
                                             or len(self.requests) > self.adj.channel_request_lookahead)

    def received(self, data: bytes) -> bool:
        result = super().received(data)
        if not self.discard_until and any(getattr(request, "refused", False) for request in self.requests):
            self._discard()
        return result

    def _discard(self) -> None:
        self.discard_left, self.discard_until = DISCARD_LIMIT, time.monotonic() + DISCARD_SECONDS

    def handle_read(self) -> None:
        if self.discard_left <= 0:
            return super().handle_read()
        try:
            data = self.recv(self.adj.recv_bytes)
        except OSError:
            data = b""
        self.last_activity = time.time()
        if not data or time.monotonic() > self.discard_until:
            self.discard_left = 0  # all sent, or too slow: done
        else:
            self.discard_left = max(self.discard_left - len(data), 0)
        if not self.discard_left and self.lingering:
            super().handle_close()

    def handle_close(self) -> None:
        """A lingering close after a refusal: the answer is out, so the sending side is shut (the client reads
        the answer to its end) and what the client still sends is dropped, then the connection closes.
        Closed at once on unread data, the connection would be reset, the answer lost with it."""
        if self.discard_left > 0 and not self.lingering and self.connected:
            self.lingering, self.will_close, self.close_when_flushed = True, False, False
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError:
                self.discard_left = 0
            else:
                return
        super().handle_close()

    def writable(self) -> bool:
        # lingering: nothing more to send; will_close again (the server's idle check) closes it
        return bool(self.total_outbufs_len or self.will_close or self.close_when_flushed) \
            and (not self.lingering or self.will_close)

    def _settle(self, request: GuardedParser) -> None:
        try:
            allowed = bool(request.pending.result())
        except Exception:  # noqa: BLE001 - a check that fails lets nothing in
            allowed = False
        held, request.held, request.pending = request.held, b"", None
        if allowed:
            request.expect_continue = request.continue_wanted
            if held:
                self.received(held)
            elif request.expect_continue and not self.requests and not self.sent_continue:
                self.send_continue()
            return
        request.refuse(Forbidden(f"{READ_WITHOUT_BODY}; the password is wrong"))
        self._discard()
        with self.requests_lock:
            self.requests.append(request)
            self.request = None
            if len(self.requests) == 1:
                self.server.add_task(self)


def guarded_channel(guard: BodyGuard) -> type[GuardedChannel]:
    """The channel class a waitress server uses so that ``guard`` sees every request's headers."""
    parser = type("BoundGuardedParser", (GuardedParser,), {"guard": guard})
    return type("BoundGuardedChannel", (GuardedChannel,), {"parser_class": parser})
