"""soundpiece-scan: finds checksum-valid Soundpiece credentials in files and git history."""

DISTRIBUTION = "soundpiece-secret-defence"
"""The package's name in pyproject.toml, whose ``version`` is the only place the version is written."""


def version() -> str:
    """This install's version, from its metadata (pyproject.toml's ``version``).

    Imported on demand (``--version``, SARIF): ``importlib.metadata`` costs 10-30 ms to import.
    """
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed(DISTRIBUTION)
    except PackageNotFoundError:  # a source tree run without being installed
        return "unknown"
