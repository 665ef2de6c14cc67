"""Where bytes come from: files, stdin and git, each behind the protocol in ``base.py``."""
