"""A dev chain with a real registry process on it, and the credit and archive activity the
explorer's credit and archive pages prove: the registry's contracts bootstrapped, a
department (the test department of the registry tests) publishing a penalty through a
credit import, correcting it by a second import, stopping its publication, each event
signed with the department's key through the registry's routes (the SDK's CreditClient);
a withdrawal left unsigned (so one event is not on chain); and an archive package ingested
from a real bag (uploaded, signed by the department, custody events signed by the
registry), migrated to a second version by the department, audited for fixity by the
archive's own command, and disposed of, its retention period over. The explorer's own
registry client has the verify role only."""

from __future__ import annotations

import atexit
import datetime
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

_TESTS = Path(__file__).resolve().parent.parent
for extra in ("registry", "registry_credit", "credit", "archives", "e2e", "explorer"):
    if str(_TESTS / extra) not in sys.path:
        sys.path.insert(0, str(_TESTS / extra))

from archive_samples import make_sample_bag, standard_files  # noqa: E402
from chain_activity import DevChain, free_port, start_dev_chain  # noqa: E402
from credit_harness import penalty_file  # noqa: E402
from credit_tables import AUTHORITY_USCC, penalty_row  # noqa: E402
from registry_harness import (  # noqa: E402
    CLIENT_KEY,
    DEPARTMENT_USCC,
    bootstrap_trust,
    new_client,
    registry_environment,
    registry_settings,
    start_registry,
)

from archives.ingest import DisposalApproval  # noqa: E402
from archives.submission import sign_bag, sign_disposal, upload_headers  # noqa: E402
from chain.crypto import PrivateKey, sm3  # noqa: E402
from explorer.registry_feed import RegistryAccess, RegistryFeed  # noqa: E402
from registry.db import Database  # noqa: E402
from registry.settings import RegistrySettings  # noqa: E402
from sdk.chain_reader import ChainReader  # noqa: E402
from sdk.credit_client import CreditClient  # noqa: E402
from sdk.trust_core import signed_headers  # noqa: E402

__all__ = [
    "ARCHIVAL_CODE",
    "AUTHORITY_USCC",
    "DECISION",
    "RegistryScene",
    "make_scene",
    "registry_scene",
]

DECISION = "榕市监罚〔2023〕88号"
"""The 决定书文号 of the penalty the scene publishes."""
ARCHIVAL_CODE = "J001-WS·2010-D10-BGS-0088"
"""The 档号 of the package the scene ingests."""
PACKAGE_INFO = {"档号": ARCHIVAL_CODE, "形成时间": "2010", "保管期限": "10年"}
"""Its description: kept ten years from 2010, so its disposal is due."""
REGISTRY_START_S = 120.0
ANCHOR_TIMEOUT_S = 180.0
AUDITOR_KEY = PrivateKey.from_bytes(sm3(b"explorer tests: the explorer's registry client key"))


@dataclass
class RegistryScene:
    """The chain, the registry and what was done on them."""

    chain: DevChain
    registry_url: str
    auditor_client_id: str
    auditor_key_file: Path
    root: Path
    record_id: str = ""
    signed_kinds: tuple[str, ...] = ()
    """Credit event kinds signed (anchored), in order."""
    unsigned_kinds: tuple[str, ...] = ()
    """Credit event kinds left awaiting the department's signature."""

    def explorer_settings(self) -> dict[str, Any]:
        """The explorer's settings that name the registry."""
        return {
            "registry_url": self.registry_url,
            "registry_client_id": self.auditor_client_id,
            "registry_key_file": self.auditor_key_file,
        }

    def feed(self) -> RegistryFeed:
        """The explorer's registry client."""
        access = RegistryAccess.from_settings(
            self.registry_url, self.auditor_client_id, self.auditor_key_file
        )
        assert access is not None
        return RegistryFeed(access)


_scene: RegistryScene | None = None


def registry_scene() -> RegistryScene:
    """The scene of the module docstring, made once per process; its node and registry are
    killed when the process exits."""
    global _scene
    if _scene is None:
        root = Path(tempfile.mkdtemp(prefix="lianxin-explorer-registry-"))
        atexit.register(shutil.rmtree, root, True)
        chain = start_dev_chain(root / "chain")
        atexit.register(chain.kill_leftovers)
        _scene = make_scene(chain, root)
    return _scene


def _start_registry(
    settings: RegistrySettings, root: Path
) -> tuple[str, subprocess.Popen[bytes], dict[str, str]]:
    port = free_port()
    environment = registry_environment(settings) | {
        "LIANXIN_REGISTRY_PORT": str(port),
        "LIANXIN_ARCHIVES_STORE_DIR": str(root / "archive-store"),
        "LIANXIN_ARCHIVES_PROCESSES": "1",
    }
    process = start_registry(environment, root / "registry.log", REGISTRY_START_S)
    atexit.register(_stop, process)
    return f"http://127.0.0.1:{port}", process, environment


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def _post(url: str, client_id: str, key: PrivateKey, path: str, payload: Any) -> Any:
    import json

    body = json.dumps(payload, ensure_ascii=False).encode()
    headers = signed_headers(key, client_id=client_id, method="POST", path=path, body=body)
    answer = httpx.post(
        url + path,
        content=body,
        headers=headers | {"Content-Type": "application/json"},
        timeout=120,
    )
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def _upload(url: str, client_id: str, work: Path, name: str, files: Any = None) -> tuple[str, Path]:
    """A bag zipped and streamed to the registry's spool: its upload id and the zip."""
    bag = make_sample_bag(work / name / "bag", files, **PACKAGE_INFO)
    archive = Path(shutil.make_archive(str(work / name / "bag"), "zip", bag.parent, "bag"))
    headers = upload_headers(CLIENT_KEY, client_id, archive)
    uploaded = httpx.post(
        url + "/v1/archives/uploads", content=archive.read_bytes(), headers=headers, timeout=120
    )
    assert uploaded.status_code == 201, uploaded.text
    return str(uploaded.json()["upload"]), archive


def _ingest_and_migrate(url: str, client_id: str, chain_id: int, work: Path) -> dict[str, Any]:
    """Ingest the package, then migrate one of its files (version 2), both signed by the
    department; its id and the roots of its versions."""
    upload, archive = _upload(url, client_id, work, "ingest")
    submission = sign_bag(archive, CLIENT_KEY, chain_id, work / "ingest" / "scratch")
    ingested = _post(
        url,
        client_id,
        CLIENT_KEY,
        "/v1/archives/packages",
        {"upload": upload, "records": submission.records},
    )
    files = standard_files()
    files["0004.txt"] = "关于印发某区档案工作要点的通知（UTF-8）\n".encode()
    upload, archive = _upload(url, client_id, work, "migration", files)
    signed = sign_bag(archive, CLIENT_KEY, chain_id, work / "migration" / "scratch", version=2)
    migrated = _post(
        url,
        client_id,
        CLIENT_KEY,
        f"/v1/archives/packages/{ingested['packageId']}/migrations",
        {
            "upload": upload,
            "tool": "iconv",
            "toolVersion": "2.36",
            "parameters": {"to": "UTF-8"},
            "records": signed.records,
        },
    )
    return {"packageId": ingested["packageId"], "roots": [ingested["root"], migrated["root"]]}


def _dispose(url: str, client_id: str, chain_id: int, package: dict[str, Any]) -> None:
    """Dispose of the package, its retention period over, as the appraisal committee
    approved and the owning department signed."""
    approval = DisposalApproval(
        "鉴销〔2026〕88号",
        "档案鉴定委员会",
        datetime.datetime(2026, 5, 20, 9, 0, tzinfo=datetime.UTC),
        "保管期限届满",
    ).to_json()
    records = sign_disposal(CLIENT_KEY, chain_id, package["packageId"], approval, package["roots"])
    _post(
        url,
        client_id,
        CLIENT_KEY,
        f"/v1/archives/packages/{package['packageId']}/disposal",
        {"approval": approval, "records": records},
    )


def _audit(environment: dict[str, str], root: Path) -> None:
    """A fixity audit of every stored package, run as the archive's own command."""
    done = subprocess.run(
        [sys.executable, "-m", "registry.archives.cli", "audit"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _all_anchored(feed: RegistryFeed) -> bool:
    credit = feed.credit_history(AUTHORITY_USCC, DECISION)
    archive = feed.archive_history(ARCHIVAL_CODE)
    records = [e["record"] for e in credit["events"] if e["record"] is not None]
    records += [e["record"] for e in archive["events"] + archive["versions"]]
    return all(r is not None and r["status"] == "anchored" for r in records)


def make_scene(chain: DevChain, root: Path) -> RegistryScene:
    """The registry and its activity of the module docstring on a running ``chain``, its
    files under ``root`` (the registry process is stopped when this process exits). The
    chain's IssuerRegistry of the registry's own bootstrap registers the test department's
    USCC: a chain with :func:`chain_activity.make_activity` done needs that run under
    another USCC."""
    trust = bootstrap_trust(chain, root / "bootstrap")
    settings = registry_settings(trust, root / "registry", None, max_upload_bytes=4 * 1024 * 1024)
    db = Database.open(settings)
    department, _ = new_client(db, ("credit", "notarize", "verify"))
    auditor, _ = new_client(
        db, ("verify",), key=AUDITOR_KEY, uscc=DEPARTMENT_USCC, name="链信浏览器（审计）"
    )
    db.close()
    key_file = root / "explorer-registry-key.pem"
    key_file.write_bytes(AUDITOR_KEY.to_pem())
    url, _process, environment = _start_registry(settings, root)
    scene = RegistryScene(
        chain=chain,
        registry_url=url,
        auditor_client_id=auditor.id,
        auditor_key_file=key_file,
        root=root,
    )
    credit = CreditClient(url, department.id, CLIENT_KEY, retries=0)
    decided = datetime.date.today() - datetime.timedelta(days=30)
    row = penalty_row(decision_number=DECISION, decision_date=decided.isoformat())
    credit.import_file(penalty_file([row]))
    credit.sign_pending()
    credit.import_file(penalty_file([{**row, "content": "罚款人民币叁万元", "fine_wan": "3"}]))
    credit.sign_pending()
    feed = scene.feed()
    try:
        (record,) = feed.credit_history(AUTHORITY_USCC, DECISION)["records"]
        scene.record_id = str(record["id"])
        credit.stop_publishing(scene.record_id, "当事人已履行全部义务")
        credit.sign_pending()
        scene.signed_kinds = ("publish", "correct", "stop_publishing")
        credit.withdraw(scene.record_id, "行政复议撤销原决定")
        scene.unsigned_kinds = ("withdraw",)
        with ChainReader(chain.url) as reader:
            chain_id = reader.chain_id()
        package = _ingest_and_migrate(url, department.id, chain_id, root / "archive")
        _audit(environment, root)
        _dispose(url, department.id, chain_id, package)
        deadline = time.monotonic() + ANCHOR_TIMEOUT_S
        while not _all_anchored(feed):
            assert time.monotonic() < deadline, "the registry did not anchor the events"
            time.sleep(0.5)
    finally:
        feed.close()
    return scene
