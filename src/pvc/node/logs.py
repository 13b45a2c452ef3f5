"""Logging for the node daemon: stderr and the node's log ring in ZooKeeper."""

from __future__ import annotations

import logging
import sys

from pvc.state.logring import LogRingWriter

FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-7s %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


class RingHandler(logging.Handler):
    """Hands formatted records to a LogRingWriter (which the keepalive flushes)."""

    def __init__(self, writer: LogRingWriter) -> None:
        super().__init__()
        self.writer = writer
        self.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.append(self.format(record))
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def setup_stderr(level: str, node: str) -> logging.Logger:
    """Configure the ``pvc`` logger to write to stderr; returns it."""
    logger = logging.getLogger("pvc")
    logger.setLevel(level.upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{FORMAT} [{node}]", DATE_FORMAT))
    logger.addHandler(handler)
    kazoo_logger = logging.getLogger("kazoo")
    kazoo_logger.setLevel(logging.ERROR)  # our loop reports connection changes
    kazoo_logger.addHandler(handler)
    return logger
