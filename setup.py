"""The two compiled pieces of almaqa2; everything else is declared in pyproject.toml.

``almaqa2.md5pair`` hashes many md5s at once: chunks and their members for ``qa2 verify``,
files side by side for a manifest (see its source).  Its vector code is compiled for AVX2
function by function and chosen as it runs, so one build runs on any x86-64 CPU.  Its two
interleaved scalar chains are best left as scalar code: -O3's vectorizer packs them into
one SIMD register, which waits as one chain does (15 % slower, measured).

``almaqa2.tarheader`` makes the tar header of each file ``qa2 tarsplit`` writes: a hundred
thousand small files of calibration tables are as many headers (see its source).

``almaqa2.manyfiles`` makes the system calls of a directory's many files in one call: its
files listed with their sizes, and one file linked under many names (fake mode's
placeholders).  A reduction's tables hold tens of thousands of small files (see its source).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "almaqa2.md5pair",
            ["src/almaqa2/md5pair.c"],
            extra_compile_args=["-O2", "-fno-tree-slp-vectorize"],
        ),
        Extension("almaqa2.tarheader", ["src/almaqa2/tarheader.c"], extra_compile_args=["-O2"]),
        Extension("almaqa2.manyfiles", ["src/almaqa2/manyfiles.c"], extra_compile_args=["-O2"]),
    ]
)
