"""What authentication knows about keys, in this process: a bounded map from key hash to record.

No I/O here: :class:`~partner_endpoint.api.key_directory.KeyDirectory` fills it from the database
and drops what the key change log says changed. Reads take no lock (one ``dict.get``); writes take
one, so hooks may be called from any thread.

The generation makes filling safe against a change that lands while a record is being read from
the database: a fill that started before a drop is not stored (the next request reads again).
"""

from __future__ import annotations

import threading

from partner_endpoint.store.api_keys import AuthRecord


class KeyCache:
    def __init__(self, max_keys: int, max_unknown: int) -> None:
        self._max_keys = max_keys
        self._max_unknown = max_unknown
        self._keys: dict[str, AuthRecord] = {}
        self._unknown: dict[str, None] = {}  # insertion-ordered: the oldest is dropped first
        self._hash_of_key: dict[int, str] = {}
        self._hashes_of_account: dict[int, set[str]] = {}
        self._lock = threading.Lock()
        self.generation = 0
        """Moves on every drop; a fill passes the generation it started in."""

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key_hash: str) -> AuthRecord | None:
        return self._keys.get(key_hash)

    def is_unknown(self, key_hash: str) -> bool:
        """Whether the database said, recently enough to be remembered, that no key has this hash."""
        return key_hash in self._unknown

    def put(self, key_hash: str, record: AuthRecord, generation: int) -> bool:
        """Store ``record`` unless something was dropped since ``generation`` was read."""
        with self._lock:
            if generation != self.generation or self._max_keys <= 0:
                return False
            if key_hash not in self._keys and len(self._keys) >= self._max_keys:
                self._forget(next(iter(self._keys)))
            self._keys[key_hash] = record
            self._hash_of_key[record.key_id] = key_hash
            self._hashes_of_account.setdefault(record.account_id, set()).add(key_hash)
            return True

    def put_unknown(self, key_hash: str) -> None:
        with self._lock:
            if len(self._unknown) >= self._max_unknown:
                del self._unknown[next(iter(self._unknown))]
            self._unknown[key_hash] = None

    def drop_key(self, key_id: int) -> None:
        with self._lock:
            self.generation += 1
            if (key_hash := self._hash_of_key.get(key_id)) is not None:
                self._forget(key_hash)

    def drop_account(self, account_id: int) -> None:
        with self._lock:
            self.generation += 1
            for key_hash in list(self._hashes_of_account.get(account_id, ())):
                self._forget(key_hash)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._keys.clear()
            self._hash_of_key.clear()
            self._hashes_of_account.clear()

    def _forget(self, key_hash: str) -> None:
        record = self._keys.pop(key_hash)
        self._hash_of_key.pop(record.key_id, None)
        hashes = self._hashes_of_account.get(record.account_id)
        if hashes is not None:
            hashes.discard(key_hash)
            if not hashes:
                del self._hashes_of_account[record.account_id]
