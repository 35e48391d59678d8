#!/usr/bin/env bash
# Builds the device-machine bundle for bench/bench_concurrency.py (bench/device/run.sh runs it there;
# run this here, from the repo root, with `echo /.devbench/ >> .git/info/exclude` once;
# needs network to PyPI + npm + Debian, pip, npm, node, xz, strip). Writes:
#   .devbench/wheels/        the py3.12 x86_64 wheels (reference; not carried)
#   .devbench/p1 p2 p3/      bundle.partN: the bundle split in 3 (one carried per device call)
#   .devbench/bin/SHA256SUMS checksums of the parts
# Bundle (a plain tar): chromium.xz (@sparticuz/chromium 153 headless shell), chrome-extra.tar.xz
# (its NSS/expat libs, swiftshader, Open Sans, libatomic.so.1 for node), node.xz (Playwright
# 1.65.2's own node v26, stripped), site.tar.xz (`pip install --target` of the wheels, jupyter/
# notebook assets pruned, .so stripped), data.tar.xz (../shared/real-trash fold3 gt + csv).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
DB=$REPO/.devbench
WORK=${WORK:-/tmp/devbench-build}
mkdir -p "$WORK" "$DB/wheels" "$DB/bin"
cd "$WORK"
XZ="nice -n 19 xz -T1 -9e"

PLAT="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64
      --platform manylinux_2_5_x86_64"
PKGS="streamlit==1.67.0 altair==6.3.0 pydeck==0.9.3 watchdog==7.1.0 jsonschema==4.26.0
      jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==0.30.0 plotly==7.1.0
      orjson==3.13.0 SQLAlchemy==2.1.9 starlette==1.10.0 uvicorn==0.54.0 websockets==17.4
      python-multipart==0.0.34 itsdangerous==2.2.0 narwhals==2.29.0 greenlet==3.5.6 playwright==1.65.2"
# shellcheck disable=SC2086
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    $PLAT -d "$DB/wheels" $PKGS

# site: the wheels installed for cp312 into a folder, then pruned
rm -rf site && python3 -m pip install -q --no-index --find-links "$DB/wheels" --no-deps --no-compile \
    --only-binary=:all: --python-version 3.12 --implementation cp $PLAT --target site \
    $(echo $PKGS | sed 's/==[^ ]*//g')
rm -rf site/share site/etc site/include site/bin site/pydeck/nbextension site/plotly/labextension \
    site/plotly/package_data/widgetbundle.js site/playwright/driver/package/types \
    site/playwright/driver/package/lib/vite
find site -name '*.so' -exec strip --strip-unneeded {} \;
strip -o node.stripped site/playwright/driver/node && rm site/playwright/driver/node
[ -f node.xz ] || $XZ --x86 -c node.stripped > node.xz   # delete node.xz / chromium.xz to rebuild them
[ ! -e site/playwright/driver/node ] && [ "$(du -sm site | cut -f1)" -lt 150 ] || { echo "site too big"; exit 1; }
tar -cf - -C site . | $XZ -c > site.tar.xz

# chromium: @sparticuz/chromium's brotli files unpacked (node's zlib), re-packed with xz
[ -f sparticuz-chromium-153.0.0.tgz ] || npm pack -q @sparticuz/chromium@153.0.0
rm -rf package sp && tar xzf sparticuz-chromium-153.0.0.tgz && mkdir -p sp/extra/lib sp/extra/fonts sp/extra/nodelib
node -e 'const z=require("zlib"),fs=require("fs");
for (const f of ["chromium","al2023.tar","swiftshader.tar","fonts.tar"])
  fs.writeFileSync("sp/"+f, z.brotliDecompressSync(fs.readFileSync("package/bin/"+f+".br")));'
tar xf sp/al2023.tar -C sp && cp sp/lib/* sp/extra/lib/
tar xf sp/swiftshader.tar -C sp/extra
tar xf sp/fonts.tar -C sp && cp -r sp/fonts/Open_Sans sp/extra/fonts/
cp -L /lib/x86_64-linux-gnu/libatomic.so.1 sp/extra/nodelib/   # node's; used only where missing there
[ -f chromium.xz ] || $XZ --x86 --lzma2=preset=9e,dict=192MiB -c sp/chromium > chromium.xz
tar -cf - -C sp/extra . | $XZ -c > chrome-extra.tar.xz

tar -cf - -C "$REPO/../shared/real-trash" fold3_gt.json fold3_deta_swinL.csv | $XZ -c > data.tar.xz

tar -cf bundle.tar chromium.xz chrome-extra.tar.xz node.xz site.tar.xz data.tar.xz
size=$(stat -c %s bundle.tar); chunk=$(( (size + 2) / 3 ))
rm -rf "$DB"/p1 "$DB"/p2 "$DB"/p3 && mkdir -p "$DB"/p1 "$DB"/p2 "$DB"/p3
split -b "$chunk" -d -a 1 bundle.tar part.
mv part.0 "$DB/p1/bundle.part1"; mv part.1 "$DB/p2/bundle.part2"; mv part.2 "$DB/p3/bundle.part3"
(cd "$DB" && sha256sum p1/bundle.part1 p2/bundle.part2 p3/bundle.part3 | sed 's# p[0-9]/# #' \
    > bin/SHA256SUMS && sha256sum "$WORK/bundle.tar" | sed 's# .*# bundle.tar#' >> bin/SHA256SUMS)
ls -la bundle.tar "$DB"/p*/ && cat "$DB/bin/SHA256SUMS"
