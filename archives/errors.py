"""The archive domain's errors: one base, one subclass per way a package is refused. Each
carries a stable ``code`` (what a caller branches on) and its message says why."""

from __future__ import annotations


class ArchiveError(Exception):
    """Base of every error of :mod:`archives`."""

    code = "archive_error"


class UnsafeArchive(ArchiveError):
    """A zip or tar submission that could escape or exhaust the extraction directory: a path
    outside it, a link or device, too many members, too many bytes."""

    code = "unsafe_archive"


class BagUnreadable(ArchiveError):
    """Not a BagIt bag at all: no bagit.txt, an unsupported version or encoding, a manifest
    naming a path outside the bag. Nothing more can be checked."""

    code = "bag_unreadable"


class BagInvalid(ArchiveError):
    """A bag that opens but does not validate; ``problems`` names each failure."""

    code = "bag_invalid"

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message if not problems else f"{message}: {'; '.join(problems)}")
        self.problems = problems


class DescriptionInvalid(ArchiveError):
    """bag-info.txt lacks an archival description field or holds a value out of range."""

    code = "description_invalid"


class ClassifiedMaterial(ArchiveError):
    """The package is marked as classified (秘密, 机密, 绝密): this system holds only
    non-classified material and refuses it before storing anything."""

    code = "classified_material"


class PackageExists(ArchiveError):
    """A write-once package version that exists already."""

    code = "package_exists"


class PackageNotFound(ArchiveError):
    """No stored package (or version) under that id."""

    code = "package_not_found"


class CustodyError(ArchiveError):
    """A custody event that cannot follow the package's history (a disposal without
    approval, an event after disposal, a broken hash link)."""

    code = "custody_error"


class CheckpointError(ArchiveError):
    """An audit checkpoint that belongs to another audit or is damaged."""

    code = "checkpoint_error"


class AuditInterrupted(ArchiveError):
    """An audit stopped before its end when asked to; its checkpoint stays, and the next
    audit continues from it."""

    code = "audit_interrupted"


class AuditBusy(ArchiveError):
    """Another audit of the same store is running (its lock is held)."""

    code = "audit_busy"
