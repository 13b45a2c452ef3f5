"""A service that ignores SIGTERM and has a child in its process group
(``python -m tests.stubborn``): a stand-in for a server that is slow to stop."""

import signal
import subprocess
import sys
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
IGNORING = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
child = subprocess.Popen([sys.executable, "-c", IGNORING])
print(child.pid, flush=True)
time.sleep(600)
