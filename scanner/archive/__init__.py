"""Containers opened by content (magic bytes, a mail's headers, a dump's offsets), never extracted to disk.

:mod:`~scanner.archive.sniff` recognises them, :mod:`~scanner.archive.limits` bounds what
hostile ones may cost, :mod:`~scanner.archive.streams` decompresses,
:mod:`~scanner.archive.members` lists what is inside an archive (and hands mail to
:mod:`~scanner.archive.mail`, PDF to :mod:`~scanner.archive.pdf`, hex dumps to
:mod:`~scanner.archive.hexdump`), and :mod:`~scanner.archive.expander` scans each member like
any input and opens it in turn, to a bounded depth. Only the first two are imported on every
run (they are small); the rest when a container turns up.
"""
