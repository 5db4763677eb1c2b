"""Routes of the points API: ingest, keys, series."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from ..deps import ReadRun, SessionDep, SettingsDep, WriteRun, diagnose_after_commit
from ..diagnoses.repository import active_briefs
from ..errors import Unprocessable
from ..jsonnum import json_floats
from ..runs.service import summarize
from ..validation import check_key
from . import repository, service
from .body import MAX_STEP, decode_body, parse_batch, read_limited_body
from .schemas import IngestOut, KeyList, KeyOut, SeriesList

router = APIRouter(prefix="/api/v1", tags=["points"])

MAX_KEYS_PER_READ = 200


async def raw_body(request: Request, settings: SettingsDep) -> bytes:
    # Read here, on the event loop and within the limit; parsed in the worker thread below.
    return await read_limited_body(request, settings.max_body_bytes)


_BATCH_EXAMPLE = {
    "batch_id": "3f6c2a1d-0001",
    "points": {"loss": {"steps": [0, 1], "values": [2.3, "NaN"], "wall": [1733.1, 1733.2]}},
    "dropped": 0,
}


@router.post(
    "/runs/{run_id}/points",
    response_model=IngestOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}, "example": _BATCH_EXAMPLE}
            },
        }
    },
)
def post_points(
    request: Request,
    run: WriteRun,
    session: SessionDep,
    settings: SettingsDep,
    raw: Annotated[bytes, Depends(raw_body)],
) -> IngestOut:
    """Store one columnar batch (gzip accepted). A batch id seen before changes nothing."""
    doc = decode_body(
        raw,
        request.headers.get("content-type", ""),
        request.headers.get("content-encoding", ""),
        settings.max_decompressed_bytes,
    )
    batch = parse_batch(doc, settings.max_points_per_batch, settings.max_keys_per_batch)
    result = service.ingest(session, run, batch)
    if not result.duplicate:
        diagnose_after_commit(request, run.id)
    return IngestOut(
        accepted=result.accepted,
        new=result.new,
        duplicate=result.duplicate,
        diagnoses=active_briefs(session, run.id),
    )


@router.get("/runs/{run_id}/keys", response_model=KeyList)
def get_keys(run: ReadRun, session: SessionDep) -> KeyList:
    """Every key the run logged, with its summaries."""
    return KeyList(
        keys=[
            KeyOut(key=s.key, **summarize(s).model_dump())
            for s in repository.all_series(session, run.id)
        ]
    )


@router.get("/runs/{run_id}/series", response_model=SeriesList)
def get_series(
    run: ReadRun,
    session: SessionDep,
    keys: Annotated[
        str | None, Query(description="Comma-separated keys", max_length=50_000)
    ] = None,
    key: Annotated[
        list[str] | None,
        Query(description="One key per parameter (for keys that hold a comma)"),
    ] = None,
    max_points: Annotated[int | None, Query(ge=10, le=1_000_000)] = None,
    step_min: Annotated[int | None, Query(ge=0, le=MAX_STEP)] = None,
    step_max: Annotated[int | None, Query(ge=0, le=MAX_STEP)] = None,
    wall: bool = False,
) -> Response:
    """Points per key, downsampled with MinMax-LTTB when ``max_points`` is given.

    A spike, a NaN or an Inf is never hidden by downsampling.
    """
    wanted = list(dict.fromkeys([*(k for k in (keys or "").split(",") if k), *(key or [])]))
    if not wanted:
        raise Unprocessable("keys must name at least one key")
    if len(wanted) > MAX_KEYS_PER_READ:
        raise Unprocessable(f"at most {MAX_KEYS_PER_READ} keys per request")
    for k in wanted:
        check_key(k)
    if step_min is not None and step_max is not None and step_min > step_max:
        raise Unprocessable("step_min is above step_max")
    reads = service.read_series(session, run.id, wanted, max_points, step_min, step_max, wall)
    body = {
        "series": [
            {
                "key": r.key,
                "steps": r.points.steps.tolist(),
                "values": json_floats(r.points.values),
                "wall": r.points.walls.tolist() if wall and r.points.walls is not None else None,
                "total": r.total,
                "downsampled": r.downsampled,
            }
            for r in reads
        ]
    }
    # Serialised here: the pydantic round trip costs more than the read on a 1M-point series.
    return Response(
        json.dumps(body, allow_nan=False, separators=(",", ":")), media_type="application/json"
    )
