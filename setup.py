"""Package list for setuptools (metadata lives in pyproject.toml).

The fixer's sources stay in the repository's top-level ``fixers/`` folder but install as
``flake8_compile_safe.fixers``: a top-level package named ``fixers`` would collide with any other
distribution's ``fixers`` in a user's environment. ``package_dir`` maps the folder to that name,
for regular and editable installs alike.
"""

from setuptools import find_packages, setup

FIXERS = "flake8_compile_safe.fixers"

setup(
    packages=[
        *find_packages(include=["flake8_compile_safe", "flake8_compile_safe.*"]),
        FIXERS,
        *(f"{FIXERS}.{sub}" for sub in find_packages("fixers")),
    ],
    package_dir={FIXERS: "fixers"},
    package_data={"flake8_compile_safe": ["known_module_bases.txt"]},
)
