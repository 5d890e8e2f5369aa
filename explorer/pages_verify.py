"""The re-verification page: start a job on a range or the whole chain, watch its progress,
read its report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from explorer.app import FormRefused, form_fields, render
from explorer.boundary import MAX_HEIGHT
from explorer.reverify_jobs import JobRefused, JobRunner

router = APIRouter()

JobId = Annotated[int, Path(ge=1, le=MAX_HEIGHT)]
"""A job's number in a URL (a larger number is refused 422, not sent to the database)."""


def _jobs(request: Request) -> JobRunner:
    jobs: JobRunner = request.app.state.jobs
    return jobs


@router.get("/verify")
def verify_page(request: Request) -> Response:
    """The form and the latest jobs."""
    return render(request, "verify.html", jobs=_jobs(request).recent(), error=None)


def _height(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    if not value.strip().isdigit() or len(value.strip()) > 18:
        raise FormRefused("a height is a non-negative integer")
    return int(value.strip())


@router.post("/verify")
async def start_job(request: Request) -> Response:
    """Start a job; go to its page."""
    try:
        fields = await form_fields(request)
        first = _height(fields.get("first")) or 0
        last = _height(fields.get("last"))
    except FormRefused as exc:
        return render(
            request, "verify.html", status_code=400, jobs=_jobs(request).recent(), error=str(exc)
        )
    reexecute = fields.get("reexecute") in ("true", "on", "1")
    try:
        job_id = _jobs(request).start(
            first=first, last=last, reexecute=reexecute, auditor=request.state.auditor
        )
    except JobRefused as exc:
        return render(
            request, "verify.html", status_code=429, jobs=_jobs(request).recent(), error=str(exc)
        )
    return RedirectResponse(f"/verify/{job_id}", status_code=303)


@router.get("/verify/{job_id}.json")
def job_json(request: Request, job_id: JobId) -> Response:
    """A job as JSON."""
    job = _jobs(request).job(job_id)
    if job is None:
        return JSONResponse({"error": "unknown job"}, status_code=404)
    return JSONResponse(job)


@router.get("/verify/{job_id}")
def job_page(request: Request, job_id: JobId) -> Response:
    """A job's progress (the page refreshes itself while it runs) and its report."""
    job = _jobs(request).job(job_id)
    if job is None:
        return render(request, "not_found.html", status_code=404, what=str(job_id))
    return render(request, "verify_job.html", job=job)
