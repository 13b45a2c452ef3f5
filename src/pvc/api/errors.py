"""API errors: every one becomes ``{"message": ...}`` with a 4xx status."""

from __future__ import annotations

from pvc.errors import PVCError


class ApiError(PVCError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
