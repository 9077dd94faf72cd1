import os
import sys

sys.path.insert(0, os.path.dirname(__file__))


def pytest_configure(config):
    """One qbm cache directory per test session (judges, decoded data sets): tests never
    read or write the user's ~/.cache/qbm, and a session trains each judge once."""
    import tempfile

    if "QBM_CACHE_DIR" not in os.environ:
        os.environ["QBM_CACHE_DIR"] = tempfile.mkdtemp(prefix="qbm-test-cache-")
