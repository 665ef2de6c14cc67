"""Archives, compressed files and base64: every carrier, decoys, hostile archives, history and staged scans.

The archives are written by the standard library's own writers (and zstandard's); the
expected findings are the tokens planted and the names they were planted under.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import lzma
import os
import random
import zipfile
from pathlib import Path

import pytest
import zstandard

import rules
from tests.support.archives import tar_bytes, zip_bytes
from tests.support.git import Repo, run_scan


def key() -> str:
    return rules.API_KEY.mint()


def bad_checksum(token: str) -> str:
    last = "A" if token[-1] != "A" else "B"
    return token[:-1] + last


def found(result) -> set[tuple[str, str, str | None]]:
    return {(f["path"], f["secret_sha256"], f.get("encoding")) for f in result.findings}


def test_every_carrier_is_found_once_with_its_inner_path(tmp_path: Path) -> None:
    k = {
        name: key()
        for name in [
            "plain",
            "zip",
            "tgz",
            "gz",
            "k8s",
            "docker",
            "basic",
            "jar",
            "whl",
            "docx",
            "tbz",
            "txz",
            "bz2",
            "xz",
            "zst",
            "nested",
        ]
    }
    env = f"APP=1\nSOUNDPIECE_KEY={k['plain']}\n"
    (tmp_path / "plain.env").write_text(env)
    (tmp_path / "app.zip").write_bytes(zip_bytes({"config/.env": f"KEY={k['zip']}\n".encode()}))
    (tmp_path / "app.tgz").write_bytes(tar_bytes({"deploy/.env": f"KEY={k['tgz']}\n".encode()}, "w:gz"))
    (tmp_path / "cfg.json.gz").write_bytes(gzip.compress(f'{{"api_key": "{k["gz"]}"}}'.encode()))
    encoded = base64.b64encode(k["k8s"].encode()).decode()
    (tmp_path / "secret.yaml").write_text(f"apiVersion: v1\nkind: Secret\ndata:\n  API_KEY: {encoded}\n")
    auth = base64.b64encode(f"robot:{k['docker']}".encode()).decode()
    (tmp_path / "config.json").write_text(f'{{"auths": {{"registry.example": {{"auth": "{auth}"}}}}}}\n')
    basic = base64.b64encode(f"user:{k['basic']}".encode()).decode()
    (tmp_path / "request.http").write_text(f"GET / HTTP/1.1\nAuthorization: Basic {basic}\n")
    (tmp_path / "app.jar").write_bytes(
        zip_bytes({"BOOT-INF/classes/app.properties": f"k={k['jar']}".encode()})
    )
    (tmp_path / "pkg.whl").write_bytes(zip_bytes({"pkg/_keys.py": f"K = '{k['whl']}'\n".encode()}))
    (tmp_path / "notes.docx").write_bytes(
        zip_bytes(
            {"[Content_Types].xml": b"<Types/>", "word/document.xml": f"<w:t>{k['docx']}</w:t>".encode()}
        )
    )
    (tmp_path / "b.tar.bz2").write_bytes(tar_bytes({"etc/b.env": f"K={k['tbz']}".encode()}, "w:bz2"))
    (tmp_path / "x.tar.xz").write_bytes(tar_bytes({"etc/x.env": f"K={k['txz']}".encode()}, "w:xz"))
    (tmp_path / "dump.sql.bz2").write_bytes(bz2.compress(f"insert '{k['bz2']}';".encode()))
    (tmp_path / "dump.sql.xz").write_bytes(lzma.compress(f"insert '{k['xz']}';".encode()))
    (tmp_path / "dump.sql.zst").write_bytes(zstandard.ZstdCompressor().compress(f"x {k['zst']}".encode()))
    jar = zip_bytes({"application.yml": f"key: {k['nested']}\n".encode()})
    (tmp_path / "backup.tar.gz").write_bytes(tar_bytes({"srv/lib/app.jar": jar}, "w:gz"))

    result = run_scan(".", cwd=tmp_path)

    assert result.code == 1, result.stderr
    assert result.stderr == ""
    assert found(result) == {
        ("./plain.env", rules.identity(k["plain"]), None),
        ("./app.zip!config/.env", rules.identity(k["zip"]), None),
        ("./app.tgz!deploy/.env", rules.identity(k["tgz"]), None),
        ("./cfg.json.gz!cfg.json", rules.identity(k["gz"]), None),
        ("./secret.yaml", rules.identity(k["k8s"]), "base64"),
        ("./config.json", rules.identity(k["docker"]), "base64"),
        ("./request.http", rules.identity(k["basic"]), "base64"),
        ("./app.jar!BOOT-INF/classes/app.properties", rules.identity(k["jar"]), None),
        ("./pkg.whl!pkg/_keys.py", rules.identity(k["whl"]), None),
        ("./notes.docx!word/document.xml", rules.identity(k["docx"]), None),
        ("./b.tar.bz2!etc/b.env", rules.identity(k["tbz"]), None),
        ("./x.tar.xz!etc/x.env", rules.identity(k["txz"]), None),
        ("./dump.sql.bz2!dump.sql", rules.identity(k["bz2"]), None),
        ("./dump.sql.xz!dump.sql", rules.identity(k["xz"]), None),
        ("./dump.sql.zst!dump.sql", rules.identity(k["zst"]), None),
        ("./backup.tar.gz!srv/lib/app.jar!application.yml", rules.identity(k["nested"]), None),
    }
    assert len(result.findings) == 16
    by_path = {f["path"]: f for f in result.findings}
    assert by_path["./app.zip!config/.env"]["inner_path"] == "config/.env"
    assert (by_path["./app.zip!config/.env"]["line"], by_path["./app.zip!config/.env"]["column"]) == (1, 5)
    k8s = by_path["./secret.yaml"]
    assert (k8s["line"], k8s["column"]) == (4, 12)  # where the encoded text starts

    plain = found(run_scan(".", "--plain", cwd=tmp_path))  # xz and zstd store tiny inputs as they are
    assert ("./plain.env", rules.identity(k["plain"]), None) in plain
    assert all("!" not in path and encoding is None for path, _, encoding in plain)


def test_raw_bytes_are_still_scanned(tmp_path: Path) -> None:
    """A key appended after the end of a gzip stream, and a key in a stored zip member: once each."""
    after, stored = key(), key()
    (tmp_path / "log.gz").write_bytes(gzip.compress(b"nothing here\n") + f"\nKEY={after}\n".encode())
    (tmp_path / "s.zip").write_bytes(zip_bytes({"a.txt": f"k={stored}".encode()}, zipfile.ZIP_STORED))
    result = run_scan(".", cwd=tmp_path)
    assert found(result) == {
        ("./log.gz", rules.identity(after), None),
        ("./s.zip!a.txt", rules.identity(stored), None),
    }
    assert len(result.findings) == 2


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz"])
def test_a_compressed_tar_larger_than_one_read_of_compressed_bytes(tmp_path: Path, mode: str) -> None:
    """Hundreds of members in several hundred kilobytes of compressed tar (a real package's
    resources, say): decompression hands tarfile short reads wherever a piece of compressed input
    runs out, and every member must still be read whole, with no warning, up to a key in the last."""
    rnd = random.Random(7)
    members = {
        f"pkg/file{i:03}.txt": bytes(
            rnd.choice(b"abcdefghijklmnopqrstuvwxyz \n") for _ in range(rnd.randint(0, 6000))
        )
        for i in range(300)
    }
    last = key()
    members["pkg/zz-last.env"] = f"API_KEY={last}\n".encode()
    data = tar_bytes(members, mode)
    assert len(data) > 4 * 65536  # several of the decompressor's 64 KiB pieces
    (tmp_path / "resources.tar").write_bytes(data)
    result = run_scan(".", cwd=tmp_path)
    assert result.stderr.count("warning") == 0, result.stderr
    assert found(result) == {("./resources.tar!pkg/zz-last.env", rules.identity(last), None)}


def test_a_zip_on_disk_larger_than_the_in_memory_bound_is_opened_in_place(tmp_path: Path) -> None:
    """A 40 MB wheel or jar is common: a file on disk is read at any offset, never held whole."""
    inside = key()
    filler = {f"lib/blob{i}.bin": os.urandom(400_000) for i in range(5)}  # stored: 2 MB of zip
    data = zip_bytes({**filler, "conf/app.env": f"KEY={inside}\n".encode()}, zipfile.ZIP_STORED)
    (tmp_path / "big.whl").write_bytes(data)
    result = run_scan(".", "--archive-in-memory", "1MiB", cwd=tmp_path)
    assert result.stderr == ""
    assert found(result) == {("./big.whl!conf/app.env", rules.identity(inside), None)}


def test_a_nested_zip_over_the_in_memory_bound_is_one_warning(tmp_path: Path) -> None:
    """ray's wheel holds a 32.4 MiB jar: a zip inside a zip must be held to be opened, up to the bound."""
    beside = key()
    inner = zip_bytes({"blob.bin": os.urandom(1_300_000)}, zipfile.ZIP_STORED)
    outer = zip_bytes({"ray/jars/dist.jar": inner, "ray/.env": f"K={beside}".encode()}, zipfile.ZIP_STORED)
    (tmp_path / "ray.whl").write_bytes(outer)
    result = run_scan(".", "--archive-in-memory", "1MiB", cwd=tmp_path)
    assert warnings(result) == [
        "soundpiece-scan: warning: ./ray.whl!ray/jars/dist.jar: a zip inside an archive or read from a stream"
        " is opened only up to 1 MiB (archive-in-memory); this one is 1.2 MiB: its members are not scanned"
    ]
    assert found(result) == {("./ray.whl!ray/.env", rules.identity(beside), None)}


def test_a_zip_in_a_zip_with_a_member_of_megabytes(tmp_path: Path) -> None:
    """tensorboard's wheel holds webfiles.zip, whose members are megabytes: members are read in
    pieces, not in reads as large as the engine's buffer (which the zip reader bounds)."""
    inside = key()
    big = base64.encodebytes(os.urandom(4 << 20)) + f"\nK={inside}\n".encode()  # compresses 1.3x
    inner = zip_bytes({"index.js": big})
    (tmp_path / "tool.whl").write_bytes(zip_bytes({"tool/webfiles.zip": inner}))
    result = run_scan(".", cwd=tmp_path)
    assert result.stderr == ""
    assert found(result) == {("./tool.whl!tool/webfiles.zip!index.js", rules.identity(inside), None)}


def test_a_fat_jar_with_a_central_directory_of_megabytes(tmp_path: Path) -> None:
    """30,000 classes: the directory zipfile reads in one go is 3 MB, all of it within the file."""
    inside = key()
    names = {
        f"com/example/generated/module{i // 100:03}/Class{i:05}.class": b"\xca\xfe" for i in range(30_000)
    }
    data = zip_bytes({**names, "BOOT-INF/classes/application.properties": f"k={inside}".encode()})
    (tmp_path / "app.jar").write_bytes(data)
    result = run_scan(".", cwd=tmp_path)
    assert result.stderr == ""
    assert found(result) == {
        ("./app.jar!BOOT-INF/classes/application.properties", rules.identity(inside), None)
    }


def test_xz_at_its_strongest_preset_is_opened(tmp_path: Path) -> None:
    """``xz -9`` declares a 64 MiB dictionary; its decoder needs a little more than that."""
    inside = key()
    (tmp_path / "dump.sql.xz").write_bytes(lzma.compress(f"INSERT k='{inside}';\n".encode(), preset=9))
    result = run_scan(".", cwd=tmp_path)
    assert result.stderr == ""
    assert found(result) == {("./dump.sql.xz!dump.sql", rules.identity(inside), None)}


def test_xz_over_the_window_says_which_bound(tmp_path: Path) -> None:
    (tmp_path / "dump.sql.xz").write_bytes(lzma.compress(f"k={key()}\n".encode(), preset=9))
    result = run_scan(".", "--archive-window", "16MiB", cwd=tmp_path)
    assert "archive-window" in result.stderr and "corrupt" not in result.stderr, result.stderr
    assert not [f for f in result.findings if "!" in f["path"]]  # the member is not opened


def test_decoys_inside_archives_and_base64_are_never_reported(tmp_path: Path) -> None:
    decoys = [bad_checksum(key()), key()[:-2], "spk_<your-key>", "whsec_" + "A" * 32]
    text = "\n".join(f"K{i}={d}" for i, d in enumerate(decoys)).encode()
    (tmp_path / "d.zip").write_bytes(zip_bytes({"d.env": text}))
    (tmp_path / "d.tgz").write_bytes(tar_bytes({"d.env": text}, "w:gz"))
    (tmp_path / "d.b64").write_bytes(base64.encodebytes(text))
    (tmp_path / "d2.b64").write_bytes(base64.b64encode(base64.b64encode(text)))
    result = run_scan(".", cwd=tmp_path)
    assert (result.code, result.findings, result.stderr) == (0, [], "")


@pytest.mark.parametrize("wrap", [None, 76, 64])
@pytest.mark.parametrize("lead", ["", "A", "AB", "user:", "X=1\nY=22\nKEY="])
def test_a_whole_encoded_env_file(tmp_path: Path, wrap: int | None, lead: str) -> None:
    token = rules.WEBHOOK_SECRET.mint()
    encoded = base64.b64encode(f"{lead}{token}\nOTHER=x\n".encode()).decode()
    if wrap:
        encoded = "\n".join(encoded[i : i + wrap] for i in range(0, len(encoded), wrap))
    (tmp_path / "env.b64").write_text(encoded + "\n")
    [finding] = run_scan(".", cwd=tmp_path).findings
    assert (finding["secret_sha256"], finding["encoding"]) == (rules.identity(token), "base64")


def test_url_safe_unpadded_and_base64_in_base64(tmp_path: Path) -> None:
    a, b = key(), key()
    url = base64.urlsafe_b64encode(f"\xff\xfe{a}".encode("latin-1")).decode().rstrip("=")
    twice = base64.b64encode(base64.b64encode(f"t:{b}".encode())).decode()
    (tmp_path / "a.txt").write_text(f"token={url}\nnested={twice}\n")
    result = run_scan(".", cwd=tmp_path)
    assert found(result) == {
        ("./a.txt", rules.identity(a), "base64url"),
        ("./a.txt", rules.identity(b), "base64/base64"),
    }


def test_inline_marker_on_a_members_own_line(tmp_path: Path) -> None:
    allowed, reported = key(), key()
    text = f"A={allowed}  # soundpiece-scan: allow\nB={reported}\n".encode()
    (tmp_path / "a.zip").write_bytes(zip_bytes({"x.env": text}))
    encoded = base64.b64encode(allowed.encode()).decode()
    (tmp_path / "s.yaml").write_text(f"k: {encoded}  # soundpiece-scan: allow\n")
    assert found(run_scan(".", cwd=tmp_path)) == {("./a.zip!x.env", rules.identity(reported), None)}


# ---------------------------------------------------------------- hostile archives


def warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line]


def test_a_bomb_member_is_cut_and_the_next_member_still_scanned(tmp_path: Path) -> None:
    later = key()
    bomb = zip_bytes({"bomb.bin": b"\0" * (64 << 20), "after.env": f"K={later}".encode()})
    assert len(bomb) < 200_000
    (tmp_path / "bomb.zip").write_bytes(bomb)
    result = run_scan(".", cwd=tmp_path)
    assert found(result) == {("./bomb.zip!after.env", rules.identity(later), None)}
    [warning] = warnings(result)
    assert "bomb.zip!bomb.bin" in warning and "archive-ratio" in warning


def test_member_and_archive_byte_bounds_are_configurable(tmp_path: Path) -> None:
    later = key()
    (tmp_path / "big.zip").write_bytes(
        zip_bytes({"big.txt": os.urandom(3 << 20), "after.env": f"K={later}".encode()}, zipfile.ZIP_STORED)
    )
    result = run_scan(".", "--archive-member-bytes", "1MiB", cwd=tmp_path)
    assert found(result) == {("./big.zip!after.env", rules.identity(later), None)}
    [warning] = warnings(result)
    assert "big.zip!big.txt" in warning and "archive-member-bytes" in warning
    result = run_scan(".", "--archive-bytes", "2MiB", cwd=tmp_path)
    assert found(result) == {("./big.zip", rules.identity(later), None)}  # a stored member: raw bytes
    [warning] = warnings(result)
    assert "big.zip" in warning and "archive-bytes" in warning


def test_encrypted_truncated_garbage_and_escaping_members_warn_once_each(tmp_path: Path) -> None:
    escaped, plain = key(), key()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("secret.env", b"ciphertext")
        archive.writestr("../../etc/x", f"K={escaped}".encode())
        archive.writestr("ok.env", f"K={plain}".encode())
    data = bytearray(out.getvalue())
    central = data.index(b"PK\x01\x02")  # the first entry's: secret.env
    data[6] |= 0x1  # marked encrypted in its local header and its central directory entry
    data[central + 8] |= 0x1
    (tmp_path / "mixed.zip").write_bytes(bytes(data))
    whole = zip_bytes({"a.env": b"A=" + b"x" * 5000})
    (tmp_path / "cut.zip").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "garbage.zip").write_bytes(b"PK\x03\x04" + os.urandom(2000))
    (tmp_path / "cut.tgz").write_bytes(tar_bytes({"a.env": os.urandom(100_000)}, "w:gz")[:5000])
    (tmp_path / "garbage.gz").write_bytes(b"\x1f\x8b\x08" + os.urandom(500))
    before = sorted(p for p in tmp_path.parent.rglob("*"))

    result = run_scan(".", cwd=tmp_path)

    assert found(result) == {
        ("./mixed.zip!../../etc/x", rules.identity(escaped), None),
        ("./mixed.zip!ok.env", rules.identity(plain), None),
    }
    shown = warnings(result)
    assert len(shown) == 6, shown
    for name in (
        "mixed.zip!secret.env",
        "mixed.zip!../../etc/x",
        "cut.zip",
        "garbage.zip",
        "cut.tgz",
        "garbage.gz",
    ):
        named = [line for line in shown if line.split("warning: ", 1)[1].startswith(f"./{name}")]
        assert len(named) == 1, (name, shown)
    assert sorted(p for p in tmp_path.parent.rglob("*")) == before  # nothing extracted anywhere


def test_nesting_and_member_count_are_bounded(tmp_path: Path) -> None:
    deep = key()
    data = f"K={deep}".encode()
    for level in range(5):
        data = zip_bytes({f"level{level}.zip" if level else "k.env": data})
    (tmp_path / "deep.zip").write_bytes(data)
    result = run_scan(".", cwd=tmp_path)
    assert result.findings == []
    [warning] = warnings(result)
    assert "archive-depth" in warning
    result = run_scan(".", "--archive-depth", "6", cwd=tmp_path)
    assert found(result) == {
        ("./deep.zip!level4.zip!level3.zip!level2.zip!level1.zip!k.env", rules.identity(deep), None),
    }
    (tmp_path / "many.zip").write_bytes(zip_bytes({f"m{i}.txt": b"x" for i in range(20)}))
    result = run_scan("many.zip", "--archive-members", "10", cwd=tmp_path)
    [warning] = warnings(result)
    assert "many.zip" in warning and "archive-members" in warning


@pytest.mark.parametrize("option", ["--archive-depth=-1", "--archive-ratio=lots", "--archive-bytes=0"])
def test_bad_bounds_are_a_usage_error(tmp_path: Path, option: str) -> None:
    result = run_scan(".", option, cwd=tmp_path)
    assert result.code == 2 and "archive-" in result.stderr


def test_bounds_and_plain_from_the_configuration(tmp_path: Path) -> None:
    inside = key()
    (tmp_path / "a.zip").write_bytes(zip_bytes({"a.env": f"K={inside}".encode()}))
    (tmp_path / ".soundpiece-scan.toml").write_text("plain = true\n")
    assert run_scan(".", cwd=tmp_path, config=True).findings == []
    (tmp_path / ".soundpiece-scan.toml").write_text('archive-member-bytes = "1KiB"\narchive-depth = 2\n')
    assert found(run_scan(".", cwd=tmp_path, config=True)) == {
        ("./a.zip!a.env", rules.identity(inside), None)
    }
    (tmp_path / ".soundpiece-scan.toml").write_text("archive-depth = true\n")
    result = run_scan(".", cwd=tmp_path, config=True)
    assert result.code == 2 and "archive-depth" in result.stderr


DOCUMENTED_BOUNDS = {  # as the README's table of bounds and the warnings name them
    "archive-depth": "1",
    "archive-member-bytes": "1KiB",
    "archive-bytes": "2MiB",
    "archive-ratio": "10",
    "archive-members": "5",
    "archive-in-memory": "1MiB",
    "archive-window": "8MiB",
}


@pytest.mark.parametrize("name", DOCUMENTED_BOUNDS)
def test_each_bound_has_one_name_in_options_and_configuration(tmp_path: Path, name: str) -> None:
    """``archive-bytes`` was once ``archive-archive-bytes`` in the configuration only."""
    value = DOCUMENTED_BOUNDS[name]
    (tmp_path / "a.env").write_text("nothing here\n")
    (tmp_path / ".soundpiece-scan.toml").write_text(f'{name} = "{value}"\n')
    assert run_scan(".", cwd=tmp_path, config=True).code == 0
    assert run_scan(".", f"--{name}", value, cwd=tmp_path).code == 0
    (tmp_path / ".soundpiece-scan.toml").write_text(f'{name} = "lots"\n')
    result = run_scan(".", cwd=tmp_path, config=True)
    assert result.code == 2 and name in result.stderr and "unknown key" not in result.stderr


# ---------------------------------------------------------------- history, ranges, staged


def test_archive_members_in_history_range_and_staged(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "repo", tmp_path)
    base = repo.commit({"README": "hello\n"})
    in_history = key()
    commit = repo.commit({"dist/app.zip": zip_bytes({"config/.env": f"K={in_history}\n".encode()})})
    result = run_scan("--git", ".", cwd=repo.path)
    [finding] = result.findings
    assert (finding["path"], finding["commit"], finding["line"]) == ("dist/app.zip!config/.env", commit, 1)
    [finding] = run_scan("--git", ".", "--range", f"{base}..HEAD", cwd=repo.path).findings
    assert (finding["path"], finding["commit"]) == ("dist/app.zip!config/.env", commit)

    staged = key()
    repo.write("backup.tgz", tar_bytes({"db/.env": f"\n\nDB_KEY={staged}\n".encode()}, "w:gz"))
    repo.git("add", "backup.tgz")
    [finding] = run_scan("--staged", cwd=repo.path).findings
    assert (finding["path"], finding["line"], finding["secret_sha256"]) == (
        "backup.tgz!db/.env",
        3,
        rules.identity(staged),
    )
