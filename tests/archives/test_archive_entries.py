"""The entries a department computes from the bag it holds (sdk.archive_entries, read from
a directory, a zip or a tar) are the archive's own (archives.ingest.aip_entries over the
bag as bagit reads it), whatever the files, their names, the manifests the bag carries
and the tag files beside them; so the root it signs is the root the archive computes."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path

from archive_samples import make_sample_bag
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archives.bag_reader import read_bag
from archives.ingest import aip_entries, package_id_for
from archives.package import package_root
from sdk.archive_entries import parse_bag_info, read_bag_contents

NAMES = st.text(
    alphabet=st.characters(whitelist_categories=("L", "N"), whitelist_characters="-_·"),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=st.dictionaries(NAMES, st.binary(max_size=300), min_size=1, max_size=6),
    checksums=st.sampled_from([("sha256",), ("sha256", "sha512"), ("sm3",), ("md5", "sm3")]),
    tag_files=st.dictionaries(
        st.sampled_from(["items.csv", "notes.txt", "说明.txt"]), st.text(max_size=40), max_size=2
    ),
    code=st.integers(min_value=1, max_value=9999),
)
def test_the_department_computes_the_archives_entries(
    files: dict[str, bytes], checksums: tuple[str, ...], tag_files: dict[str, str], code: int
) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        bag = make_sample_bag(
            folder / "bag",
            {f"{n}.txt": data for n, data in files.items()},
            checksums=checksums,
            tag_files=tag_files,
            档号=f"J001-WS·2023-Y-BGS-{code:04d}",
        )
        reading = read_bag(bag)
        reading.require_valid()
        entries, _extra = aip_entries(reading)
        expected = sorted((e.path, e.sm3) for e in entries)
        package_id = package_id_for("J001", f"J001-WS·2023-Y-BGS-{code:04d}")
        zipped = Path(shutil.make_archive(str(folder / "bag"), "zip", folder, "bag"))
        tarred = folder / "bag.tar"
        with tarfile.open(tarred, "w") as archive:
            archive.add(bag, arcname="bag")
        for source in (bag, zipped, tarred):
            contents = read_bag_contents(source)
            assert sorted((e.path, e.sm3) for e in contents.entries) == expected, source
            assert contents.root == package_root(entries)
            assert contents.package_id == package_id


@given(
    st.dictionaries(
        NAMES,
        st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=30),
        max_size=5,
    )
)
def test_bag_info_parses_as_bagit_writes_it(tags: dict[str, str]) -> None:
    text = "".join(f"{name}: {value}\n" for name, value in tags.items())
    assert parse_bag_info(text) == {name: value.strip() for name, value in tags.items()}
