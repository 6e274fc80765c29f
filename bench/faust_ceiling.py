"""The bare Faust agent's rate in a throw-away namespace (see `engine.bench.faust_ceiling`).

.venv/bin/python bench/faust_ceiling.py --events 100000
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.bench.faust_ceiling import main  # noqa: E402 - after the checkout is on the path

if __name__ == "__main__":
    sys.argv.append("--fill")
    main()
