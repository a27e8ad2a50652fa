"""Maps the top-level folders onto the `conveyor` namespace package.

`conveyor` itself has no ``__init__``: ``conveyor.components`` is ``components/``,
``conveyor.beam_utils`` is ``beam_utils/`` and ``conveyor.orchestration`` is
``orchestration/``. Subpackages are found here so that a new component folder
needs no packaging edit.
"""

from setuptools import find_packages, setup

FOLDERS = {
    "components": "conveyor.components",
    "beam_utils": "conveyor.beam_utils",
    "orchestration": "conveyor.orchestration",
}

packages = []
package_dir = {}
for folder, name in FOLDERS.items():
    package_dir[name] = folder
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={
        **{name: ["*.html", "*.json", "*.pbtxt", "*.csv"] for name in packages},
        "conveyor.orchestration": ["templates/*/*.py", "templates/*/*.md"],
    },
)
