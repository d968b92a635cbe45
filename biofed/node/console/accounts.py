"""Staff accounts of the web console: passwords, sessions, failed logins, the audit trail.

Everything lives in the node's database (console_* tables, biofed.node.db) and
never in a feed, a record or the catalogue. Passwords are hashed with scrypt
(memory-hard, in the standard library); session cookies, setup links and CSRF
tokens are random, and only their SHA-256 is stored where a stolen database
would otherwise let someone in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from biofed.errors import BiofedError
from biofed.node.store import Node
from biofed.protocol.times import format_time, parse_time, utc_now

ROLES = ("editor", "admin")
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # scrypt reads it all: a megabyte "password" must not cost a megabyte of hashing

# scrypt with N=2^15, r=8: 32 MiB and about 50-100 ms per hash (OWASP's minimum is N=2^17 with r=8, p=1
# for a server with memory to spare; 2^15 keeps a login affordable on a small node). Stored with the hash,
# so raising it later only affects new passwords.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024

SESSION_IDLE = timedelta(hours=2)  # no request for this long: logged out
SESSION_MAX = timedelta(hours=12)  # logged out at the latest this long after logging in
SEEN_EVERY = timedelta(minutes=1)  # a session's last-seen time is written at most this often
SETUP_VALID = timedelta(days=7)
UPLOAD_KEPT = timedelta(hours=1)

FREE_FAILURES = 5  # wrong passwords in a row before logins for that name are slowed down
FIRST_WAIT = 60  # seconds after the fifth failure; doubles with each further one
LONGEST_WAIT = 3600
FAILURES_FORGOTTEN = timedelta(hours=24)


class AccountError(BiofedError):
    pass


class LoginRefused(AccountError):
    def __init__(self, message: str, retry_after: int = 0):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Session:
    user: str
    role: str
    csrf: str
    key: str  # the stored hash of the cookie: identifies the session without the cookie

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    derived = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                             maxmem=SCRYPT_MAXMEM, dklen=32)
    encode = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encode(salt).decode()}${encode(derived).decode()}"


def check_password(password: str, stored: str | None) -> bool:
    """Constant time in the comparison; an account without a password still pays for one hash."""
    if not stored:
        hash_password(password)  # the same cost as a real check: no timing hint that the name is unknown
        return False
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        derived = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                 p=int(p), maxmem=SCRYPT_MAXMEM, dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(derived, base64.b64decode(expected))


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"at most {MAX_PASSWORD} characters"
    return None


def _later(now: str, delta: timedelta) -> str:
    return format_time(parse_time(now) + delta)


class Accounts:
    """The console's accounts and sessions on one node (thread-safe through the node's per-thread connections)."""

    def __init__(self, node: Node):
        self.node = node

    @contextmanager
    def _write(self):
        conn = self.node.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # --- accounts

    def add_user(self, name: str, role: str, *, by: str = "command line") -> str:
        """A new account without a password; returns its one-time setup token."""
        if not USER_NAME.match(name or ""):
            raise AccountError(f"account name {name!r} must be 2-64 lower-case letters, digits, '.', '_' or '-'")
        if role not in ROLES:
            raise AccountError(f"role {role!r} must be one of {', '.join(ROLES)}")
        token = secrets.token_urlsafe(32)
        now = utc_now()
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM console_users WHERE name = ?", (name,)).fetchone():
                raise AccountError(f"an account named {name!r} exists")
            conn.execute("INSERT INTO console_users (name, role, setup_hash, setup_expires, created) "
                         "VALUES (?, ?, ?, ?, ?)", (name, role, _digest(token), _later(now, SETUP_VALID), now))
            self._audit(conn, by, "account-added", detail=f"{name} ({role})")
        return token

    def reset(self, name: str, *, by: str = "command line") -> str:
        """A new setup link for `name`: the old password stops working and the account's sessions end."""
        token = secrets.token_urlsafe(32)
        now = utc_now()
        with self._write() as conn:
            changed = conn.execute("UPDATE console_users SET password = NULL, setup_hash = ?, setup_expires = ?, "
                                   "disabled = NULL WHERE name = ?",
                                   (_digest(token), _later(now, SETUP_VALID), name)).rowcount
            if not changed:
                raise AccountError(f"no account named {name!r}")
            conn.execute("DELETE FROM console_sessions WHERE user = ?", (name,))
            self._audit(conn, by, "account-reset", detail=name)
        return token

    def disable(self, name: str, *, by: str = "command line") -> None:
        with self._write() as conn:
            changed = conn.execute("UPDATE console_users SET disabled = ? WHERE name = ? AND disabled IS NULL",
                                   (utc_now(), name)).rowcount
            if not changed:
                raise AccountError(f"no active account named {name!r}")
            conn.execute("DELETE FROM console_sessions WHERE user = ?", (name,))
            self._audit(conn, by, "account-disabled", detail=name)

    def users(self) -> list[dict]:
        rows = self.node.conn.execute("SELECT name, role, password IS NOT NULL, setup_expires, created, disabled "
                                      "FROM console_users ORDER BY name").fetchall()
        return [{"name": n, "role": r, "active": bool(p) and not d, "setupPending": not p and not d,
                 "setupExpires": e if not p else None, "created": c, "disabled": d} for n, r, p, e, c, d in rows]

    def setup_account(self, token: str) -> str | None:
        """The account a setup token is for, while it is valid."""
        row = self.node.conn.execute("SELECT name, setup_expires FROM console_users WHERE setup_hash = ? "
                                     "AND disabled IS NULL", (_digest(token or ""),)).fetchone()
        if row is None or row[1] < utc_now():
            return None
        return row[0]

    def set_password(self, token: str, password: str) -> str:
        """Use a setup token: the account gets `password` and the token is spent. Returns the account name."""
        problem = password_problem(password)
        if problem:
            raise AccountError(f"the password needs {problem}")
        hashed = hash_password(password)
        with self._write() as conn:
            row = conn.execute("SELECT name, setup_expires FROM console_users WHERE setup_hash = ? "
                               "AND disabled IS NULL", (_digest(token or ""),)).fetchone()
            if row is None or row[1] < utc_now():
                raise AccountError("this setup link is unknown, used or expired; ask an admin for a new one")
            conn.execute("UPDATE console_users SET password = ?, setup_hash = NULL, setup_expires = NULL "
                         "WHERE name = ?", (hashed, row[0]))
            conn.execute("DELETE FROM console_logins WHERE name = ?", (row[0],))
            self._audit(conn, row[0], "password-set", detail=row[0])
        return row[0]

    # --- logging in and out

    def login(self, name: str, password: str) -> tuple[str, Session]:
        """(session cookie, session) for a right password; LoginRefused otherwise, slowed down after
        FREE_FAILURES wrong ones in a row for that name."""
        name = (name or "").strip().lower()[:64]
        now = utc_now()
        conn = self.node.conn
        failures = conn.execute("SELECT failures, last_failure FROM console_logins WHERE name = ?",
                                (name,)).fetchone()
        if failures and parse_time(failures[1]) + FAILURES_FORGOTTEN < parse_time(now):
            failures = None
        if failures and failures[0] >= FREE_FAILURES:
            wait = min(FIRST_WAIT * 2 ** (failures[0] - FREE_FAILURES), LONGEST_WAIT)
            left = int((parse_time(failures[1]) + timedelta(seconds=wait) - parse_time(now)).total_seconds())
            if left > 0:
                raise LoginRefused(f"too many wrong passwords for this account: try again in {left} seconds",
                                   retry_after=left)
        row = conn.execute("SELECT role, password FROM console_users WHERE name = ? AND disabled IS NULL",
                           (name,)).fetchone()
        if not check_password(password[:MAX_PASSWORD], row[1] if row else None) or row is None:
            with self._write() as conn:
                count = (failures[0] if failures else 0) + 1
                conn.execute("INSERT INTO console_logins (name, failures, last_failure) VALUES (?, ?, ?) "
                             "ON CONFLICT(name) DO UPDATE SET failures = excluded.failures, "
                             "last_failure = excluded.last_failure", (name, count, now))
            raise LoginRefused("wrong account name or password")
        cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._write() as conn:
            conn.execute("DELETE FROM console_logins WHERE name = ?", (name,))
            conn.execute("DELETE FROM console_sessions WHERE expires < ?", (now,))
            conn.execute("INSERT INTO console_sessions (hash, user, csrf, created, seen, expires) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (_digest(cookie), name, csrf, now, now,
                                                       _later(now, SESSION_MAX)))
            self._audit(conn, name, "logged-in")
        return cookie, Session(name, row[0], csrf, _digest(cookie))

    def session(self, cookie: str | None) -> Session | None:
        """The live session a cookie stands for, or None (unknown, expired, idle too long, account disabled)."""
        if not cookie or len(cookie) > 100:
            return None
        key = _digest(cookie)
        row = self.node.conn.execute(
            "SELECT s.user, u.role, s.csrf, s.seen, s.expires FROM console_sessions s "
            "JOIN console_users u ON u.name = s.user AND u.disabled IS NULL WHERE s.hash = ?", (key,)).fetchone()
        if row is None:
            return None
        now = utc_now()
        user, role, csrf, seen, expires = row
        if expires < now or parse_time(seen) + SESSION_IDLE < parse_time(now):
            self.logout(cookie)
            return None
        if parse_time(seen) + SEEN_EVERY < parse_time(now):
            with self._write() as conn:
                conn.execute("UPDATE console_sessions SET seen = ? WHERE hash = ?", (now, key))
        return Session(user, role, csrf, key)

    def logout(self, cookie: str | None) -> None:
        if cookie:
            with self._write() as conn:
                conn.execute("DELETE FROM console_sessions WHERE hash = ?", (_digest(cookie),))

    # --- pending uploads (preview, then confirm)

    def keep_upload(self, user: str, filename: str, data: bytes) -> str:
        upload_id = secrets.token_urlsafe(16)
        now = utc_now()
        with self._write() as conn:
            conn.execute("DELETE FROM console_uploads WHERE created < ?",
                         (format_time(parse_time(now) - UPLOAD_KEPT),))
            conn.execute("INSERT INTO console_uploads (id, user, created, filename, data) VALUES (?, ?, ?, ?, ?)",
                         (upload_id, user, now, filename, data))
        return upload_id

    def upload(self, upload_id: str, user: str) -> tuple[str, bytes] | None:
        row = self.node.conn.execute("SELECT filename, data, created FROM console_uploads WHERE id = ? AND user = ?",
                                     (upload_id, user)).fetchone()
        if row is None or parse_time(row[2]) + UPLOAD_KEPT < parse_time(utc_now()):
            return None
        return row[0], row[1]

    def drop_upload(self, upload_id: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM console_uploads WHERE id = ?", (upload_id,))

    # --- the audit trail

    def _audit(self, conn, user: str, action: str, record_id: str | None = None, version: int | None = None,
               detail: str = "") -> None:
        conn.execute("INSERT INTO console_audit (time, user, action, record_id, version, detail) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (utc_now(), user, action, record_id, version, detail))

    def audit(self, user: str, action: str, record_id: str | None = None, version: int | None = None,
              detail: str = "") -> None:
        with self._write() as conn:
            self._audit(conn, user, action, record_id, version, detail)

    def audit_many(self, user: str, entries: list[tuple[str, str, int | None]], detail: str = "") -> None:
        """One entry per (action, record id, version), in one transaction (a spreadsheet upload)."""
        with self._write() as conn:
            for action, record_id, version in entries:
                self._audit(conn, user, action, record_id, version, detail)

    def audit_entries(self, *, limit: int = 200, offset: int = 0, record_id: str | None = None) -> list[dict]:
        where, args = ("WHERE record_id = ?", [record_id]) if record_id else ("", [])
        rows = self.node.conn.execute(
            f"SELECT time, user, action, record_id, version, detail FROM console_audit {where} "
            "ORDER BY id DESC LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()
        return [{"time": t, "user": u, "action": a, "record": r, "version": v, "detail": d}
                for t, u, a, r, v, d in rows]
