"""Request bodies (pydantic: a wrong or unknown field is a 422) and the server-sent events of /v1/generate."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class PredictRequest(BaseModel):
    """classify / tag: texts (or token lists); forecast: histories (rows of values); tree: bracketed trees."""

    model_config = ConfigDict(extra="forbid")
    inputs: list[Any] = Field(min_length=1)
    start: int | list[int] | None = Field(None, description="forecast only: the season position of each "
                                          "history's first row (one for all, or one per input; default 0)")
    series: str | int | list[str | int | None] | None = Field(
        None, description="forecast only: each history's series id, for a run with a learned series embedding "
        "(one for all, or one per input); an unknown id, or none, gets the mean embedding")

    def options(self) -> dict:
        """The forecast options that were given."""
        return {k: v for k, v in (("start", self.start), ("series", self.series)) if v is not None}


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: list[Any] = Field(min_length=1)
    beam: int = Field(1, ge=1, description="beam size (1: greedy search)")
    attention: bool = Field(False, description="also return each output token's attention over the source")


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prime: str = ""
    length: int = Field(200, ge=1)
    temperature: float = Field(1.0, gt=0)
    top_k: int = Field(0, ge=0, description="0: no top-k filter")
    top_p: float = Field(1.0, gt=0, le=1)
    greedy: bool = False
    seed: int | None = None
    stream: bool = Field(True, description="server-sent events, one per token (else one JSON answer)")

    def sampling(self):
        from rnnkit.generate import SamplingOptions

        return SamplingOptions(self.temperature, self.top_k, self.top_p, self.greedy)


def events(tokens, prime: str, join):
    """`data: {"token": ...}` per token, then `event: done` with the whole text (SSE framing)."""
    out = []
    for token in tokens:
        out.append(token)
        yield f"data: {json.dumps({'token': token})}\n\n"
    yield f"event: done\ndata: {json.dumps({'text': prime + join(out), 'tokens': len(out)})}\n\n"
