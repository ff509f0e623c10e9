"""``import cljax`` and the ``cljax`` parser stay light: no flax, TFDS, orbax or matplotlib
until a vision run needs them."""

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("flax", "tensorflow_datasets", "orbax", "matplotlib", "PIL", "tensorflow")


def test_import_cljax_and_the_parser_import_no_heavy_package():
    root = Path(__file__).resolve().parents[3]
    code = ("import json, sys, cljax, cljax.cli; cljax.cli.build_parser(); "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(root),
                                                       "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
