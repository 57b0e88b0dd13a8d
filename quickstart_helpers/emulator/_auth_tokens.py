"""Ephemeral tokens for the Live API: ``POST /{version}/auth_tokens`` (``v1alpha``'s
``client.auth_tokens.create``) answers ``{"name": "auth_tokens/<random>"}``, which the constrained
Live route takes (:func:`~._live_wire.check_key`). As the live API: a token starts at most
``uses`` sessions (default 1), none after ``newSessionExpireTime`` (default a minute) or
``expireTime`` (30 minutes); ``bidiGenerateContentSetup``'s fields are locked (they replace the
client's). Tokens are valid only in the emulator that made them."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ._protocol import api_error, read_keyed_json

#: Every token name starts with this.
TOKEN_PREFIX = "auth_tokens/"
_FIELDS = {"uses", "expireTime", "newSessionExpireTime", "bidiGenerateContentSetup", "fieldMask"}


def _time(body: dict[str, Any], name: str, default: dt.timedelta) -> dt.datetime:
    """The timestamp ``body[name]`` (RFC 3339, UTC if it names no zone), or now + default."""
    if name not in body:
        return dt.datetime.now(dt.timezone.utc) + default
    try:
        parsed = dt.datetime.fromisoformat(str(body[name]).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"Invalid value for a timestamp: {exc}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


@dataclass
class EphemeralToken:
    """One token: its remaining uses, its deadlines and its locked setup fields."""

    name: str
    uses: int
    expire_time: dt.datetime
    new_session_expire_time: dt.datetime
    setup: dict[str, Any] = field(default_factory=dict)


class TokenStore:
    """The tokens one emulator made (thread-safe)."""

    def __init__(self) -> None:
        self._tokens: dict[str, EphemeralToken] = {}
        self._lock = threading.Lock()

    def create(self, body: dict[str, Any]) -> EphemeralToken:
        """Make a token from a create request's body; ValueError says what is not valid."""
        if unknown := sorted(set(body) - _FIELDS):
            why = f'Unknown name "{unknown[0]}": Cannot find field.'
            raise ValueError(f"Invalid JSON payload received. {why}")
        uses = body.get("uses", 1)
        if not isinstance(uses, int) or isinstance(uses, bool) or uses < 1:
            raise ValueError(f"Invalid value at 'uses' (TYPE_INT32), {uses!r}")
        expire = _time(body, "expireTime", dt.timedelta(minutes=30))
        new_session = _time(body, "newSessionExpireTime", dt.timedelta(minutes=1))
        setup = body.get("bidiGenerateContentSetup") or {}
        if not isinstance(setup, dict):
            raise ValueError("Invalid value at 'bidi_generate_content_setup', expected an object")
        name = TOKEN_PREFIX + secrets.token_urlsafe(24)
        token = EphemeralToken(name, uses, expire, new_session, setup)
        with self._lock:
            self._tokens[token.name] = token
        return token

    def start_session(self, name: str) -> EphemeralToken:
        """Spend one use of a token; PermissionError if unknown here, used up or expired."""
        with self._lock:
            token = self._tokens.get(name)
            if token is None:
                why = "(tokens live only in the emulator that made them)."
                raise PermissionError(f"The ephemeral token is not valid for this emulator {why}")
            if token.uses < 1:
                raise PermissionError("The ephemeral token has no uses left.")
            now = dt.datetime.now(dt.timezone.utc)
            if now > min(token.new_session_expire_time, token.expire_time):
                raise PermissionError("The ephemeral token has expired for new sessions.")
            token.uses -= 1
            return token


def add_routes(app: web.Application, tokens: TokenStore) -> None:
    async def create(request: web.Request) -> web.StreamResponse:
        if isinstance(read := await read_keyed_json(request, object_only=True), web.Response):
            return read
        try:
            return web.json_response({"name": tokens.create(read[1]).name})
        except ValueError as exc:
            return api_error(400, "INVALID_ARGUMENT", str(exc))

    app.router.add_post("/{version}/auth_tokens", create)
