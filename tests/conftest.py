import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

TOTO_TINY = "flake8_compile_safe.families.toto.factory:tiny"


@pytest.fixture(scope="session")
def toto_model_run(tmp_path_factory):
    """``compile-safe-validate --model <Toto's tiny factory> --path <toto-ts source>`` (analysis backend).

    Shared by the dynamo-grounding tests and the "--model gives the same counts as the family
    path" test; one worker run of the untouched Toto, about 30 s on 2 cores.
    """
    pytest.importorskip("torch", reason="needs torch (pip install flake8-compile-safe[validate])")
    from flake8_compile_safe.families.toto import fetch_toto

    src = fetch_toto()
    out = tmp_path_factory.mktemp("toto_model") / "toto.json"
    cmd = [sys.executable, "-m", "flake8_compile_safe.validate.cli", "--model", TOTO_TINY, "--path", str(src),
           "--backend", "analysis", "--warmup", "1", "--runs", "1", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert out.is_file(), f"no JSON (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    doc = json.loads(out.read_text())
    return {"src": src, "doc": doc, "proc": proc,
            "by": {(r["variant"], r["mode"]): r for r in doc["results"]}}
