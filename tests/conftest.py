"""Settings for the whole suite."""

from hypothesis import settings

# No per-example deadline anywhere: the suite runs on a shared, loaded 2-core machine, where an
# example that writes a file or starts a process (or just waits for a core) can take seconds.
# A deadline there is a wall-clock limit in disguise; hangs are caught by the tests' own guards.
settings.register_profile("soundpiece", deadline=None)
settings.load_profile("soundpiece")
