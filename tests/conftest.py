import os
import sys
from pathlib import Path

from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

# CI explores the same examples on every run (a green main stays green); a developer's runs
# explore new ones, and FUZZ_EXAMPLES widens the reader's fuzzing.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
