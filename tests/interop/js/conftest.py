import sys
from pathlib import Path

# The shared test helpers (real node, real server) live in tests/.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
