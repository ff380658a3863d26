"""``POST /api/imports/{kind}``: an admin uploads a customers, appliances or orders file.

The request is ``multipart/form-data`` with the file in a part named ``file`` (its name's
suffix, ``.csv`` or ``.xlsx``, says how to read it); ``?dry_run=true`` reports without saving.
The upload is streamed to a temporary file (at most :data:`MAX_UPLOAD` bytes, else 413) and
imported like ``callcenter import KIND FILE``; the answer is the report as JSON (counts, rejected
rows with their reasons, notes: no personal data). The import is audited per saved batch and as a
whole (``callcenter.imports.tabular``: who, kind, counts).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from aiohttp import BodyPartReader, ClientPayloadError, MultipartReader, web
from pydantic import BaseModel

from callcenter.access import ACTIONS, require
from callcenter.appkeys import SESSIONMAKER, SETTINGS, VAULT
from callcenter.auth.identity import CurrentUser
from callcenter.clock import utcnow
from callcenter.errors import DomainError, ValidationFailed
from callcenter.imports import KINDS, importer
from callcenter.web.api import ApiModel, endpoint, json_response

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_UPLOAD = 64 * 1024**2
SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm")


class ImportQuery(ApiModel):
    dry_run: bool = False


class RejectedRow(BaseModel):
    row: int
    reason: str


class NotedRow(BaseModel):
    row: int
    note: str


class ImportReportOut(BaseModel):
    kind: str
    dry_run: bool
    counts: dict[str, int]
    rejected_count: int
    summary: str
    rejected: list[RejectedRow]
    notes: list[NotedRow]


async def _receive(request: web.Request, folder: Path) -> Path:
    """The uploaded file, streamed into ``folder``; 422 for a body that is no multipart form
    with a ``file`` part (a broken or truncated body included), 413 past MAX_UPLOAD."""
    try:
        reader = await request.multipart()
        return await _save_file_part(reader, folder)
    except (AssertionError, ValueError, KeyError, EOFError, LookupError, ClientPayloadError) as e:
        raise ValidationFailed("file", "multipart/form-data with a part named file expected") from e


async def _save_file_part(reader: MultipartReader, folder: Path) -> Path:
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name != "file":
            continue
        suffix = Path(part.filename or "").suffix.lower()
        if suffix not in SUFFIXES:
            raise ValidationFailed("file", f"a {', '.join(SUFFIXES)} file expected")
        path = folder / f"upload{'.csv' if suffix == '.txt' else suffix}"
        size = 0
        with path.open("wb") as f:
            while chunk := await part.read_chunk(1 << 16):
                size += len(chunk)
                if size > MAX_UPLOAD:
                    raise DomainError(f"文件过大 (at most {MAX_UPLOAD // 1024**2} MB)",
                                      code="too_large", status=413, limit=MAX_UPLOAD)
                f.write(chunk)
        return path
    raise ValidationFailed("file", "required")


@routes.post(r"/api/imports/{kind:customers|appliances|orders}")
@endpoint("批量导入 Import customers, appliances or past work orders (CSV/XLSX upload)",
          roles=ACTIONS["import.run"], query=ImportQuery, response=ImportReportOut, tag="imports",
          description="multipart/form-data, the file in part `file`; kind: " + " | ".join(KINDS)
                      + ". Rejected rows are listed with their spreadsheet row number and reason.")
async def run_import(request: web.Request, user: CurrentUser, query: ImportQuery) -> web.Response:
    require(user, "import.run")
    kind = request.match_info["kind"]
    app = request.app
    with tempfile.TemporaryDirectory(prefix="callcenter-import-") as folder:
        path = await _receive(request, Path(folder))
        try:
            report = await importer(kind)(app[SESSIONMAKER], path, app[SETTINGS], vault=app[VAULT],
                                          now=utcnow(), dry_run=query.dry_run, actor_id=user.id,
                                          via="http")
        except (OSError, ValueError, KeyError, EOFError) as e:
            # An unreadable file (a corrupt XLSX, a zip that is no workbook): nothing was saved
            # by then except whole batches before it.
            log.warning("%s import: unreadable upload (%s)", kind, type(e).__name__)
            raise ValidationFailed("file", "cannot be read as CSV or XLSX") from None
    return json_response(report.to_json())
