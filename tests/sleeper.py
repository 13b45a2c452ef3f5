"""A process that only waits (``python -m tests.sleeper``): a stand-in service for tests."""

import time

time.sleep(600)
