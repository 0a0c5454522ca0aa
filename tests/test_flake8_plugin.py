"""The plugin as users run it: real flake8, in a subprocess, on files on disk."""

import re

from helpers import run_flake8, write_project

MODEL = '''\
import torch


class M(torch.nn.Module):
    def forward(self, t):
        a = t.item()
        b = t.item()  # noqa: TCS002
        return a + b
'''


def test_plugin_is_registered():
    result = run_flake8("--version")
    assert "flake8-compile-safe" in result.stdout


def test_reports_with_path_line_and_code_and_honours_noqa(tmp_path):
    write_project(tmp_path, {"pkg/__init__.py": "", "pkg/model.py": MODEL})
    result = run_flake8("--select=TCS", "pkg", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    assert re.match(r"pkg/model\.py:6:\d+: TCS002 `t\.item\(\)` copies a tensor value to the host: "
                    r"a graph break, then a recompile per value \[M\.forward\]$", lines[0])
    explained = run_flake8("--select=TCS", "--compile-safe-explain", "pkg", cwd=tmp_path).stdout.splitlines()
    assert explained[0].startswith(lines[0] + "; ") and "; fix: " in explained[0]


def test_clean_code_exits_zero(tmp_path):
    write_project(tmp_path, {"m.py": "import torch\n\n\nclass M(torch.nn.Module):\n"
                                     "    def forward(self, t):\n        return t * 2\n"})
    result = run_flake8("--select=TCS", ".", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "")


def test_bad_input_is_reported_and_other_files_still_linted(tmp_path):
    write_project(tmp_path, {"pkg/__init__.py": "", "pkg/model.py": MODEL,
                             "pkg/broken.py": "def broken(:\n    pass\n"})
    (tmp_path / "pkg" / "latin.py").write_bytes(b"# no cookie\nname = 'caf\xe9'\n")
    result = run_flake8("--select=TCS", "pkg", "missing.py", cwd=tmp_path)
    out = result.stdout
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + out
    assert re.search(r"^missing\.py:0:1: E902 .*No such file", out, re.M)
    assert re.search(r"^pkg/broken\.py:1:\d+: E999 SyntaxError", out, re.M)
    assert re.search(r"^pkg/latin\.py:1:1: TCS900 file not analysed: not valid utf-8: byte 0xe9 at line 2", out, re.M)
    assert re.search(r"^pkg/model\.py:6:\d+: TCS002", out, re.M)


def test_parallel_jobs_give_the_same_result(tmp_path):
    files = {"pkg/__init__.py": ""}
    for i in range(6):
        files[f"pkg/m{i}.py"] = MODEL.replace("class M(", f"class M{i}(")
    write_project(tmp_path, files)
    serial = run_flake8("--select=TCS", "--jobs=1", "pkg", cwd=tmp_path)
    parallel = run_flake8("--select=TCS", "--jobs=2", "pkg", cwd=tmp_path)
    assert sorted(serial.stdout.splitlines()) == sorted(parallel.stdout.splitlines())
    assert len(serial.stdout.splitlines()) == 6


CROSS_FILE = {
    "pkg/__init__.py": "",
    "pkg/ops.py": "def read(t):\n    return t.item()\n",
    "pkg/model.py": "import torch\nfrom pkg.ops import read\n\n\nclass M(torch.nn.Module):\n"
                    "    def forward(self, t):\n        return read(t)\n",
}


def test_linting_one_file_uses_the_whole_project(tmp_path):
    write_project(tmp_path, CROSS_FILE)
    result = run_flake8("--select=TCS", "--compile-safe-explain", "pkg/ops.py", cwd=tmp_path)
    assert "pkg/ops.py:2:12: TCS002" in result.stdout
    assert "reached from M.forward -> read" in result.stdout


def test_root_options_from_command_line_and_config(tmp_path):
    write_project(tmp_path, {"lib/ops.py": "def decode(t):\n    return t.item()\n"})
    assert run_flake8("--select=TCS", "lib", cwd=tmp_path).stdout == ""
    cli = run_flake8("--select=TCS", "--compile-safe-roots=ops.decode", "lib", cwd=tmp_path)
    assert "lib/ops.py:2:12: TCS002" in cli.stdout
    (tmp_path / "setup.cfg").write_text("[flake8]\ncompile-safe-roots = decode\n")
    assert "TCS002" in run_flake8("--select=TCS", "lib", cwd=tmp_path).stdout


def test_explicit_project_root(tmp_path):
    # pkg/ has its own marker, so by default its project is pkg/ alone and app/ is not indexed;
    # --compile-safe-root widens the project to the folder above both.
    project = tmp_path / "a" / "b"
    write_project(project, {"pkg/__init__.py": "", "pkg/setup.cfg": "", "pkg/ops.py": CROSS_FILE["pkg/ops.py"],
                            "app/model.py": CROSS_FILE["pkg/model.py"]})
    target = str(project / "pkg" / "ops.py")
    assert run_flake8("--select=TCS", target).stdout == ""
    result = run_flake8("--select=TCS", f"--compile-safe-root={project}", target)
    assert "ops.py:2:12: TCS002" in result.stdout


def test_linter_never_imports_torch(tmp_path):
    write_project(tmp_path, CROSS_FILE)
    code = ("import sys; from flake8.main.cli import main\n"
            "try:\n    main(['--select=TCS', '--exit-zero', 'pkg'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'libcst' not in sys.modules, 'linter imported torch/libcst'\n")
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "TCS002" in result.stdout


# The project analysis runs beside flake8's checks (deferral.py): each analysed file is answered
# with a placeholder that flake8's main process swaps for the file's findings before reporting.
SWAP_PROBE = '''\
import os
import sys
from flake8.main.cli import main
from flake8_compile_safe import analysis, deferral
build = analysis._build_report
def logged_build(*args, **kwargs):  # every whole-project analysis, in whichever process
    with open("builds.log", "a") as log:
        log.write(f"{os.getpid()}\\n")
    return build(*args, **kwargs)
analysis._build_report = logged_build
if sys.argv[1] == "off":
    deferral._installed = False  # as where flake8's internals differ: analyse first, as before
swapped = []
swap = deferral._swap
def counted_swap(entry):
    out = swap(entry)
    if out is not entry:
        swapped.append(entry[0])
    return out
deferral._swap = counted_swap
try:
    main(sys.argv[2:])
except SystemExit:
    pass
print("swapped", sorted(swapped), file=sys.stderr)
'''


def _probe(tmp_path, mode: str, *args: str):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", SWAP_PROBE, mode, *args], cwd=tmp_path,
                            capture_output=True, text=True)
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout.splitlines(), result.stderr


def test_findings_are_swapped_in_before_flake8_reports_and_match_the_analyse_first_path(tmp_path):
    write_project(tmp_path, {**CROSS_FILE, "pkg/skipped.py": "# flake8: noqa\n" + CROSS_FILE["pkg/ops.py"],
                             "pkg/broken.py": "def broken(:\n    pass\n",
                             "pkg/quiet.py": MODEL.replace("class M(", "class Q(")})
    for jobs in ("--jobs=1", "--jobs=2"):
        args = ("--select=TCS,E9", jobs, "--compile-safe-no-cache", "pkg")
        beside, log = _probe(tmp_path, "on", *args)
        first, log_first = _probe(tmp_path, "off", *args)
        assert sorted(beside) == sorted(first), (beside, first)
        # flake8 ran no check on skipped.py (file-level noqa) nor on broken.py (E999): no placeholder,
        # so no TCS finding; the noqa on quiet.py's second item() still applies after the swap.
        assert sorted(line.split(":")[0] + ":" + line.split(": ")[1].split()[0] for line in beside) == [
            "pkg/broken.py:E999", "pkg/model.py:TCS002", "pkg/ops.py:TCS002", "pkg/quiet.py:TCS002"]
        assert "TCS000" not in "\n".join(beside)
        assert "swapped ['pkg/__init__.py', 'pkg/model.py', 'pkg/ops.py', 'pkg/quiet.py']" in log, log
        assert "swapped []" in log_first, log_first


def test_a_file_outside_the_analysed_root_is_checked_alone_beside_the_analysis(tmp_path):
    write_project(tmp_path, {**CROSS_FILE, "scripts/run.py": CROSS_FILE["pkg/ops.py"].replace("def read", "def run")})
    args = ("--select=TCS", "--jobs=2", "--compile-safe-no-cache", "--compile-safe-root=pkg",
            "--compile-safe-roots=run", "pkg", "scripts")
    beside, log = _probe(tmp_path, "on", *args)
    builds = (tmp_path / "builds.log").read_text().split()
    first, _ = _probe(tmp_path, "off", *args)
    assert sorted(beside) == sorted(first)
    assert any(line.startswith("scripts/run.py:2:12: TCS002") for line in beside), beside
    assert len(builds) == 1, builds  # the analysis child only: no worker analyses the project again
    assert "swapped ['pkg/__init__.py', 'pkg/model.py', 'pkg/ops.py']" in log, log
