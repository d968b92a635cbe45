"""Run every benchmark in turn: `python -m bench`."""

import importlib
import pkgutil
import sys
from pathlib import Path

for module in sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_")):
    print(f"\n### {module}\n", flush=True)
    sys.argv = [module]
    importlib.import_module(f"bench.{module}").main()
