"""The ``sarif`` format: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

Follows GitHub's SARIF guidance: one run, one rule per token type, results
located by a ``%SRCROOT%``-relative, percent-encoded URI, and our own
``partialFingerprints`` so alerts survive edits that move the secret to another
line. The fingerprint hashes the secret's identity, the file and the
occurrence number of that secret in that file: stable across line moves,
distinct for distinct secrets and for repeated copies of one secret.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import rules
from scanner import version
from scanner.findings import Finding
from scanner.report.base import ReportOptions, label, repository_path, where_inside
from scanner.stats import ScanStats

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://github.com/soundpiece/secret-defence"
"""This project's repository, as the README's pre-commit snippet and the examples name it."""
FINGERPRINT_KEY = "soundpieceSecret/v1"
SRCROOT = "%SRCROOT%"


def _help(fmt: rules.TokenFormat) -> str:
    return (
        f"A checksum-valid {fmt.description} ({fmt.prefix}...) is present in the scanned content. "
        "Treat it as leaked: revoke it and issue a new one in the Soundpiece dashboard, update the "
        "services that use it, and check the account's logs for use you do not recognise. Deleting "
        "the line is not enough, because the secret stays in version control history. Keep the new "
        "credential in a secret manager or CI secret, never in source."
    )


def rule(fmt: rules.TokenFormat) -> dict[str, Any]:
    """The ``reportingDescriptor`` of one token type."""
    return {
        "id": fmt.name,
        "name": "".join(word.capitalize() for word in fmt.name.split("_")),
        "shortDescription": {"text": f"Leaked {fmt.description}"},
        "fullDescription": {
            "text": f"A {fmt.description} ({fmt.prefix}...) with a valid checksum was found in the code."
        },
        "help": {"text": _help(fmt), "markdown": _help(fmt)},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["security", "secret"], "precision": "very-high", "security-severity": "9.0"},
    }


def artifact_uri(path: bytes) -> str:
    """A relative POSIX path as a URI reference: every byte outside the unreserved set is %-encoded."""
    return quote(path, safe="/")


def fingerprint(secret_sha256: str, uri: str, occurrence: int, inner: str | None = None) -> str:
    """Stable across line moves; a member's path inside its archive counts as part of the file."""
    where = uri if inner is None else f"{uri}!{inner}"
    return hashlib.sha256(f"{secret_sha256}\0{where}\0{occurrence}".encode()).hexdigest()


def _location(uri: str, finding: Finding) -> dict[str, Any]:
    artifact: dict[str, Any] = {"uri": uri}
    if finding.location.stdin:  # no file anywhere: not resolved against the scan root
        artifact["description"] = {"text": "standard input"}
    elif not uri.startswith("file:"):  # relative: resolved against the scan root
        artifact["uriBaseId"] = SRCROOT
    match = finding.match
    if finding.location.inner:  # the archive is the file (from line 1): a member's lines are not its own
        return {"physicalLocation": {"artifactLocation": artifact, "region": {"startLine": 1}}}
    region = {
        "startLine": match.line,
        "startColumn": match.column,
        "endColumn": match.column + match.span,
    }
    return {"physicalLocation": {"artifactLocation": artifact, "region": region}}


def result(finding: Finding, rule_index: int, occurrence: int, options: ReportOptions) -> dict[str, Any]:
    """The SARIF ``result`` of one finding; ``occurrence`` counts earlier copies in the same file."""
    path = repository_path(finding.location, options.scan_root)
    uri = artifact_uri(path) if not os.path.isabs(path) else Path(os.fsdecode(path)).as_uri()
    loc = finding.location
    properties: dict[str, Any] = {"secretSha256": finding.secret_sha256}
    if loc.commit is not None:
        properties.update(commit=loc.commit, authorName=loc.author_name, date=loc.date)
    if loc.blob is not None:
        properties["blob"] = loc.blob
    if loc.inner:
        properties.update(
            innerPath=loc.inner_path, innerLine=finding.match.line, innerColumn=finding.match.column
        )
    if finding.match.encoding is not None:
        properties["encoding"] = finding.match.encoding
    digest = fingerprint(finding.secret_sha256, uri, occurrence, loc.inner_path)
    properties = {key: value for key, value in properties.items() if value is not None}
    if finding.live is not None:  # null says "asked, could not tell"
        properties["live"] = finding.live.value
    return {
        "ruleId": finding.type,
        "ruleIndex": rule_index,
        "level": "error",
        "message": {"text": label(finding, options) + where_inside(finding)},
        "locations": [_location(uri, finding)],
        "partialFingerprints": {FINGERPRINT_KEY: digest},
        "properties": properties,
    }


def document(findings: list[Finding], stats: ScanStats, options: ReportOptions) -> dict[str, Any]:
    """The whole SARIF log, as a ``dict`` ready for :func:`json.dump`."""
    index = {fmt.name: i for i, fmt in enumerate(rules.FORMATS)}
    seen: dict[tuple[str, bytes, tuple[bytes, ...]], int] = {}
    results = []
    for finding in findings:
        key = (finding.secret_sha256, finding.location.path, finding.location.inner)
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        results.append(result(finding, index[finding.type], occurrence, options))
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "soundpiece-scan",
                "version": version(),
                "informationUri": INFORMATION_URI,
                "rules": [rule(fmt) for fmt in rules.FORMATS],
            }
        },
        "columnKind": "unicodeCodePoints",
        "results": results,
        "properties": {"stats": stats.to_dict()},
    }
    if options.scan_root is not None:
        root = Path(os.path.abspath(options.scan_root)).as_uri().rstrip("/") + "/"
        run["originalUriBaseIds"] = {SRCROOT: {"uri": root}}
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def write(findings: list[Finding], stats: ScanStats, out: TextIO, options: ReportOptions) -> None:
    json.dump(document(findings, stats, options), out, indent=2)
    out.write("\n")
