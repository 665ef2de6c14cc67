"""Benchmark 1: directory scan of a copy of the Python library tree with planted credentials.

Builds (once, idempotently) a corpus outside the repository, plants valid Soundpiece
credentials and look-alike decoys with a fixed seed, then runs ripgrep, kingfisher (two custom
checksum rules) and ``soundpiece-scan`` interleaved with a warm page cache, and reports wall
time, peak memory, findings and correctness against the manifest. See bench/README.md.

    .venv/bin/python bench/scan_dir.py [--runs 5] [--corpus /tmp/soundpiece-bench/corpus]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import sys
import sysconfig
from collections import Counter
from pathlib import Path

import common

import rules

CORPUS_VERSION = 3
CARRIERS = {
    "zip": "archives",
    "jar_in_tgz": "archives",
    "tgz": "archives",
    "tar_bz2": "archives",
    "json_gz": "archives",
    "xz": "archives",
    "k8s_secret": "base64",
    "docker_auth": "base64",
    "env_b64_wrapped": "base64",
    "b64_in_b64": "base64",
    "utf16_reg": "utf16",
    "utf16be_txt": "utf16",
    "utf32_txt": "utf16",
    "hex_log": "hex",
    "hex_dump": "hex",
    "c_array": "hex",
    "eml_qp": "mail",
    "eml_zip": "mail",
    "mbox_qp": "mail",
    "pdf_flate": "pdf",
    "pdf_embedded": "pdf",
}
"""Credentials planted where only decoding or opening a carrier finds them, one each, and the
carrier (as the configuration names it) that holds each."""
DEFAULT_SEED = 20261126
MIB = 1 << 20
RG_PATTERN = r"(spk|whsec)_[0-9A-Za-z]{38}"
CANDIDATE = re.compile(rb"(?:spk|whsec)_[0-9A-Za-z]{38}")
TEXT_SUFFIXES = {".py", ".pyi", ".rst", ".txt", ".toml", ".cfg", ".c", ".h", ".css", ".xml", ".csv", ".f90"}
BINARY_SUFFIXES = {".so", ".mat", ".sav", ".wav", ".png", ".dat", ".npy", ".pyd", ".exe", ".ico"}

# How many valid credentials each placement gets (sums to the default N=200; scaled for other N).
PLACEMENTS = {
    "glued": 60,  # spliced into running text, no whitespace either side: KEY=<tok>; (<tok>)
    "glued_alnum": 10,  # base62 characters on both sides: zz<tok>zz (prefix anchors the match)
    "url": 15,  # https://user:<tok>@host, ?api_key=<tok>&
    "json": 20,  # a JSON string in an existing .json file
    "eof": 15,  # last bytes of a file, no trailing newline
    "crlf": 20,  # a CRLF-terminated line
    "binary": 20,  # between NUL bytes inside an existing binary file
    "minified": 20,  # inside the created 3 MB single-line file
    "boundary": 20,  # in the created 20 MB file, across / at 1 MiB boundaries
}
DECOYS = {
    "bad_checksum": 150,  # a valid token with one character changed
    "truncated": 100,  # a valid token with 1-6 characters cut off
    "placeholder": 50,  # spk_<your-key> and friends
    "stripe_whsec": 50,  # whsec_ + 32 base62 (Stripe style, no checksum)
    "svix_whsec": 50,  # whsec_ + base64 (Svix style)
}


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


mint = common.mint


def _snap(data: bytes, pos: int) -> int:
    """Move ``pos`` forward to a place between two ASCII bytes (never inside a UTF-8 sequence)."""
    while 0 < pos < len(data) and (data[pos] >= 0x80 or data[pos - 1] >= 0x80):
        pos += 1
    return min(pos, len(data) - 1) if data else 0


def _line_start(data: bytes, pos: int) -> int:
    nl = data.find(b"\n", pos)
    return nl + 1 if nl != -1 and nl + 1 < len(data) else 0


def _make_decoy(kind: str, rng: random.Random) -> bytes:
    fmt = rng.choice(rules.FORMATS)
    if kind == "bad_checksum":
        token = bytearray(mint(fmt, rng))
        while True:
            i = rng.randrange(len(fmt.prefix), len(token))
            new = rng.choice(rules.BASE62)
            if new != token[i]:
                token[i] = new
                break
        assert rules.recognise(bytes(token)) is None
        return bytes(token)
    if kind == "truncated":
        return mint(fmt, rng)[: -rng.randint(1, 6)]
    if kind == "placeholder":
        return rng.choice(
            [
                b"spk_<your-key>",
                b"whsec_<your-signing-secret>",
                b"spk_xxxxxxxxxxxxxxxx",
                b"spk_...",
                b"whsec_...",
            ]
        )
    if kind == "stripe_whsec":
        return b"whsec_" + bytes(rng.choice(rules.BASE62) for _ in range(32))
    if kind == "svix_whsec":
        import base64

        return b"whsec_" + base64.b64encode(rng.randbytes(rng.choice([24, 32])))
    raise ValueError(kind)


def _minified(rng: random.Random, size: int) -> bytearray:
    words = [b"function", b"return", b"var", b"this", b"null", b"void 0", b"length", b"push", b"apply"]
    out = bytearray()
    while len(out) < size:
        name = b"_" + bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 3)))
        out += b"%s=%s(%s,%d);" % (name, rng.choice(words), name, rng.randrange(100000))
        out += b'e.%s="%s";' % (name, bytes(rng.choice(rules.BASE62) for _ in range(rng.randint(4, 30))))
    return out[:size]


def _log_lines(rng: random.Random, size: int) -> bytearray:
    out = bytearray()
    n = 0
    while len(out) < size:
        n += 1
        out += (
            b"2026-11-26T12:%02d:%02d INFO worker-%d request id=%08x status=%d bytes=%d path=/v1/items/%d\n"
            % (
                n // 60 % 60,
                n % 60,
                n % 7,
                rng.getrandbits(32),
                rng.choice([200, 200, 204, 404]),
                rng.randrange(10**6),
                rng.randrange(10**5),
            )
        )
    return out[:size]


def build_corpus(corpus: Path, manifest_path: Path, n: int, seed: int) -> dict:
    """Create the corpus and its manifest unless an identical one (same parameters) exists."""
    source = stdlib_dir()
    params = {"version": CORPUS_VERSION, "seed": seed, "n": n, "source": str(source)}
    if manifest_path.exists() and corpus.is_dir():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("params") == params:
            common.log(f"corpus {corpus} up to date (manifest {manifest_path})")
            return manifest
    if corpus.exists():
        if not manifest_path.exists() and any(corpus.iterdir()):
            raise SystemExit(f"{corpus} exists, is not empty and has no manifest: refusing to delete it")
        common.log(f"removing stale corpus {corpus}")
        shutil.rmtree(corpus)
    manifest_path.unlink(missing_ok=True)
    corpus.mkdir(parents=True)
    common.log(f"copying {source} to {corpus}/stdlib (without __pycache__) ...")
    shutil.copytree(source, corpus / "stdlib", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))

    rng = random.Random(seed)
    files = sorted(p for p in (corpus / "stdlib").rglob("*") if p.is_file() and not p.is_symlink())
    text_files = [p for p in files if p.suffix in TEXT_SUFFIXES and p.stat().st_size >= 256]
    json_files = [p for p in files if p.suffix == ".json" and p.stat().st_size >= 64]
    binary_files = [p for p in files if p.suffix in BINARY_SUFFIXES and p.stat().st_size >= 1024]
    common.log(
        f"{len(files)} files; {len(text_files)} text, {len(json_files)} json, {len(binary_files)} binary"
    )

    scale = n / sum(PLACEMENTS.values())
    counts = {kind: max(1, round(c * scale)) for kind, c in PLACEMENTS.items()}
    counts["glued"] += n - sum(counts.values())
    planted: list[dict] = []  # kind, type, token (bytes, dropped before writing), path
    decoys: list[dict] = []
    edits: dict[Path, list[tuple[int, bytes]]] = {}  # path -> (offset in original, bytes to insert)
    contents: dict[Path, bytes] = {}

    def data_of(path: Path) -> bytes:
        if path not in contents:
            contents[path] = path.read_bytes()
        return contents[path]

    def plant(kind: str, token: bytes, path: Path) -> None:
        planted.append({"kind": kind, "token": token, "path": path})

    def token() -> bytes:
        return mint(rng.choice(rules.FORMATS), rng)

    eof_used: set[Path] = set()
    for kind, count in counts.items():
        for _ in range(count if kind not in ("minified", "boundary") else 0):
            tok = token()
            if kind == "json":
                path = rng.choice(json_files)
                data = data_of(path)
                pos = data.find(b"{") + 1
                if pos == 0:  # a JSON array or scalar: prepend an object line instead
                    insert = b'{"soundpiece_api_key": "' + tok + b'"}\n'
                else:
                    insert = b'"soundpiece_api_key": "' + tok + b'", '
            elif kind == "binary":
                path = rng.choice(binary_files)
                data = data_of(path)
                pos = rng.randrange(len(data))
                insert = b"\x00\x00" + tok + b"\x00\xff"
            elif kind == "eof":
                path = rng.choice([p for p in text_files if p not in eof_used])
                eof_used.add(path)
                data = data_of(path)
                pos = len(data)
                insert = b"\nSOUNDPIECE_KEY=" + tok  # file ends here, no newline
            elif kind == "crlf":
                path = rng.choice(text_files)
                data = data_of(path)
                pos = _line_start(data, rng.randrange(len(data)))
                insert = rng.choice(
                    [b"KEY=" + tok + b"\r\n", b'api_key = "' + tok + b'"\r\n\r\n', tok + b"\r\n"]
                )
            else:
                path = rng.choice(text_files)
                data = data_of(path)
                pos = _snap(data, rng.randrange(len(data)))
                if kind == "glued":
                    left, right = rng.choice(
                        [(b"KEY=", b";"), (b"(", b")"), (b"'", b"'"), (b"=", b","), (b"<", b">")]
                    )
                elif kind == "glued_alnum":
                    left, right = b"zz", b"Q9"
                else:  # url
                    left, right = rng.choice(
                        [
                            (b"https://user:", b"@api.example.com/x"),
                            (b"https://h.example/cb?api_key=", b"&v=2"),
                        ]
                    )
                insert = left + tok + right
            edits.setdefault(path, []).append((pos, insert))
            plant(kind, tok, path)

    for kind, count in DECOYS.items():
        for _ in range(count):
            decoy = _make_decoy(kind, rng)
            path = rng.choice(text_files if rng.random() < 0.9 else binary_files)
            data = data_of(path)
            pos = _snap(data, rng.randrange(len(data)))
            left, right = rng.choice([(b' KEY="', b'" '), (b"\nsecret: ", b"\n"), (b"=", b";")])
            edits.setdefault(path, []).append((pos, left + decoy + right))
            decoys.append({"kind": kind, "decoy": decoy.decode("ascii"), "path": path})

    common.log(f"writing {len(edits)} edited files ...")
    for path, items in edits.items():
        data = bytearray(data_of(path))
        for pos, insert in sorted(items, key=lambda item: item[0], reverse=True):
            data[pos:pos] = insert
        path.write_bytes(data)

    generated = corpus / "generated"
    generated.mkdir()
    common.log("creating the 3 MB single-line minified file ...")
    mini = _minified(rng, 3 * 1000 * 1000)
    spots = sorted(rng.sample(range(len(mini)), counts["minified"]), reverse=True)
    mini_path = generated / "bundle.min.js"
    for pos in spots:
        tok = token()
        mini[pos:pos] = b'k:"' + tok + b'",'
        plant("minified", tok, mini_path)
    mini_path.write_bytes(bytes(mini))

    common.log("creating the 20 MB file with tokens at 1 MiB boundaries ...")
    big = _log_lines(rng, 20 * MIB)
    big_path = generated / "server-20MB.log"
    boundaries = rng.sample(range(1, 20), min(counts["boundary"], 19))
    while len(boundaries) < counts["boundary"]:  # more than 19 requested: reuse boundaries
        boundaries.append(rng.randrange(1, 20))
    used: list[tuple[int, int]] = []
    for i, k in enumerate(boundaries):
        tok = token()
        # straddling, starting exactly at, ending exactly at, and one byte either side
        shift = [len(tok) // 2, 0, len(tok), 1, len(tok) - 1, 7][i % 6]
        pos = k * MIB - shift
        if any(a < pos + len(tok) + 2 and pos - 2 < b for a, b in used):
            pos -= 128  # two tokens on the same boundary: keep them apart
        big[pos - 1 : pos + len(tok) + 1] = b"=" + tok + b" "  # overwrite: keeps the boundaries fixed
        used.append((pos, pos + len(tok)))
        plant("boundary", tok, big_path)
    big_path.write_bytes(bytes(big))

    carriers = plant_carriers(corpus / "generated" / "carriers", rng)

    common.log("ground truth: checking every file for valid tokens with rules.recognise ...")
    found: dict[str, list[dict]] = {}
    total_files = total_bytes = 0
    for path in sorted(p for p in corpus.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        total_files += 1
        total_bytes += len(data)
        for prefix in (b"spk_", b"whsec_"):
            start = data.find(prefix)
            while start != -1:
                candidate = data[start : start + len(prefix) + 38]
                if CANDIDATE.fullmatch(candidate) and rules.recognise(candidate):
                    line = data.count(b"\n", 0, start) + 1
                    col = start - (data.rfind(b"\n", 0, start) + 1) + 1
                    found.setdefault(rules.identity(candidate), []).append(
                        {"path": str(path), "offset": start, "line": line, "column": col}
                    )
                start = data.find(prefix, start + 1)

    planted_out = []
    for item in planted:
        digest = rules.identity(item["token"])
        hits = found.pop(digest, [])
        if len(hits) != 1 or hits[0]["path"] != str(item["path"]):
            raise SystemExit(f"planting bug: {item['kind']} token in {item['path']} found at {hits}")
        fmt = rules.recognise(item["token"])
        planted_out.append({"kind": item["kind"], "type": fmt.name, "secret_sha256": digest, **hits[0]})
    if found:
        # valid tokens that were already in the source tree: real findings, keep them in the manifest
        for digest, hits in found.items():
            for hit in hits:
                planted_out.append({"kind": "preexisting", "type": "?", "secret_sha256": digest, **hit})
        common.log(f"note: {len(found)} valid token(s) pre-existed in the source tree")
    manifest = {
        "params": params,
        "corpus": str(corpus),
        "files": total_files,
        "bytes": total_bytes,
        "planted": planted_out,
        "planted_by_kind": dict(Counter(p["kind"] for p in planted_out)),
        "decoys": [
            {
                "kind": d["kind"],
                "path": str(d["path"]),
                "sha256": hashlib.sha256(d["decoy"].encode()).hexdigest(),
            }
            for d in decoys
        ],
        "decoys_by_kind": dict(Counter(d["kind"] for d in decoys)),
        "carriers": carriers,
    }
    common.write_json(manifest_path, manifest)
    common.log(f"corpus ready: {total_files} files, {total_bytes / 1e6:.0f} MB, {len(planted_out)} planted")
    return manifest


def plant_carriers(folder: Path, rng: random.Random) -> list[dict]:
    """One credential in each carrier of :data:`CARRIERS`, none of them visible as raw bytes."""
    import base64
    import gzip
    import lzma

    from tests.support.archives import tar_bytes as tarred
    from tests.support.archives import zip_bytes as zipped

    folder.mkdir(parents=True)
    out = []
    for kind in CARRIERS:
        tok = mint(rng.choice(rules.FORMATS), rng)
        env = b"APP_ENV=production\nSOUNDPIECE_KEY=" + tok + b"\nLOG_LEVEL=info\n"
        name, inner, data = {
            "zip": ("app.zip", "config/.env", zipped({"config/.env": env})),
            "jar_in_tgz": (
                "backup.tgz",
                "srv/app.jar!BOOT-INF/app.env",
                tarred({"srv/app.jar": zipped({"BOOT-INF/app.env": env})}, "w:gz"),
            ),
            "tgz": ("deploy.tgz", "deploy/.env", tarred({"deploy/.env": env}, "w:gz")),
            "tar_bz2": ("etc.tar.bz2", "etc/app.env", tarred({"etc/app.env": env}, "w:bz2")),
            "json_gz": ("cfg.json.gz", "cfg.json", gzip.compress(b'{"api_key": "' + tok + b'"}')),
            "xz": ("dump.sql.xz", "dump.sql", lzma.compress(b"-- k\n" + tok + b"\n" * 64)),
            "k8s_secret": (
                "secret.yaml",
                None,
                b"kind: Secret\ndata:\n  KEY: " + base64.b64encode(tok) + b"\n",
            ),
            "docker_auth": (
                "config.json",
                None,
                b'{"auths": {"r.example": {"auth": "' + base64.b64encode(b"robot:" + tok) + b'"}}}\n',
            ),
            "env_b64_wrapped": ("env.b64", None, base64.encodebytes(b"X" * rng.randrange(80) + env)),
            "b64_in_b64": (
                "twice.txt",
                None,
                b"v=" + base64.b64encode(base64.b64encode(env)) + b"\n",
            ),
            **(_new_carriers(kind, tok, env, zipped) if CARRIERS[kind] in NEW else {}),
        }[kind]
        path = folder / name
        path.write_bytes(data)
        shown = f"{path}!{inner}" if inner else str(path)
        out.append(
            {
                "kind": kind,
                "type": rules.recognise(tok).name,
                "secret_sha256": rules.identity(tok),
                "path": shown,
            }
        )
    return out


NEW = frozenset({"utf16", "hex", "mail", "pdf"})
"""The carriers added by issue 18."""


def _new_carriers(kind: str, tok: bytes, env: bytes, zipped) -> dict[str, tuple[str, str | None, bytes]]:
    """The carrier of ``kind`` holding ``tok``, built with the standard library: (file name, path inside
    it as our findings name it, bytes)."""
    import email.message
    import quopri
    import zlib

    text = env.decode()
    if kind == "utf16_reg":  # regedit's export: UTF-16LE with a BOM, CRLF
        reg = "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\Software\\App]\r\n"
        reg += f'"Key"="{tok.decode()}"\r\n'
        return {kind: ("export.reg", None, reg.encode("utf-16"))}
    if kind == "utf16be_txt":
        return {kind: ("strings-be.txt", None, text.encode("utf-16-be"))}
    if kind == "utf32_txt":
        return {kind: ("strings32.txt", None, text.encode("utf-32"))}
    if kind == "hex_log":
        return {kind: ("debug-hex.log", None, b"DEBUG auth bytes=" + tok.hex().encode() + b"\n")}
    if kind == "hex_dump":
        from tests.support.dumps import xxd

        return {kind: ("packet.xxd", None, xxd(b"\x00" * 11 + env).encode())}
    if kind == "c_array":
        array = ", ".join(f"0x{b:02x}" for b in tok)
        return {kind: ("key.h", None, f"static const unsigned char KEY[] = {{{array}}};\n".encode())}
    if kind in ("eml_qp", "mbox_qp"):
        body = quopri.encodestring(b"x" * 50 + b"Your key: " + tok + b" (keep it safe)\n")
        mail = (
            b"From: ops@example.com\nTo: dev@example.com\nSubject: key\nMIME-Version: 1.0\n"
            b"Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n" + body
        )
        if kind == "eml_qp":
            return {kind: ("key.eml", "part1.txt", mail)}
        box = b"From ops@example.com Mon Dec  7 10:00:00 2026\n" + mail + b"\n"
        return {kind: ("inbox.mbox", "message/1!part1.txt", box)}
    if kind == "eml_zip":
        message = email.message.EmailMessage()
        message["From"], message["To"], message["Subject"] = "ops@example.com", "dev@example.com", "deploy"
        message.set_content("attached")
        message.add_attachment(zipped({"deploy/.env": env}), "application", "zip", filename="deploy.zip")
        return {kind: ("deploy.eml", "attachment/deploy.zip!deploy/.env", message.as_bytes())}
    pieces = f"[({tok[:12].decode()}) -15 ({tok[12:].decode()})] TJ"
    if kind == "pdf_flate":  # kerning splits the token, as typesetting does
        stream, name = zlib.compress(f"BT /F1 10 Tf 72 700 Td {pieces} ET".encode()), "text/4"
    else:  # an attached .env
        stream, name = zlib.compress(env), "stream/4"
    pdf = (
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n4 0 obj\n<< /Length "
        + str(len(stream)).encode()
        + b" /Filter /FlateDecode >>\nstream\n"
        + stream
        + b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )
    return {kind: ("report.pdf" if kind == "pdf_flate" else "attached.pdf", name, pdf)}


# ---------------------------------------------------------------- parsing each tool's output


def rg_findings(stdout: Path) -> list[bytes]:
    return CANDIDATE.findall(stdout.read_bytes())


def kingfisher_findings(stdout: Path) -> list[dict]:
    report = json.loads(stdout.read_text() or "{}")
    out = []
    for item in report.get("findings", []):
        finding = item.get("finding", {})
        snippet = finding.get("snippet", "")
        out.append({"secret_sha256": rules.identity(snippet), "path": finding.get("path"), "raw": item})
    return out


def ours_findings(stdout: Path) -> list[dict]:
    return json.loads(stdout.read_text() or "{}").get("findings", [])


def correctness(reported: list[str], manifest: dict) -> dict:
    planted = {p["secret_sha256"]: p for p in manifest["planted"]}
    carriers = {c["secret_sha256"]: c for c in manifest.get("carriers", [])}
    decoys = {d["sha256"] for d in manifest["decoys"]}
    got = set(reported)
    missed = [planted[s] for s in planted if s not in got]
    return {
        "carriers_found": len(got & set(carriers)),
        "carriers_total": len(carriers),
        "carriers_missed": sorted(carriers[s]["kind"] for s in carriers if s not in got),
        "carriers_found_by_kind": sorted(carriers[s]["kind"] for s in carriers if s in got),
        "findings": len(reported),
        "distinct": len(got),
        "planted_found": len(planted) - len(missed),
        "planted_total": len(planted),
        "missed_by_kind": dict(Counter(m["kind"] for m in missed)),
        "missed": [{k: m[k] for k in ("kind", "path", "line", "secret_sha256")} for m in missed[:20]],
        "decoys_reported": len(got & decoys),
        "unexpected_reported": len(got - set(planted) - set(carriers)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=common.BENCH_ROOT / "corpus")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per tool (plus one warm-up)")
    parser.add_argument("-n", "--planted", type=int, default=200, help="valid credentials to plant")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--startup-runs", type=int, default=30)
    parser.add_argument(
        "--only", action="append", choices=["rg", "kingfisher", "ours", "plain"], help="run only these"
    )
    parser.add_argument("--build-only", action="store_true", help="build the corpus and stop")
    parser.add_argument("--results", type=Path, default=common.BENCH_ROOT / "results-dir.json")
    args = parser.parse_args()

    corpus = args.corpus.resolve()
    if corpus.is_relative_to(common.REPO_ROOT):
        raise SystemExit("the corpus must live outside the repository")
    manifest_path = corpus.parent / (corpus.name + "-manifest.json")
    manifest = build_corpus(corpus, manifest_path, args.planted, args.seed)
    if args.build_only:
        return 0
    out_dir = common.BENCH_ROOT / "out-dir"

    tools: list[common.Tool] = []
    wanted = set(args.only or ["rg", "kingfisher", "ours", "plain"])
    if "rg" in wanted:
        rg = shutil.which("rg")
        tools.append(
            common.Tool(
                "ripgrep", [rg or "rg", "-uuu", "-a", "-o", RG_PATTERN, str(corpus)], stdout_name="rg.txt"
            )
        )
    if "kingfisher" in wanted:
        kf = common.kingfisher_binary()
        cmd = [
            str(kf or "kingfisher"),
            "scan",
            str(corpus),
            *common.kingfisher_rule_flags(),
            "--git-history",
            "none",
        ]  # its defaults otherwise: archives extracted, base64 decoded
        # kingfisher exits 200 when it reports findings (205 when some were validated)
        tools.append(common.Tool("kingfisher", cmd, ok_codes=(0, 200, 205), stdout_name="kingfisher.json"))
    ours = common.soundpiece_scan()
    if "ours" in wanted:
        cmd = [str(ours or "soundpiece-scan"), str(corpus), "--format", "json", "--no-progress"]
        tools.append(common.Tool("soundpiece-scan", cmd, stdout_name="ours.json", cwd=corpus.parent))
    if "plain" in wanted:
        cmd = [str(ours or "soundpiece-scan"), str(corpus), "--plain", "--format", "json", "--no-progress"]
        tools.append(common.Tool("soundpiece-scan --plain", cmd, stdout_name="plain.json", cwd=corpus.parent))

    common.run_interleaved(tools, args.runs, out_dir)

    results: dict = {
        "corpus": str(corpus),
        "files": manifest["files"],
        "bytes": manifest["bytes"],
        "planted": len(manifest["planted"]),
        "decoys": len(manifest["decoys"]),
        "tools": {},
    }

    def check(tool: common.Tool) -> dict:
        if tool.name == "ripgrep":
            matches = rg_findings(tool.last_stdout)
            verdict = correctness([rules.identity(m) for m in matches], manifest)
            verdict["valid_matches"] = sum(1 for m in matches if rules.recognise(m))
            return verdict
        if tool.name == "kingfisher":
            return correctness([f["secret_sha256"] for f in kingfisher_findings(tool.last_stdout)], manifest)
        findings = ours_findings(tool.last_stdout)
        verdict = correctness([f["secret_sha256"] for f in findings], manifest)
        verdict["types"] = dict(Counter(f.get("type") for f in findings))
        return verdict

    for tool in tools:
        results["tools"][tool.name] = common.judged_summary(tool, check)

    # start-up latency of our tool on one small file
    startup = None
    if "ours" in wanted and ours and not results["tools"].get("soundpiece-scan", {}).get("error"):
        small_dir = common.BENCH_ROOT / "startup"
        small_dir.mkdir(parents=True, exist_ok=True)
        small = small_dir / "one_small_file.py"
        rng = random.Random(args.seed + 1)
        small.write_bytes(
            b'"""A small module."""\n\nimport os\n\nAPI_KEY = "'
            + mint(rules.API_KEY, rng)
            + b'"\n\n\ndef main():\n    return os.getcwd()\n'
        )
        common.log(f"start-up: {args.startup_runs} runs of soundpiece-scan {small.name} --no-progress ...")
        startup = common.startup_median(
            [str(ours), small.name, "--no-progress"], args.startup_runs, cwd=small_dir
        )
        if not set(startup["exit_codes"]) <= {0, 1}:
            startup["error"] = f"exit codes {startup['exit_codes']}"
    elif "ours" in wanted:
        common.log("start-up: skipped (soundpiece-scan missing or failing)")
    results["startup"] = startup
    print_report(results)
    common.write_json(args.results, results)
    return 0


def print_report(results: dict) -> None:
    tools = results["tools"]
    ours = tools.get("soundpiece-scan", {})
    rows = []
    for name, entry in tools.items():
        if entry.get("error") and not entry.get("runs"):
            rows.append([name, "—", "—", "—", "—", f"skipped: {str(entry['error'])[:100]}"])
            continue
        corr = entry.get("correctness", {})
        if "error" in corr:
            found = corr["error"][:60]
        else:
            found = (
                f"{corr['findings']} ({corr['planted_found']}/{corr['planted_total']} planted, "
                f"{corr['carriers_found']}/{corr['carriers_total']} in carriers, "
                f"{corr['unexpected_reported']} other)"
            )
        peer = tools.get("soundpiece-scan --plain", {}) if name == "ripgrep" else ours
        rows.append(common.tool_row(name, entry, peer, found, name))
    print(
        f"\n## Directory scan: {results['files']} files, {results['bytes'] / 1e6:.0f} MB, "
        f"{results['planted']} planted credentials, {results['decoys']} decoys\n"
    )
    print(common.markdown_table(common.TOOL_COLUMNS, rows))
    print("\nfindings: raw count (planted credentials found / total, reported values that are not planted)")

    def r(other: str, mine: str = "soundpiece-scan") -> float | None:
        return common.ratio(tools.get(mine, {}).get("median_wall"), tools.get(other, {}).get("median_wall"))

    mem = max(ours.get("peak_tree_pss_mb") or 0, ours.get("peak_rss_largest_process_mb") or 0) or None
    startup = results.get("startup") or {}
    corr = ours.get("correctness", {})
    exact = None
    if corr and "error" not in corr:
        exact = (
            corr["planted_found"] == corr["planted_total"]
            and corr["carriers_found"] == corr["carriers_total"]
            and corr["unexpected_reported"] == 0
        )
    plain_corr = tools.get("soundpiece-scan --plain", {}).get("correctness") or {}
    plain_exact = None
    if plain_corr and "error" not in plain_corr:
        plain_exact = plain_corr["planted_found"] == plain_corr["planted_total"]
    print("\n### Targets (soundpiece-scan)\n")
    print(
        common.markdown_table(
            ["target", "measured", "verdict"],
            [
                [
                    "--plain: wall ≤ 1.5× ripgrep",
                    common.fmt_ratio(r("ripgrep", "soundpiece-scan --plain")),
                    common.verdict(r("ripgrep", "soundpiece-scan --plain"), 1.5),
                ],
                [
                    "default (every carrier): wall ≤ 0.3× kingfisher (its defaults)",
                    common.fmt_ratio(r("kingfisher")),
                    common.verdict(r("kingfisher"), 0.3),
                ],
                [
                    "peak memory ≤ 200 MB (max of tree PSS, largest RSS)",
                    common.fmt_mb(mem),
                    common.verdict(mem, 200),
                ],
                [
                    "start-up ≤ 80 ms (one small file, median)",
                    common.fmt_s(startup.get("median")),
                    common.verdict(startup.get("median"), 0.080),
                ],
                [
                    "default: all planted and every carrier found, nothing else",
                    "—" if exact is None else str(exact),
                    "not measured" if exact is None else ("PASS" if exact else "FAIL"),
                ],
                [
                    "--plain: every plain plant found",
                    "—" if plain_exact is None else str(plain_exact),
                    "not measured" if plain_exact is None else ("PASS" if plain_exact else "FAIL"),
                ],
            ],
        )
    )
    print_recall(tools)
    for name, entry in tools.items():
        corr = entry.get("correctness") or {}
        if corr.get("missed_by_kind"):
            print(f"\n{name} missed, by placement: {corr['missed_by_kind']}")
    rg = tools.get("ripgrep", {}).get("correctness")
    if rg and "error" not in rg:
        print(
            f"\nripgrep (no checksum) printed {rg['findings']} matches: {rg['valid_matches']} valid, "
            f"{rg['findings'] - rg['valid_matches']} look-alikes (decoys with a wrong checksum)."
        )


def print_recall(tools: dict) -> None:
    """Carriers found by each tool, by the carrier that holds them (one credential per kind)."""
    names = [n for n, e in tools.items() if "carriers_found_by_kind" in (e.get("correctness") or {})]
    names = [n for n in names if n != "ripgrep"]
    if not names:
        return
    rows = []
    for carrier in dict.fromkeys(CARRIERS.values()):
        kinds = [k for k, c in CARRIERS.items() if c == carrier]
        cells = []
        for name in names:
            found = set(tools[name]["correctness"]["carriers_found_by_kind"]) & set(kinds)
            missed = ", ".join(sorted(set(kinds) - found))
            cells.append(f"{len(found)}/{len(kinds)}" + (f" (missed: {missed})" if missed else ""))
        rows.append([carrier + (" (new)" if carrier in NEW else ""), *cells])
    print("\n### Recall by carrier\n")
    print(common.markdown_table(["carrier", *names], rows))


if __name__ == "__main__":
    sys.exit(main())
