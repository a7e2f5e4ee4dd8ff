"""The one compiled piece of almaqa2; everything else is declared in pyproject.toml.

``almaqa2.md5pair`` hashes two md5s at once: a chunk and its members for ``qa2 verify``,
two files at a time for a manifest (see its source).  Its two chains of steps interleave best left as scalar code: -O3's vectorizer
packs them into one SIMD register, which waits as one chain does (15 % slower, measured).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "almaqa2.md5pair",
            ["src/almaqa2/md5pair.c"],
            extra_compile_args=["-O2", "-fno-tree-slp-vectorize"],
        )
    ]
)
