"""An account owner's address: one plain ``local@domain``, checked strictly. Pure.

The address goes into the ``To:`` header and the SMTP envelope of every leak notice, so anything
a mail parser could read as more than one mailbox, a display name, a comment or a header line
is refused: ``a@b.c,x@evil.example`` would notify a stranger of the leak. The rules are
deliberately narrower than RFC 5322, which also allows quoted local parts, comments and
IP-literal domains that no owner address needs:

- the local part is a dot-atom of RFC 5322 ``atext`` (letters, digits and ``!#$%&'*+/=?^_`{|}~-``),
  at most 64 characters, no leading, trailing or doubled dot;
- the domain is at least two dot-separated labels of letters, digits and inner hyphens (LDH,
  RFC 1035), each at most 63 characters, 253 in all, the last not all digits; an
  internationalised domain is accepted in its ``xn--`` (punycode) form;
- ASCII only (no SMTPUTF8), 254 characters at most (RFC 5321's path limit less the brackets).

A hand-written check rather than the email-validator package: these few rules are the whole
policy, and no dependency is needed to hold them. Whether the domain accepts mail is not checked.
"""

from __future__ import annotations

import re

MAX_LENGTH = 254
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def owner_address(text: str) -> str:
    """``text`` if it is one plain address (see the module docstring); else ValueError saying why."""
    if not text.isascii() or not text.isprintable() or any(ch.isspace() for ch in text):
        raise ValueError(f"not an email address (ASCII, no spaces or control characters): {text!r}")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"email address longer than {MAX_LENGTH} characters")
    local, at, domain = text.rpartition("@")
    if not at or not _LOCAL.fullmatch(local) or len(local) > 64:
        raise ValueError(f"not one plain address (local@domain, no name, comma or quotes): {text!r}")
    labels = domain.split(".")
    if (
        len(labels) < 2
        or len(domain) > 253
        or not all(_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValueError(f"not a mail domain: {domain!r}")
    return text
