"""What every configuration section shares."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    """A config section: unknown keys are errors, so typos are caught at start."""

    model_config = ConfigDict(extra="forbid", frozen=True)


NodeName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")]
