"""Secret settings at rest: sealed with Fernet (``cryptography``), keyed by
``TAILOR_SECRET_KEY``.

``TAILOR_SECRET_KEY`` holds one Fernet key, or several separated by commas for
rotation: the first seals new values, every one of them opens stored ones
(:class:`cryptography.fernet.MultiFernet`). Make a key with::

    python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"

A sealed value is stored in the override's JSON column as ``{"$sealed": token}``;
only settings whose definition is ``secret`` are ever sealed or opened.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.model.errors import InvalidInputError

ENV_VAR = "TAILOR_SECRET_KEY"
SEALED = "$sealed"
#: what answers, the audit log and every report show instead of a secret's value
SECRET_MARK = "<secret>"
MAKE_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


class SecretKeyError(InvalidInputError):
    """No key (or a wrong one) to seal or open secret settings."""

    def __init__(self, message: str) -> None:
        super().__init__(ENV_VAR, message)


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(SEALED), str)


@dataclass(frozen=True)
class SecretBox:
    """Seals and opens secret values; without keys it can do neither (and says so)."""

    keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for index, key in enumerate(self.keys):
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise InvalidInputError(
                    ENV_VAR,
                    f"key #{index + 1} is not a Fernet key (32 url-safe base64-encoded "
                    f"bytes); make one with: {MAKE_KEY}",
                ) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SecretBox:
        raw = (os.environ if environ is None else environ).get(ENV_VAR, "")
        return cls(tuple(k.strip() for k in raw.split(",") if k.strip()))

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def _fernet(self) -> MultiFernet:
        if not self.keys:
            raise SecretKeyError(
                f"secret settings are encrypted at rest and the server has no {ENV_VAR}; "
                "the operator sets it (see the README, 'Secret settings')"
            )
        return MultiFernet([Fernet(k) for k in self.keys])

    def require(self) -> None:
        """Refuse (:class:`SecretKeyError`) unless a key is set."""
        self._fernet()

    def seal(self, value: Any) -> dict[str, str]:
        token = self._fernet().encrypt(orjson.dumps(value))
        return {SEALED: token.decode("ascii")}

    def open(self, stored: Any) -> Any:
        """The plaintext of a sealed value; a value stored before encryption
        (plaintext) is returned as it is."""
        if not is_sealed(stored):
            return stored
        try:
            return orjson.loads(self._fernet().decrypt(stored[SEALED].encode("ascii")))
        except InvalidToken:
            raise SecretKeyError(
                f"a stored secret cannot be opened with the keys in {ENV_VAR}; keep the "
                "old key in the list (new,old) until 'tailor secrets rotate' has run"
            ) from None

    def reseal(self, stored: Any) -> dict[str, str]:
        """``stored`` sealed with the first key (plaintext values get sealed)."""
        if not is_sealed(stored):
            return self.seal(stored)
        try:
            token = self._fernet().rotate(stored[SEALED].encode("ascii"))
        except InvalidToken:
            raise SecretKeyError(
                f"a stored secret cannot be opened with the keys in {ENV_VAR}; list the "
                "new key first and the old one after it (new,old), then rotate"
            ) from None
        return {SEALED: token.decode("ascii")}
