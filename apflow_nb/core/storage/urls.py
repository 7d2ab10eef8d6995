"""Store URLs: parse them without echoing them, show them only masked, scrub passwords from any text.

Every place that shows a store URL (errors, views, reprs, logs, magics) goes through :func:`mask_url`;
every error message that may carry a URL or a password goes through :func:`scrub`. Each password that
passes through :func:`parse_url` is remembered (in this process only), so ``scrub(text)`` removes it
from text that never saw the URL itself (a driver's message, a traceback).
"""
from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import quote, quote_plus

from apflow_nb.core.errors import ApflowError

MASK = "***"
EXPECTED = ("dialect[+driver]://user:password@host[:port]/database, for example sqlite:///path/to/tasks.db, "
            "sqlite:// (in memory) or postgresql://user:password@host:5432/dbname (special characters in the "
            "password percent-encoded: @ as %40, : as %3A, / as %2F)")
UNPARSABLE = "(a store URL that could not be parsed)"

_known: set[str] = set()
_lock = threading.Lock()
# scheme://user:password@ in free text (a URL someone pasted into a message), and key=value conninfo passwords
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@'\"]*):(?P<pw>[^@\s'\"/]*)@")
_EXAMPLES = ("", MASK, "password")  # the placeholder in our own help text is not a password
_CONNINFO = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


class StoreURLError(ApflowError, ValueError):
    """A store URL that cannot be used: unparsable, a bad port, an unknown database kind.

    The message never repeats the URL's password (and never repeats an unparsable URL at all).
    """


def remember_password(password: str | None) -> None:
    """Let :func:`scrub` remove ``password`` (and its percent-encoded forms) from any text from now on."""
    if password and len(password) >= 2:  # a one-character password would mask every such letter
        with _lock:
            _known.update({password, quote(password, safe=""), quote_plus(password), quote(password)})


def parse_url(url: Any) -> Any:
    """A SQLAlchemy ``URL`` from a string (or URL); StoreURLError, which never echoes it, when it cannot be parsed."""
    from sqlalchemy.engine import URL, make_url

    if isinstance(url, URL):
        remember_password(url.password if isinstance(url.password, str) else None)
        return url
    if not isinstance(url, str) or not url.strip():
        raise StoreURLError(f"the store URL must be a non-empty string like {EXPECTED}; got "
                            f"{type(url).__name__ if not isinstance(url, str) else 'an empty string'}")
    _remember_in_text(url)
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - SQLAlchemy's message quotes the whole string, password included
        raise StoreURLError(f"the store URL could not be parsed; the expected form is {EXPECTED}") from None
    remember_password(parsed.password if isinstance(parsed.password, str) else None)
    try:
        port = parsed.port
    except ValueError:  # a port that is not a number: int() quotes it, and it may be part of a password
        raise StoreURLError(f"the port in the store URL is not a number; the expected form is {EXPECTED}") from None
    if port is not None and not 0 < port < 65536:
        raise StoreURLError(f"the port in the store URL {mask_url(parsed)!r} is {port}, which is not a port "
                            f"number (1 to 65535); fix the URL")
    return parsed


def _remember_in_text(text: str) -> None:
    for match in _USERINFO.finditer(text):
        pw = match.group("pw")
        remember_password(pw)
        try:
            from urllib.parse import unquote

            remember_password(unquote(pw))
        except Exception:  # noqa: BLE001
            pass


def mask_url(url: Any) -> str:
    """``url`` as text with its password replaced by ``***``; an unparsable URL is never echoed."""
    if url is None:
        return "(none)"
    try:
        parsed = parse_url(url)
    except StoreURLError:
        return UNPARSABLE
    try:
        shown = parsed.render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return UNPARSABLE
    return scrub(shown)


def scrub(text: Any, *urls: Any) -> str:
    """``text`` with every password this process knows (and those of ``urls``) replaced by ``***``.

    Also masks ``scheme://user:password@`` and ``password=...`` wherever they appear.
    """
    for url in urls:
        if isinstance(url, str):
            _remember_in_text(url)
            try:
                parse_url(url)
            except StoreURLError:
                pass
        elif url is not None:
            remember_password(getattr(url, "password", None))
    out = str(text)
    out = _USERINFO.sub(lambda m: f"{m.group('head')}:{MASK}@" if m.group("pw") not in _EXAMPLES else m.group(0), out)
    out = _CONNINFO.sub(lambda m: f"{m.group('head')}{MASK}", out)
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in out:
            out = out.replace(secret, MASK)
    return out


def scrub_exception(exc: BaseException, *urls: Any) -> BaseException:
    """Scrub, in place, the messages of ``exc`` and every exception chained to it; return ``exc``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    pending: list[BaseException] = []
    while current is not None or pending:
        if current is None:
            current = pending.pop()
        if id(current) in seen:
            current = None
            continue
        seen.add(id(current))
        try:
            current.args = tuple(scrub(a, *urls) if isinstance(a, str) else a for a in current.args)
        except (AttributeError, TypeError):
            pass
        orig = getattr(current, "orig", None)  # SQLAlchemy's DBAPIError keeps the driver's exception
        for linked in (orig, current.__context__):
            if isinstance(linked, BaseException):
                pending.append(linked)
        current = current.__cause__
    return exc


def message_of(exc: BaseException, *urls: Any) -> str:
    """``Name: message`` on one line, scrubbed (for errors shown to the user)."""
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return scrub(f"{type(exc).__name__}: {text}", *urls)


__all__ = ["MASK", "EXPECTED", "StoreURLError", "parse_url", "mask_url", "scrub", "scrub_exception",
           "message_of", "remember_password"]
