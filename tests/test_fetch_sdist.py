"""Source archives (packages the registry ships without a wheel, e.g. openai-whisper)."""

from __future__ import annotations

import io
import tarfile

from flake8_compile_safe.families.fetch import _extract_sdist_package


def _sdist(path, files: dict[str, str]):
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_unpacks_only_the_package_folder(tmp_path):
    archive = _sdist(tmp_path / "pkg-1.0.tar.gz", {
        "pkg-1.0/setup.py": "", "pkg-1.0/pkg/__init__.py": "x = 1\n",
        "pkg-1.0/pkg/sub/mod.py": "y = 2\n", "pkg-1.0/pkg_extra/other.py": "", "pkg-1.0/tests/t.py": ""})
    _extract_sdist_package(archive, "pkg", tmp_path / "out")
    found = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.py"))
    assert found == ["pkg/__init__.py", "pkg/sub/mod.py"]
    assert (tmp_path / "out" / "pkg" / "sub" / "mod.py").read_text() == "y = 2\n"


def test_src_layout(tmp_path):
    archive = _sdist(tmp_path / "pkg-1.0.tar.gz", {"pkg-1.0/src/pkg/__init__.py": "", "pkg-1.0/README": ""})
    _extract_sdist_package(archive, "pkg", tmp_path / "out")
    assert (tmp_path / "out" / "pkg" / "__init__.py").is_file()


def test_member_climbing_out_is_ignored(tmp_path):
    files = {"pkg-1.0/pkg/__init__.py": "", "pkg-1.0/pkg/../../escape.py": "bad"}
    archive = _sdist(tmp_path / "pkg-1.0.tar.gz", files)
    _extract_sdist_package(archive, "pkg", tmp_path / "out" / "deep")
    assert not list(tmp_path.rglob("escape.py"))
