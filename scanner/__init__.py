"""soundpiece-scan: finds checksum-valid Soundpiece credentials in files and git history."""

__version__ = "0.1.0"
