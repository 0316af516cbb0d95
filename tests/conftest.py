"Make the checkout importable (also uninstalled) and rendering headless for the integration tests."
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_collection_modifyitems(items):
    "Start the tests marked `slow` first, so that the two workers of `pytest -n 2` (`make test`) end close together."
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
