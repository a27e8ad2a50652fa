"""Maps the top-level folders onto the `conveyor` namespace package.

`conveyor` itself has no ``__init__``: ``conveyor.components`` is ``components/``,
``conveyor.dsl`` is ``dsl/``, ``conveyor.beam_utils`` is ``beam_utils/`` and
``conveyor.orchestration`` is ``orchestration/`` and ``conveyor.tfx`` (TFX's ``tfx.v1``
names) is ``tfx/``. Subpackages are found here so that a new component folder needs no
packaging edit.
"""

from setuptools import Extension, find_packages, setup

FOLDERS = {
    "components": "conveyor.components",
    "beam_utils": "conveyor.beam_utils",
    "orchestration": "conveyor.orchestration",
    "dsl": "conveyor.dsl",
    "tfx": "conveyor.tfx",
}

packages = []
package_dir = {}
for folder, name in FOLDERS.items():
    package_dir[name] = folder
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

# TFRecord framing and the tf.Example decoder (beam_utils/_wire.c): plain C on CPython's API,
# built by pip with the machine's C compiler.
wire = Extension(
    "conveyor.beam_utils._wire",
    sources=["beam_utils/_wire.c"],
    extra_compile_args=["-O3"],
)

setup(
    ext_modules=[wire],
    packages=packages,
    package_dir=package_dir,
    package_data={
        **{name: ["*.html", "*.json", "*.pbtxt", "*.csv"] for name in packages},
        "conveyor.orchestration": ["templates/*/*.py", "templates/*/*.md"],
    },
)
