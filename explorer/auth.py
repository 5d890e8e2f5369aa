"""Auditor login by SM2 key challenge, and the session cookie that follows it.

The explorer mints a one-time challenge (chain id, random nonce, expiry); the auditor signs
its text with an SM2 key; the explorer checks the signature and that the key may audit. A
key may audit when it is listed in the explorer's settings, or when the chain says so: an
IssuerRegistry key with the AUDITOR role whose validity window holds at the indexed head
(its department not frozen), or an account holding the ``auditor`` permission (genesis
roles, as later changed by Permissions' ``RolesChanged``, and not frozen). The chain's
answer is read from the explorer's own index, so no registry or node secret is involved.

The session is a cookie ``address.expiry.mac`` under an HMAC key of the settings; a login
also yields a one-time ticket (``/auth/enter?ticket=…``) for a browser opened by a script.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, desc, select

from chain.crypto import PublicKey
from chain.errors import ChainError
from chain.genesis import Genesis
from contracts.permissions import AUDITOR, FROZEN
from contracts.trust import Role
from explorer import store_schema as t
from explorer.store import loads_args

CHALLENGE_SECONDS = 300
"""How long a challenge may be answered."""
TICKET_SECONDS = 60
"""How long a login ticket may be exchanged for a session."""
MAX_PENDING = 10_000
"""Most challenges or tickets held at once; the oldest go first."""
SESSION_COOKIE = "lx_session"


class LoginRefused(Exception):
    """A login that does not prove an auditor's key."""


@dataclass(frozen=True)
class Challenge:
    """A challenge to sign."""

    nonce: str
    text: str
    expires: float


class _Pending:
    """One-time values with an expiry, bounded in number."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def put(self, key: str, expires: float, value: str) -> None:
        with self._lock:
            now = time.time()
            for stale in [k for k, (e, _) in self._values.items() if e < now]:
                del self._values[stale]
            while len(self._values) >= MAX_PENDING:
                del self._values[next(iter(self._values))]
            self._values[key] = (expires, value)

    def take(self, key: str) -> str | None:
        with self._lock:
            found = self._values.pop(key, None)
        if found is None or found[0] < time.time():
            return None
        return found[1]


def challenge_text(chain_id: int, nonce: str, expires: float) -> str:
    """The text an auditor signs (UTF-8), bound to the chain and the nonce."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
    return f"lianxin explorer login\nchain: {chain_id}\nnonce: {nonce}\nexpires: {stamp}"


class Authenticator:
    """Challenges, logins, tickets and session cookies of one explorer."""

    def __init__(
        self, *, genesis: Genesis, configured_keys: set[bytes], secret: str, session_seconds: int
    ) -> None:
        self.genesis = genesis
        self.configured_keys = configured_keys
        self._secret = secret.encode()
        self.session_seconds = session_seconds
        self._challenges = _Pending()
        self._tickets = _Pending()

    def new_challenge(self) -> Challenge:
        """A fresh one-time challenge."""
        nonce = secrets.token_hex(16)
        expires = time.time() + CHALLENGE_SECONDS
        text = challenge_text(self.genesis.chain_id, nonce, expires)
        self._challenges.put(nonce, expires, text)
        return Challenge(nonce, text, expires)

    def login(self, c: Connection, *, nonce: str, public_key_hex: str, signature_hex: str) -> str:
        """The auditor address of a valid answer to challenge ``nonce``; raises LoginRefused.
        The challenge is used up either way."""
        text = self._challenges.take(nonce)
        if text is None:
            raise LoginRefused("unknown or expired challenge")
        try:
            key = PublicKey.from_bytes(bytes.fromhex(public_key_hex.strip().removeprefix("0x")))
            key.verify(bytes.fromhex(signature_hex.strip().removeprefix("0x")), text.encode())
        except (ValueError, ChainError) as exc:
            raise LoginRefused("the signature does not verify") from exc
        address = "0x" + bytes(key.address).hex()
        if not self.may_audit(c, bytes(key.to_bytes()), address):
            raise LoginRefused("this key holds no auditor role")
        return address

    def may_audit(self, c: Connection, public_key: bytes, address: str) -> bool:
        """Whether the key is a configured auditor or one the chain names (module doc)."""
        if public_key in self.configured_keys:
            return True
        head = c.execute(select(t.cursor.c.height)).scalar() or 0
        keys = c.execute(
            select(t.department_keys, t.departments.c.frozen)
            .join(t.departments, t.departments.c.uscc == t.department_keys.c.uscc)
            .where(t.department_keys.c.account == address)
        ).all()
        for key in keys:
            in_window = int(key.valid_from) <= head < int(key.valid_until)
            if key.roles & Role.AUDITOR and in_window and not key.frozen:
                return True
        return self._permission_auditor(c, address)

    def _permission_auditor(self, c: Connection, address: str) -> bool:
        roles = 0
        for account in self.genesis.accounts:
            if "0x" + bytes(account.address).hex() == address and "auditor" in account.roles:
                roles = AUDITOR
        frozen = False
        for name in ("RolesChanged", "Frozen"):
            latest = c.execute(
                select(t.events.c.args)
                .join(t.event_subjects, t.event_subjects.c.event_id == t.events.c.id)
                .where(
                    t.event_subjects.c.kind == "account",
                    t.event_subjects.c.subject == address,
                    t.events.c.contract == "Permissions",
                    t.events.c.name == name,
                )
                .order_by(desc(t.event_subjects.c.height), desc(t.events.c.id))
                .limit(1)
            ).scalar()
            if latest is None:
                continue
            args = loads_args(latest)
            if name == "RolesChanged":
                roles = int(args["roles"])
            else:
                frozen = bool(args["frozen"])
        return bool(roles & AUDITOR) and not frozen and not roles & FROZEN

    def ticket(self, address: str) -> str:
        """A one-time ticket worth a session for ``address``."""
        value = secrets.token_urlsafe(24)
        self._tickets.put(value, time.time() + TICKET_SECONDS, address)
        return value

    def redeem(self, ticket: str) -> str | None:
        """The address of a valid ticket (used up)."""
        return self._tickets.take(ticket)

    def _mac(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()

    def session_cookie(self, address: str) -> str:
        """The cookie value of a session for ``address``."""
        payload = f"{address}.{int(time.time()) + self.session_seconds}"
        return f"{payload}.{self._mac(payload)}"

    def session_address(self, cookie: str | None) -> str | None:
        """The auditor of a valid, unexpired session cookie."""
        if not cookie or cookie.count(".") != 2:
            return None
        address, expiry, mac = cookie.split(".")
        payload = f"{address}.{expiry}"
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        if not expiry.isdigit() or int(expiry) < time.time():
            return None
        return address


def configured_keys(hex_keys: list[str], pem_files: list[Path]) -> set[bytes]:
    """The auditor keys of the settings as 65-byte points (each checked on the curve)."""
    found = {
        bytes(PublicKey.from_bytes(bytes.fromhex(k.removeprefix("0x"))).to_bytes())
        for k in hex_keys
    }
    for path in pem_files:
        found.add(bytes(PublicKey.from_pem(path.read_bytes()).to_bytes()))
    return found
