"""``lianxin credit …``: a department's public-credit commands, a client of the registry's
``/v1/credit`` API through :class:`sdk.credit_client.CreditClient` (run as its own process:
``python -m registry.credit.cli``).

- ``import FILE``: the file is first validated here, row by row, with a progress bar (a
  file with problems is refused before anything is sent, unless ``--valid-rows``), then
  uploaded, and the events it made are signed with the department's key (progress bar);
- ``report SUBJECT -o FILE``: issue a credit report (信用报告), write its PDF, and sign the
  event that anchors it (with the department's other pending events);
- ``report-check FILE``: whether a PDF is exactly an issued report (exit status 0 if so);
- ``repair apply|own|decide|overdue``: credit repair (``own``: an enterprise files for
  its own record, signing the terms with its own key).

Events are signed with one signature over the Merkle root of their commitments, unless
``--per-event-signatures``.

The registry, the client id and the department's key (PEM) come from options or the
environment (``LIANXIN_REGISTRY_URL``, ``LIANXIN_CLIENT_ID``, ``LIANXIN_CLIENT_KEY_FILE``).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chain.crypto import PrivateKey
from credit.errors import ImportFileError
from credit.importing import TableFormat, validate_file
from credit.report import ReportKind
from sdk.credit_client import CreditClient, CreditImportRejected
from sdk.credit_subject import CreditSubjectClient
from sdk.trust_types import RegistryError

app = typer.Typer(help="Public credit (公共信用信息) of a department.", no_args_is_help=True)
repair_app = typer.Typer(help="Credit repair (信用修复).", no_args_is_help=True)
app.add_typer(repair_app, name="repair")
console = Console(stderr=True)

RegistryUrl = Annotated[
    str, typer.Option(envvar="LIANXIN_REGISTRY_URL", help="the registry's base URL")
]
ClientId = Annotated[str, typer.Option(envvar="LIANXIN_CLIENT_ID", help="registered client id")]
KeyFile = Annotated[
    Path,
    typer.Option(envvar="LIANXIN_CLIENT_KEY_FILE", help="the department's SM2 key (PEM)"),
]

PerEvent = Annotated[
    bool, typer.Option("--per-event-signatures", help="sign each event alone, not all at once")
]

MAX_REPORT_LINES = 20
"""Issues printed from a report (the JSON output has them all)."""


def _client(url: str, client_id: str, key_file: Path) -> CreditClient:
    try:
        key = PrivateKey.from_pem(key_file.read_bytes())
    except (OSError, ValueError) as error:
        raise typer.BadParameter(f"cannot read the key: {error}") from error
    return CreditClient(url, client_id, key, timeout=300.0)


def _print_issues(report: dict[str, Any]) -> None:
    table = Table("row", "column", "value", "reason", "detail", title="rejected rows")
    for issue in report.get("issues", [])[:MAX_REPORT_LINES]:
        table.add_row(
            str(issue["row"]),
            issue["column"],
            str(issue["value"] or ""),
            issue["reason"],
            issue["detail"],
        )
    console.print(table)
    total = report.get("issues_total", 0)
    if total > MAX_REPORT_LINES:
        console.print(f"… and {total - MAX_REPORT_LINES} more")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or XLSX")],
    registry_url: RegistryUrl = "http://127.0.0.1:8600",
    client_id: ClientId = "",
    key_file: KeyFile = Path("client-key.pem"),
    valid_rows: Annotated[
        bool, typer.Option(help="import the valid rows, anchor the report of the others")
    ] = False,
    rule_set: Annotated[str | None, typer.Option(help="rule set id of the windows")] = None,
    sign: Annotated[bool, typer.Option(help="sign the events it makes")] = True,
    per_event: PerEvent = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Validate FILE here, upload it, and sign the events it made."""
    table_format = TableFormat.XLSX if file.suffix.lower() in (".xlsx", ".xlsm") else None
    with _progress() as progress:
        task = progress.add_task("validating", total=None)
        try:
            report = validate_file(
                file,
                table_format=table_format,
                progress=lambda _phase, rows: progress.update(task, completed=rows),
            )
        except ImportFileError as error:
            console.print(f"[red]not a 双公示 table:[/red] {error}")
            raise typer.Exit(2) from None
        progress.update(task, total=report.rows_read, completed=report.rows_read)
    if not report.ok and not valid_rows:
        console.print(f"[red]{report.issues_total} problem(s); nothing was sent[/red]")
        _print_issues(
            {
                "issues": [vars(issue) | {"reason": issue.reason.value} for issue in report.issues],
                "issues_total": report.issues_total,
            }
        )
        raise typer.Exit(1)
    client = _client(registry_url, client_id, key_file)
    try:
        with console.status("uploading"):
            summary = client.import_file(
                file,
                mode="valid_rows" if valid_rows else "all_or_nothing",
                rule_set=rule_set,
            )
        signed = _sign_all(client, per_event=per_event) if sign else 0
    except CreditImportRejected as refused:
        console.print(f"[red]refused by the registry:[/red] {refused.message}")
        _print_issues(refused.report)
        raise typer.Exit(1) from None
    except RegistryError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    finally:
        client.close()
    result = {
        "published": summary.published,
        "corrected": summary.corrected,
        "unchanged": summary.unchanged,
        "rejected": summary.report.get("rows_rejected", 0),
        "report_hash": summary.report_hash,
        "signed_events": signed,
    }
    _summary(result, as_json=as_json)


def _summary(result: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
    else:
        for name, value in result.items():
            console.print(f"{name}: {value}")


def _sign_all(client: CreditClient, *, per_event: bool = False) -> int:
    """Sign every pending event, with a progress bar; the number signed."""
    with _progress() as progress:
        task = progress.add_task("signing events", total=None)
        signed = client.sign_pending(
            lambda count: progress.update(task, completed=count), per_event=per_event
        )
    return len(signed)


def _instant(text: str | None) -> datetime.datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 instant: {text!r}") from None
    if moment.tzinfo is None:
        raise typer.BadParameter("give the instant with its zone, e.g. 2024-05-01T00:00+08:00")
    return moment


@app.command("report")
def report_command(
    subject: Annotated[str, typer.Argument(help="the subject's USCC, or a resident ID number")],
    output: Annotated[
        Path, typer.Option("--output", "-o", dir_okay=False, help="where to write the PDF")
    ] = Path("credit-report.pdf"),
    subject_name: Annotated[str, typer.Option(help="shown if it has no record")] = "",
    purpose: Annotated[str, typer.Option(help="what the report is for")] = "",
    at: Annotated[
        str | None, typer.Option(help="the instant it speaks of (ISO 8601 with zone; now)")
    ] = None,
    kind: Annotated[ReportKind, typer.Option(help="the kind of report")] = ReportKind.SPECIAL,
    sign: Annotated[bool, typer.Option(help="sign the event that anchors it")] = True,
    per_event: PerEvent = False,
    registry_url: RegistryUrl = "http://127.0.0.1:8600",
    client_id: ClientId = "",
    key_file: KeyFile = Path("client-key.pem"),
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Issue a credit report of SUBJECT, write its PDF, and sign the event anchoring it."""
    moment = _instant(at)
    client = _client(registry_url, client_id, key_file)
    try:
        with console.status("issuing the report"):
            issued = client.report(
                subject, subject_name=subject_name, at=moment, purpose=purpose, kind=kind.value
            )
        output.write_bytes(issued.pdf)
        signed = _sign_all(client, per_event=per_event) if sign else 0
    except RegistryError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    except OSError as error:
        console.print(f"[red]cannot write {output}: {error}[/red]")
        raise typer.Exit(1) from None
    finally:
        client.close()
    result = {
        "report_id": issued.report_id,
        "pdf": str(output),
        "pdf_sm3": issued.pdf_sm3,
        "verify_url": issued.verify_url,
        "signed_events": signed,
    }
    _summary(result, as_json=as_json)


@app.command("report-check")
def report_check_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="the PDF")],
    report_id: Annotated[str | None, typer.Option(help="the report it should be")] = None,
    registry_url: RegistryUrl = "http://127.0.0.1:8600",
    client_id: ClientId = "",
    key_file: KeyFile = Path("client-key.pem"),
) -> None:
    """Whether FILE is exactly an issued credit report: prints the answer as JSON; exit
    status 0 if genuine, 1 if not."""
    client = _client(registry_url, client_id, key_file)
    try:
        check = client.verify_report(file.read_bytes(), report_id)
    except RegistryError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    finally:
        client.close()
    _show(vars(check))
    if not check.genuine:
        raise typer.Exit(1)


def _show(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _call(url: str, client_id: str, key_file: Path, action: Any) -> None:
    client = _client(url, client_id, key_file)
    try:
        _show(action(client))
    except RegistryError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    finally:
        client.close()


@repair_app.command("apply")
def repair_apply(
    record_id: Annotated[str, typer.Argument(help="the record's id (64 hex digits)")],
    subject: Annotated[str, typer.Option(help="the subject's USCC or identity number")],
    evidence: Annotated[str, typer.Option(help="what shows the failure corrected")],
    obligations_fulfilled: Annotated[bool, typer.Option(help="fines paid, orders obeyed")],
    registry_url: RegistryUrl = "http://127.0.0.1:8600",
    client_id: ClientId = "",
    key_file: KeyFile = Path("client-key.pem"),
) -> None:
    """File a subject's repair application for one of its records."""
    _call(
        registry_url,
        client_id,
        key_file,
        lambda client: client.apply_repair(
            record_id, subject, evidence, obligations_fulfilled=obligations_fulfilled
        ),
    )


@repair_app.command("own")
def repair_own(
    record_id: Annotated[str, typer.Argument(help="the record's id (64 hex digits)")],
    uscc: Annotated[str, typer.Option(help="the enterprise's own USCC (its client's)")],
    evidence: Annotated[str, typer.Option(help="what shows the failure corrected")],
    obligations_fulfilled: Annotated[bool, typer.Option(help="fines paid, orders obeyed")],
    registry_url: RegistryUrl = "http://127.0.0.1:8600",
    client_id: ClientId = "",
    key_file: KeyFile = Path("client-key.pem"),
) -> None:
    """As an enterprise (client role ``subject``): file the repair application for one of
    its own records, the terms signed with the client's key."""
    try:
        key = PrivateKey.from_pem(key_file.read_bytes())
    except (OSError, ValueError) as error:
        raise typer.BadParameter(f"cannot read the key: {error}") from error
    client = CreditSubjectClient(registry_url, client_id, key, timeout=300.0)
    try:
        _show(
            client.file_own_repair(
                uscc, record_id, evidence, obligations_fulfilled=obligations_fulfilled
            )
        )
    except RegistryError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    finally:
        client.close()


@repair_app.command("decide")
def repair_decide(
    application_id: Annotated[str, typer.Argument(help="the application's id")],
    approve: Annotated[bool, typer.Option("--approve/--reject", help="the decision")],
    reason: Annotated[str, typer.Option(help="why, shown to the subject")],
    sign: Annotated[bool, typer.Option(help="sign the events an approval makes")] = True,
    registry_url: RegistryUrl = "http://127.0.0.1:8600",
    client_id: ClientId = "",
    key_file: KeyFile = Path("client-key.pem"),
) -> None:
    """Approve (the record leaves public display at once) or reject an application."""

    def decide(client: CreditClient) -> Any:
        decided = client.decide_repair(application_id, approve=approve, reason=reason)
        if sign:
            decided["signed_events"] = len(client.sign_pending())
        return decided

    _call(registry_url, client_id, key_file, decide)


@repair_app.command("overdue")
def repair_overdue(
    registry_url: RegistryUrl = "http://127.0.0.1:8600",
    client_id: ClientId = "",
    key_file: KeyFile = Path("client-key.pem"),
) -> None:
    """Applications past their deadline without a decision."""
    _call(registry_url, client_id, key_file, lambda client: client.overdue_repairs())


def main() -> None:
    """Entry point of ``python -m registry.credit.cli``."""
    app()


if __name__ == "__main__":
    main()
