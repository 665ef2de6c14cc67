"""API keys: minted (shown once, kept as hashes), listed, rotated, revoked, deleted.

The one place a key pair is made: the dashboard's create and rotate and ``keys create`` call
:meth:`KeyService.create`. Every revocation and deletion goes through :meth:`KeyService.revoke` or
:meth:`KeyService.delete`, which log the change in its own transaction (every serving process
follows within a second) and call ``key_changed`` after the commit (this process follows at once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

import rules
from partner_endpoint.clock import Clock
from partner_endpoint.domain.labels import clean_label
from partner_endpoint.domain.paging import Pager, pager
from partner_endpoint.services.traffic import AfterReport, KeyTraffic, key_traffic, use_after_report
from partner_endpoint.store import accounts, activity, api_keys, leaks
from partner_endpoint.store.activity import COMMAND_LINE, Actor
from partner_endpoint.store.api_keys import KeyOrder, KeyRecord, StatusFilter, StoredKey
from partner_endpoint.store.db import NotFound, read_transaction, write_transaction
from partner_endpoint.store.secretbox import SecretBox


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key pair as it is shown exactly once, with the key's record."""

    key: KeyRecord
    api_key: str
    signing_secret: str
    replaced: KeyRecord | None = None
    """The key this one rotates, if it still exists."""

    def __repr__(self) -> str:
        return f"NewKey(key_id={self.key.key_id}, label={self.key.label!r}, <secrets redacted>)"


@dataclass(frozen=True, slots=True)
class KeyListing:
    """One page of an account's keys, as the keys page shows it."""

    keys: list[KeyRecord]
    sightings: dict[int, int]
    """Leak reports per key on the page."""
    pager: Pager
    leaked: api_keys.KeyPage
    """The account's keys reported leaked (the banner: the first few, and how many)."""
    has_keys: bool
    """Whether the account has any key (an empty page then says "no keys match", not "no keys yet")."""


@dataclass(frozen=True, slots=True)
class KeyPage:
    """All a key's page shows, as of one moment."""

    key: KeyRecord
    sightings: list[leaks.SightingRecord]
    replaced_by: list[KeyRecord]
    replaces: KeyRecord | None
    traffic: KeyTraffic
    replaces_traffic: KeyTraffic | None
    """The traffic of the key this one replaces: the rotation's "no more traffic" step."""
    after: AfterReport | None
    """Use since the first leak report, if the key was reported."""


def _first_report(conn: Connection, key_id: int, sightings: list[leaks.SightingRecord]) -> datetime:
    """When the key was first reported: the earliest of its sightings read, if they are all there."""
    if len(sightings) < leaks.SIGHTINGS_READ:
        return min(s.first_seen for s in sightings)
    return leaks.first_reports(conn, [key_id])[key_id].first_seen


def _nothing(_key_id: int) -> None:
    return None


class KeyService:
    def __init__(
        self,
        engine: Engine,
        box: SecretBox | None,
        clock: Clock,
        key_changed: Callable[[int], None] = _nothing,
    ) -> None:
        """``box`` encrypts new signing secrets; without it (revoking from the command line, which
        must work even when the encryption key is in doubt) nothing can be created."""
        self._engine = engine
        self._box = box
        self._clock = clock
        self._key_changed = key_changed

    # --- making ---------------------------------------------------------------------------------

    def create(
        self,
        account_id: int,
        label: str,
        *,
        replacing: KeyRecord | None = None,
        form: str | None = None,
        actor: Actor = COMMAND_LINE,
    ) -> NewKey | int:
        """Mint a pair; the label must pass :func:`domain.labels.clean_label` (LabelError otherwise).

        ``form`` names the form that asked: a form sent again (a reload, a double click, two
        at once) mints nothing and answers the id of the key it created the first time.
        """
        if self._box is None:
            raise RuntimeError("creating keys needs the encryption key")
        label = clean_label(label)
        pair = rules.mint_pair()
        stored = StoredKey(
            key_hash=rules.identity(pair.api_key),
            key_suffix=pair.api_key[-4:],
            secret_hash=rules.identity(pair.signing_secret),
            secret_encrypted=self._box.encrypt(pair.signing_secret),
        )
        try:
            with write_transaction(self._engine) as conn:
                if form is not None and (earlier := api_keys.created_by(conn, form)) is not None:
                    return earlier
                accounts.get(conn, account_id)  # NotFound
                key_id = api_keys.create(
                    conn,
                    account_id,
                    label,
                    stored,
                    self._clock.now(),
                    rotated_from=None if replacing is None else replacing.key_id,
                    request=form,
                )
                key = api_keys.visible(conn, key_id)
                replaced = None if replacing is None else api_keys.visible(conn, replacing.key_id)
                kind = "key_created" if replacing is None else "key_rotated"
                details = {"label": label} | ({} if replacing is None else {"replaces": replacing.key_id})
                activity.record(
                    conn, account_id, kind, self._clock.now(), actor, key_id=key_id, details=details
                )
        except IntegrityError:  # the same form, sent twice at once: the other request created the key
            if form is None:
                raise
            with read_transaction(self._engine) as conn:
                earlier = api_keys.created_by(conn, form)
            if earlier is None:
                raise
            return earlier
        assert key is not None
        return NewKey(key, pair.api_key, pair.signing_secret, replaced)

    # --- ending ---------------------------------------------------------------------------------

    def revoke(self, key_id: int, actor: Actor = COMMAND_LINE) -> bool:
        """Revoke a key and its signing secret; False if it was already revoked. NotFound if none."""
        with write_transaction(self._engine) as conn:
            changed = api_keys.revoke(conn, key_id, self._clock.now())
            if changed:
                self._record(conn, key_id, "key_revoked", actor)
        self._key_changed(key_id)
        return changed

    def delete(self, key_id: int, actor: Actor = COMMAND_LINE) -> bool:
        """Revoke the key and hide it from its owner (its leak reports stay). NotFound for a key that
        does not exist or was deleted already."""
        with write_transaction(self._engine) as conn:
            if api_keys.visible(conn, key_id) is None:
                raise NotFound(f"no key {key_id}")
            changed = api_keys.delete(conn, key_id, self._clock.now())
            self._record(conn, key_id, "key_deleted", actor)
        self._key_changed(key_id)
        return changed

    def _record(self, conn: Connection, key_id: int, kind: str, actor: Actor) -> None:
        account_id = api_keys.account_of(conn, key_id)
        activity.record(conn, account_id, kind, self._clock.now(), actor, key_id=key_id)

    # --- reading --------------------------------------------------------------------------------

    def owned(self, key_id: int, email: str) -> KeyRecord | None:
        """The key, if it is not deleted and an account of ``email`` holds it (else None: a 404)."""
        if not key_id:
            return None
        with read_transaction(self._engine) as conn:
            return api_keys.owned(conn, key_id, email)

    def record(self, key_id: int) -> KeyRecord | None:
        """A key that is not deleted, whoever holds it (the operators' view)."""
        with read_transaction(self._engine) as conn:
            return api_keys.visible(conn, key_id)

    def of_account(self, account_id: int) -> list[KeyRecord]:
        """An account's keys, oldest first (NotFound if there is no such account)."""
        with read_transaction(self._engine) as conn:
            accounts.get(conn, account_id)
            return api_keys.of_account(conn, account_id)

    def listing(
        self,
        account_id: int,
        *,
        text: str = "",
        status: StatusFilter = "all",
        order: KeyOrder = "newest",
        page: int = 1,
        size: int = 50,
    ) -> KeyListing:
        """A page of the account's keys; past the last page, the last one."""
        with read_transaction(self._engine) as conn:

            def at(number: int) -> api_keys.KeyPage:
                offset = (number - 1) * size
                return api_keys.page(
                    conn, account_id, text=text, status=status, order=order, offset=offset, limit=size
                )

            found = at(page)
            shown = pager(found.total, page, size)
            if shown.page != page:
                found = at(shown.page)
            counts = leaks.sighting_counts(conn, [k.key_id for k in found.keys])
            leaked = api_keys.leaked(conn, account_id)
            # "No keys yet" or "no keys match": only an empty filtered list needs the unfiltered count.
            narrowed = bool(text) or status != "all"
            has_keys = found.total > 0 or (narrowed and api_keys.page(conn, account_id, limit=0).total > 0)
        return KeyListing(found.keys, counts, shown, leaked, has_keys)

    def page(self, key_id: int, email: str) -> KeyPage | None:
        """What the key's page shows, read in one transaction (each one costs a round trip or more on
        PostgreSQL); None, as :meth:`owned`, if ``email`` holds no such key."""
        if not key_id:
            return None
        now = self._clock.now()
        with read_transaction(self._engine) as conn:
            key = api_keys.owned(conn, key_id, email)
            if key is None:
                return None
            sightings = leaks.sightings_of(conn, key.key_id)
            replaced_by = api_keys.replacements(conn, key.key_id)
            replaces = None if key.rotated_from is None else api_keys.visible(conn, key.rotated_from)
            after = None
            if sightings:
                after = use_after_report(conn, key.key_id, _first_report(conn, key.key_id, sightings))
            return KeyPage(
                key,
                sightings,
                replaced_by,
                replaces,
                key_traffic(conn, key.key_id, now),
                None if replaces is None else key_traffic(conn, replaces.key_id, now),
                after,
            )

    def replacements(self, key: KeyRecord) -> list[KeyRecord]:
        with read_transaction(self._engine) as conn:
            return api_keys.replacements(conn, key.key_id)
