#!/usr/bin/env bash
# make demo: build an example reduction (seed 000's project 229), package it, check it,
# split it into chunks, verify, unpack and publish them; stage a pipeline run; Cycle-5 names
# as the archive delivers them; a restorability check of a pipeline package.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out="${DEMO_OUT:-$here/demo-output}"
rm -rf "$out" && mkdir -p "$out"
cd "$out"

echo "== 1. an example reduction (project 229, SB IRC10216_setup3_b6_run_x2, 2 EBs, real MSes)"
python -m almaqa2.example "$here/tests/acceptance/project229/input.txt" IRC10216_setup3_b6_run_x2
qa2 readme-template | sed -e 's/^PI name:$/PI name: A. Astronomer/' \
    -e 's/^Project title:$/Project title: The molecular envelope of IRC+10216/' \
    -e 's/^Configuration:$/Configuration: C34-4/' \
    -e 's/^Proposed rms:$/Proposed rms: 0.5 mJy\/beam in 1 km\/s/' > README.header.txt
echo "   the README header, with the fields only the reducer knows filled in (a copy or hard"
echo "   package refuses a header that leaves them blank):"
grep -E '^(PI name|Project title|Configuration|Proposed rms):' README.header.txt | sed 's/^/     /'
find IRC10216_setup3_b6_run_x2 -maxdepth 1 | sort | sed 's/^/   /'

echo
echo "== 2. rehearse in fake mode, then package for real with hard links"
qa2 -q package IRC10216_setup3_b6_run_x2 2011.0.00229.S --readme README.header.txt \
    --style cycle0-nopipe --mode fake
qa2 package IRC10216_setup3_b6_run_x2 2011.0.00229.S --readme README.header.txt \
    --style cycle0-nopipe --mode hard

member=2011.0.00229.S/sg_ouss_id/group_ouss_id/member_ouss_id
echo
echo "== 3. the package's README: execution blocks (read with casacore), products, tree"
sed -n '/^Execution blocks/,/^Contents/p' "$member/README" | sed '$d'
sed -n '/^How to use/,/^Directory tree/p' "$member/README" | sed '$d'
sed -n '/^Directory tree/,$p' "$member/README"

echo "== 4. the MeasurementSets were reduced to one visibility column"
python - "$member" <<'PY'
import sys
from pathlib import Path
from casacore import tables
for ms in sorted(Path(sys.argv[1]).glob("*/*.ms.split*")):
    t = tables.table(str(ms), ack=False)
    data = [c for c in t.colnames() if c.endswith("DATA")]
    print(f"   {ms.parent.name}/{ms.name}: {t.nrows()} rows, visibility columns {data}")
    t.close()
PY

echo "== 5. checks with the standard tools"
md5sum -c --quiet 2011.0.00229.S/manifest.md5 && echo "   md5sum -c manifest.md5: all files OK"
unzip -tq 2011.0.00229.S.ticket.zip | sed 's/^/   unzip -t ticket: /'
echo "   ticket tar holds $(tar tf 2011.0.00229.S.ticket.tar | wc -l) files"
echo "   the DRM's review page, beside the tickets and as review.html inside them:"
python - <<'PY'
import tempfile
from pathlib import Path
from almaqa2.testing.browser import Browser
page = Path("2011.0.00229.S.review.html").resolve()
with tempfile.TemporaryDirectory() as tmp:
    browser = Browser(Path(tmp) / "downloads", Path(tmp) / "profile")
    try:
        browser.open(page.as_uri())
        plots = browser.run("return document.querySelectorAll('#plots img').length")
        shot = browser.screenshot(Path("review.png").resolve())
    finally:
        browser.close()
print(f"     {page.name} in Chromium: {plots} QA2 plots shown; screenshot {shot}")
PY

echo
echo "== 6. transfer: split into checksummed chunks, verify, unpack safely, publish"
mkdir chunks unpacked web
qa2 tarsplit 2011.0.00229.S -n 2012-06-20 --max-size 500K --out chunks | sed 's/^/   /'
(cd chunks && md5sum -c --quiet 2011.0.00229.S_2012_06_20.md5sums) \
    && echo "   md5sum -c of the chunk list: all chunks OK"
qa2 verify chunks | sed 's/^/   qa2 verify chunks: /'
qa2 untar chunks --out unpacked | sed 's/^/   /'
qa2 deliver chunks --web-root web | tail -1 | sed 's/^/   /'
echo "   a chunk damaged in transit is caught, by path:"
cp -r chunks damaged
python - damaged/2011.0.00229.S_2012_06_20_002_of_*.tar <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1]) as tar:  # one byte inside the first file with data
    offset = next(m.offset_data for m in tar if m.size)
with open(sys.argv[1], "r+b") as f:
    f.seek(offset)
    byte = f.read(1)
    f.seek(offset)
    f.write(bytes([byte[0] ^ 0xFF]))
PY
if qa2 verify damaged > damaged.txt; then echo "   (not caught!)"; exit 1; fi
sed 's/^/     /' damaged.txt

echo
echo "== 7. pipeline data: stage a pipeline run, then see what a PI would get"
run=2013.1.00456.S_2014_08_08T12_34_56.789
python -m almaqa2.example "$here/tests/acceptance/pipeline/run.txt" "$run" 2013.1.00456.S
qa2 -q stage "$run" 2013.1.00456.S --mode copy
qa2 verify 2013.1.00456.S | sed 's/^/   qa2 verify staged: /'
qa2 inspect 2013.1.00456.S | sed 's/^/   /'

echo
echo "== 8. the same reduction named as Cycle 5+ deliveries are (SPEC 4.1)"
mkdir cycle5
qa2 -q package IRC10216_setup3_b6_run_x2 cycle5/2011.0.00229.S --readme README.header.txt \
    --style cycle5-nopipe --mous uid___A001_X74_X29 --mode copy
(cd cycle5 && find 2011.0.00229.S -type f | sort | sed 's/^/   /')

echo
echo "== 9. a Cycle-5 manual delivery named as the archive names it (2017.1.01185.S)"
src=2017.1.01185.S_uid___A001_X12a3_Xe9
python -m almaqa2.example "$here/tests/acceptance/archive2017/input.txt" "$src" 2017.1.01185.S
mkdir archive
qa2 -q package "$src" archive/2017.1.01185.S --readme README.header.txt --style cycle5-nopipe \
    --mode copy --sg uid://A001/X12a3/Xe7 --gous uid://A001/X12a3/Xe8 \
    --mous uid://A001/X12a3/Xe9 --pi-script "$src/scriptForPI.py" --strict
qa2 -q tarsplit archive/2017.1.01185.S --auxiliary --out archive > /dev/null
for tar in archive/2017.1.01185.S_*.tar; do
    echo "   $(basename "$tar"):"
    tar tf "$tar" | grep -v '/$' | sed 's|.*/|     |'
done

echo
echo "== 10. qa2 verify checks that the PI's restore finds what the pipeline manifest names"
cp -r 2013.1.00456.S restore-check
flags=$(find restore-check -name 'uid___A002_X85c183_X60b.ms.flagversions.tgz')
mv "$flags" "${flags%.tgz}.renamed.tgz"
if qa2 verify restore-check > restore.txt; then echo "   (not caught!)"; exit 1; fi
grep '^restore: ' restore.txt | sed 's/^/   /'
echo
echo "Everything is in $out"
