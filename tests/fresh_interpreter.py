"""Run code in a fresh Python interpreter (this test process has long imported PyTorch)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run_json(code: str) -> Any:
    """Run ``code`` with ``python -c``; its last printed line, parsed as JSON."""
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
