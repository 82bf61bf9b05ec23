"""marian_venv.py: the Python environment of the developer-run Marian scripts.

marian_fixture.py and marian_speed.py run inside one venv with pinned torch,
transformers and sentencepiece, at "${TARJAMA_HOME:-$HOME/.cache/tarjama}/marian-fixture-venv".
`enter()` re-executes the calling script with that venv's python, creating the venv
first (pip install of PINS) when asked to.
"""

import os
import subprocess
import sys
from pathlib import Path

PINS = {
    "torch": "2.5.1",
    "transformers": "4.46.3",
    "tokenizers": "0.20.3",
    "sentencepiece": "0.2.0",
    "safetensors": "0.4.5",
    "numpy": "1.26.4",
}

REPO = Path(__file__).resolve().parent.parent
TARJAMA_HOME = Path(os.environ.get("TARJAMA_HOME", Path.home() / ".cache" / "tarjama"))
VENV = TARJAMA_HOME / "marian-fixture-venv"
VENV_PY = VENV / "bin" / "python"


def works() -> bool:
    """Whether the venv imports the pinned transformers and torch."""
    if not VENV_PY.exists():
        return False
    probe = (
        "import sys, torch, transformers, sentencepiece, safetensors, numpy\n"
        "ok = transformers.__version__ == sys.argv[1] and torch.__version__.split('+')[0] == sys.argv[2]\n"
        "sys.exit(0 if ok else 1)\n"
    )
    r = subprocess.run(
        [str(VENV_PY), "-c", probe, PINS["transformers"], PINS["torch"]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return r.returncode == 0


def enter(script: str, create: bool) -> None:
    """Re-executes `script` inside the venv unless already there."""
    if VENV.exists() and Path(sys.prefix).resolve() == VENV.resolve():
        return
    name = Path(script).stem
    if not works():
        if not create:
            sys.exit(f"{name}: no working venv at {VENV}; run `python3 scripts/marian_fixture.py --check` once to create it")
        print(f"{name}: creating venv {VENV} with {PINS} (several GB, a few minutes)", file=sys.stderr)
        TARJAMA_HOME.mkdir(parents=True, exist_ok=True)
        if not VENV_PY.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV_PY), "-m", "pip", "install", "--progress-bar", "off"]
            + [f"{package}=={version}" for package, version in PINS.items()],
            check=True,
        )
        if not works():
            sys.exit(f"{name}: the venv {VENV} does not import the pinned versions; remove it and retry")
    os.execv(str(VENV_PY), [str(VENV_PY), str(Path(script).resolve())] + sys.argv[1:])
