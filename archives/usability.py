"""Proof that a preserved file actually opens (DA/T 70 可用性): PDFs parsed with ``pypdf``
(every page's tree read), OFD's zip structure checked and ``OFD.xml`` with its document
root parsed through ``defusedxml`` (no entities, no external references), images decoded by
Pillow within a pixel budget, XML parsed, text decoded.

**What bounds a reading.** The bytes come from whoever filled the package, so every reader
but text's runs in a child process of its own, under :data:`READ_SECONDS` of wall-clock
time and :data:`READ_ADDRESS_SPACE` of memory (``RLIMIT_AS``), and what ends it early is
the file's answer: a file that takes longer, needs more, or kills its reader does not open.
The children are forked, one per file, from a reading process that each process using this
module starts once: a fresh interpreter with pypdf and Pillow imported, never a fork of a
caller that may run threads. Reading a file so costs some 10 ms more than reading it in the
caller; a fresh interpreter for each file would cost 150-300 ms.

**What bounds a package's reading.** The files of one package are read within a
:class:`ReadingBudget` (:data:`READ_BUDGET_SECONDS` unless told, counted from when its
files start being read, shared by the processes reading them): each file within the least
of :data:`READ_SECONDS` and what is left of it. A file still being read when it runs out
is cut there, the files after it are not read, and each of them is not checked
(:class:`BudgetSpent`): neither found to open nor found not to.

Within that, each reader keeps its own bounds, which give the answer a cause:

- PDF: pypdf's (``pypdf.Configuration``: 75,000,000 bytes per decoded stream, a page tree
  at most 100 deep with 100,000 entries, cycles refused) and :data:`MAX_PDF_PAGES`. Walking
  the page tree decodes the object streams the pages are in, never a content stream. pypdf
  bounds neither the time a file takes (it scans an object stream's white space a byte at
  a time: some 8 s per 64 MiB) nor the sum of the object streams it decodes and keeps: the
  reading process's limits do. Its warnings (it reads a non-compliant file by repairing
  it, and says so) are counted into the answer. An encrypted PDF does not pass, even one
  that opens without a password: PDF/A (ISO 19005) forbids encryption in an archived file.
- OFD: :data:`MAX_OFD_MEMBERS`, :data:`MAX_XML_BYTES` per part, each part inflated no
  further than the size it declares, stored or deflated only.
- Images: :data:`MAX_IMAGE_PIXELS`, checked from the header before anything is decoded;
  the first frame only.
"""

from __future__ import annotations

from pathlib import Path

from archives.file_readers import (
    MAX_IMAGE_PIXELS,
    MAX_OFD_MEMBERS,
    MAX_PDF_PAGES,
    MAX_XML_BYTES,
    OPENERS,
    NotUsable,
    open_text,
)
from archives.formats import FormatIdentity
from archives.reading_process import (
    READ_ADDRESS_SPACE,
    READ_BUDGET_SECONDS,
    READ_SECONDS,
    BudgetSpent,
    ReadingBudget,
    read_elsewhere,
)

__all__ = [
    "MAX_IMAGE_PIXELS",
    "MAX_OFD_MEMBERS",
    "MAX_PDF_PAGES",
    "MAX_XML_BYTES",
    "READ_ADDRESS_SPACE",
    "READ_BUDGET_SECONDS",
    "READ_SECONDS",
    "BudgetSpent",
    "NotUsable",
    "ReadingBudget",
    "open_file",
    "open_scanned",
]


def open_scanned(
    path: Path,
    identity: FormatIdentity,
    *,
    holds_nul: bool,
    budget: ReadingBudget | None = None,
) -> str:
    """:func:`open_file` for a file already read once, knowing whether it holds a NUL byte:
    a text file is not read again (its answer is known, whatever is left of ``budget``)."""
    if identity.format == "txt":
        if holds_nul:
            raise NotUsable("text holds NUL bytes")
        return "text read"
    return open_file(path, identity, budget=budget)


def open_file(path: Path, identity: FormatIdentity, *, budget: ReadingBudget | None = None) -> str:
    """Open ``path`` as its identified format (text here, the rest in a child of the
    reading process: see the module's docstring), within what is left of ``budget``, the
    reading budget of the package it is in, if given; returns what was read, raises
    NotUsable, BudgetSpent (not checked), or OSError if no reading process can be
    started."""
    if identity.format == "txt":
        if budget is not None:
            budget.check()
        return open_text(path)
    if identity.format not in OPENERS:
        raise NotUsable(f"no reader for format {identity.format}")
    return read_elsewhere(identity.format, path, budget)
