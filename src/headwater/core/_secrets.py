"""The secret registry: values that must never reach a log line, an error, a report or a bundle.

It lives in core because every layer meets secrets (config reads them from the environment,
stores and sources connect with them, logging masks them) and all must mask the same set.
"""

from __future__ import annotations

import re

#: Keys whose values are secrets wherever they appear (a log event, a settings dict).
SECRET_KEYS = re.compile(r"pass(word|wd)?|secret|token|api[_-]?key|authorization|credential",
                         re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]+):(?P<pw>[^@/\s]+)@")
_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that it is masked wherever it would be logged or printed
    (values shorter than 4 characters are not masked: they would mask ordinary text)."""
    if value and len(value) >= 4:
        _known_secrets.add(value)


def redact(text: str) -> str:
    """Mask registered secrets and passwords inside URLs.

    >>> redact("postgresql://app:s3cret@db:5432/x")
    'postgresql://app:***@db:5432/x'
    >>> register_secret("hunter22")
    >>> redact("token hunter22 rejected")
    'token *** rejected'
    """
    text = _URL_PASSWORD.sub(r"\g<scheme>:***@", text)
    for secret in _known_secrets:
        text = text.replace(secret, "***")
    return text
