"""meshplane's test suite; ``tests.support`` is shared with ``bench/``."""
