"""Settings for every test in the suite (here at the root, so that pytest puts the project
itself on the import path, not tests/, whose folders share names with its packages).
``tests/support`` holds modules that tests in several folders import (the fork server of the
SIGKILL tests); it is put on the import path here, its names shared with no package.

Hypothesis examples have no deadline: a deadline is a timing assertion, and on a busy
machine a first example that waits for the interpreter or the disk exceeds the default
200 ms and fails the test (``FlakyFailure: Unreliable test timings``) though its answer was
right. Runaway examples are still bounded by ``max_examples`` and by the tests' own
timeouts."""

import sys
from pathlib import Path

from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests" / "support"))

settings.register_profile("lianxin", deadline=None)
settings.load_profile("lianxin")
