import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


def pytest_configure(config):
    """One qbm cache directory per test session (judges, decoded data sets): tests never
    read or write the user's ~/.cache/qbm, and a session trains each judge once."""
    import tempfile

    if "QBM_CACHE_DIR" not in os.environ:
        os.environ["QBM_CACHE_DIR"] = tempfile.mkdtemp(prefix="qbm-test-cache-")
    # A shell that starts the suite in the background (`cmd &` without job control) sets
    # SIGINT to "ignore", and then the Ctrl-C tests would wait for their long calls to end.
    # Restore Python's KeyboardInterrupt handler (children started from here inherit a
    # default disposition instead of "ignore").
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _split_every_call_in_thread_tests(request, monkeypatch):
    """Tests of thread-count independence (their names say "thread") split every call that
    has more than one unit (QBM_MIN_WORK_PER_THREAD=1): at the sizes tests use, the default
    policy would run both sides of "1 thread against 2" on one thread."""
    if "thread" in request.node.name:
        monkeypatch.setenv("QBM_MIN_WORK_PER_THREAD", "1")
