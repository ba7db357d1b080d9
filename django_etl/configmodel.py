"""The shared base of every configuration model (pipelines, steps, connectors): strict, frozen, named keys."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

Identifier = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
DatasetName = Identifier
FileFormat = Literal["csv", "jsonl", "parquet"]


class Strict(BaseModel):
    """Unknown keys are errors (a typo never passes silently); parsed configs cannot be changed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def union_tags(union: Any, field: str) -> frozenset[str]:
    """The discriminator values of an annotated tagged union: {"select", "rename", …} for Operation."""
    members = get_args(get_args(union)[0])
    return frozenset(get_args(member.model_fields[field].annotation)[0] for member in members)
