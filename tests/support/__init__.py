"""What the tests (and the benchmarks in ``bench/``) share: GitHub's side of the protocol, real
servers and processes, git repositories, and measuring a process tree.

Import it as ``from tests.support.github import Signer``: pytest puts the repository root on
``sys.path`` (``pythonpath`` in pyproject.toml); ``bench/common.py`` does the same for benchmarks.
"""
