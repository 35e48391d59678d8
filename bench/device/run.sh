#!/usr/bin/env bash
# bench/bench_concurrency.py on the device machine (root, no network), from a bundle that arrives
# in 3 parts, one per call (each call carries .devbench/bin and ONE of .devbench/p1 p2 p3; the
# machine keeps /tmp only while warm, 30 s after a call). The same command every call:
#   set -o pipefail; bash bench/device/run.sh 2>&1 | tee $OUT/run.log
# rc 3: part(s) staged, others missing -> call again AT ONCE carrying a missing part.
# rc 0: bench done. Any other rc: a setup step failed (message starts "DEVBENCH FAIL").
# Env: SESSIONS (8), RUNS (3), BENCH_TIMEOUT s (480), NO_UVLOOP (1: hide the image's uvloop so
# uvicorn runs asyncio's loop as on the dev machine: Streamlit then fails to start; 0, the default,
# keeps the image's uvloop).
set -euo pipefail
REPO=$(pwd)
# Streamlit in a folder not named site-packages takes itself for a source checkout (development
# mode), which refuses --server.port
export STREAMLIT_GLOBAL_DEVELOPMENT_MODE=false
BIN=$REPO/.devbench/bin
D=${DEVBENCH_DIR:-/tmp/devbench}
SITE=${DEVBENCH_SITE:-/tmp/site}
LOCAL_TEST=${LOCAL_TEST:-0}   # 1: stage + unpack + chromium wrapper only (touches nothing outside $D, $SITE)
STAGE=$D/stage
OUT=${OUT:-$D/out}
SESSIONS=${SESSIONS:-8}
RUNS=${RUNS:-3}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-480}
NO_UVLOOP=${NO_UVLOOP:-0}
T0=$(date +%s)
die() { echo "DEVBENCH FAIL: $*"; exit 2; }
step() { echo "== [$(( $(date +%s) - T0 ))s] $*"; }
[ -f "$REPO/bench/bench_concurrency.py" ] || die "run me from the repo root (no bench/bench_concurrency.py in $REPO)"
mkdir -p "$STAGE" "$OUT"

# ---------------------------------------------------------------- 1. stage the carried part(s)
step "stage"
for n in 1 2 3; do
    src=$REPO/.devbench/p$n/bundle.part$n
    [ -f "$src" ] || continue
    want=$(grep " bundle.part$n\$" "$BIN/SHA256SUMS" | cut -d' ' -f1 || true)
    [ -n "$want" ] || die "no checksum for part $n in $BIN/SHA256SUMS"
    got=$(sha256sum "$src" | cut -d' ' -f1)
    [ "$got" = "$want" ] || die "part $n arrived corrupt (sha256 $got, want $want)"
    [ -f "$STAGE/bundle.part$n" ] || cp "$src" "$STAGE/bundle.part$n"
    echo "part $n OK ($(stat -L -c %s "$src") bytes)"
done
missing=""
for n in 1 2 3; do [ -f "$STAGE/bundle.part$n" ] || missing="$missing $n"; done
if [ -n "$missing" ]; then
    first=$(echo $missing | cut -d' ' -f1)
    echo "DEVBENCH STAGED: have$(for n in 1 2 3; do [ -f "$STAGE/bundle.part$n" ] && printf ' %s' $n; done);" \
         "missing$missing. Call again NOW (machine warm only 30 s) with the same command and" \
         "carry [\".devbench/bin\", \".devbench/p$first\"]." \
         "If the machine went cold, the stage is gone: restart from part 1."
    exit 3
fi

# ---------------------------------------------------------------- 2. unpack
step "unpack"
rm -rf "$D/x" $SITE "$D/chrome" "$D/real-trash"
mkdir -p "$D/x" $SITE "$D/chrome" "$D/real-trash"
cat "$STAGE"/bundle.part1 "$STAGE"/bundle.part2 "$STAGE"/bundle.part3 > "$D/bundle.tar"
want=$(grep " bundle.tar\$" "$BIN/SHA256SUMS" | cut -d' ' -f1 || true)
[ "$(sha256sum "$D/bundle.tar" | cut -d' ' -f1)" = "$want" ] || die "reassembled bundle.tar checksum mismatch"
tar -xf "$D/bundle.tar" -C "$D/x" || die "tar of the bundle"
rm -f "$D/bundle.tar"
python3 - "$D" "$SITE" <<'EOF' || die "unpacking the xz parts"
import lzma, os, shutil, sys, tarfile
from concurrent.futures import ThreadPoolExecutor
d, site = sys.argv[1:3]
def raw(src, dst, mode):
    with lzma.open(src) as f, open(dst, "wb") as g:
        shutil.copyfileobj(f, g, 1 << 22)
    os.chmod(dst, mode)
def tree(src, dst):
    with tarfile.open(src, "r:xz") as t:
        t.extractall(dst, filter="fully_trusted")
jobs = [(raw, f"{d}/x/chromium.xz", f"{d}/chrome/chromium", 0o755),
        (raw, f"{d}/x/node.xz", f"{d}/x/node", 0o755),
        (tree, f"{d}/x/site.tar.xz", site),
        (tree, f"{d}/x/chrome-extra.tar.xz", f"{d}/chrome"),
        (tree, f"{d}/x/data.tar.xz", f"{d}/real-trash")]
with ThreadPoolExecutor(5) as pool:
    for future in [pool.submit(job[0], *job[1:]) for job in jobs]:
        future.result()
EOF
mv "$D/x/node" $SITE/playwright/driver/node
rm -rf "$D/x"

# ---------------------------------------------------------------- 3. python packages
step "python packages"
PY=$(command -v python3)
SP=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# every python3 process (the bench's servers get PYTHONPATH=repo only) sees $SITE before the
# image's site-packages
[ "$LOCAL_TEST" = 1 ] ||
echo "import sys; '$SITE' in sys.path or sys.path.insert(next((i for i, p in enumerate(sys.path) if p.endswith('-packages')), len(sys.path)), '$SITE')" \
    > "$SP/000-devbench.pth" || die "cannot write $SP/000-devbench.pth"
if [ "$NO_UVLOOP" = 1 ]; then
    echo 'raise ImportError("uvloop hidden by bench/device/run.sh (NO_UVLOOP=1)")' > $SITE/uvloop.py
fi
export PYTHONPATH=$SITE
[ "$LOCAL_TEST" = 1 ] || python3 -m compileall -q -j 0 $SITE "$REPO/core" "$REPO/ui" "$REPO/bench" "$REPO/tests" > /dev/null 2>&1 || true

# ---------------------------------------------------------------- 4. chromium
step "chromium"
C=$D/chrome
sed "s#@FONTS@#$C/fonts#g" > "$C/fonts/fonts.conf" <<'EOF'
<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <dir>@FONTS@</dir>
  <dir>/usr/share/fonts</dir>
  <cachedir>@FONTS@-cache</cachedir>
</fontconfig>
EOF
# (Playwright passes --disable-dev-shm-usage itself, so /dev/shm's size does not matter)
shm_mb=$(df -m --output=size /dev/shm 2>/dev/null | tail -1 | tr -d ' ' || echo "?")
cat > "$C/chromium-wrapper" <<EOF
#!/bin/sh
export LD_LIBRARY_PATH=$C/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export FONTCONFIG_PATH=$C/fonts
exec $C/chromium "\$@"
EOF
chmod +x "$C/chromium-wrapper"
if LD_LIBRARY_PATH=$C/lib ldd "$C/chromium" | grep "not found"; then die "chromium lacks the libraries above"; fi
if ! ldconfig -p | grep -q 'libatomic\.so\.1 '; then
    echo "NOTE: libatomic.so.1 missing in the image: node uses the carried one"
    export LD_LIBRARY_PATH=$C/nodelib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
if ldd "$SITE/playwright/driver/node" | grep "not found"; then die "node lacks the libraries above"; fi
if [ "$LOCAL_TEST" = 1 ]; then step "LOCAL_TEST: stop before touching /usr/bin, site-packages, ../shared"; exit 0; fi
if [ -e /usr/bin/chromium ] && [ "$(readlink -f /usr/bin/chromium)" != "$C/chromium-wrapper" ]; then
    echo "NOTE: replacing the image's /usr/bin/chromium ($(timeout 10 /usr/bin/chromium --version 2>&1 | head -1))"
fi
ln -sfn "$C/chromium-wrapper" /usr/bin/chromium || die "cannot link /usr/bin/chromium"

# ---------------------------------------------------------------- 5. the data where the bench reads it
mkdir -p "$REPO/../shared" || die "cannot create $REPO/../shared (the bench reads ../shared/real-trash)"
[ -e "$REPO/../shared/real-trash/fold3_gt.json" ] || ln -sfn "$D/real-trash" "$REPO/../shared/real-trash"
mkdir -p "$REPO/tests/screenshots"   # tests.browser.streamlit_server (the peer) logs there

# ---------------------------------------------------------------- 6. diagnostics
step "diagnostics"
{
    echo "nproc $(nproc); $(grep -m1 'model name' /proc/cpuinfo); mem $(free -g | awk '/Mem/{print $2}') GiB; /dev/shm ${shm_mb} MB"
    echo "python3 $PY: $(python3 -V 2>&1); site-packages $SP"
    python3 - <<'EOF'
import importlib, importlib.metadata as m
for name in ["streamlit", "plotly", "playwright", "narwhals", "pandas", "numpy", "pyarrow", "protobuf",
             "pillow", "numba", "llvmlite", "sqlalchemy", "orjson", "uvicorn", "starlette", "anyio",
             "websockets", "typing_extensions", "uvloop"]:
    try:
        print(f"  {name} {m.version(name)}", end="")
    except m.PackageNotFoundError:
        print(f"  {name} (not installed)", end="")
    mod = {"pillow": "PIL", "protobuf": "google.protobuf", "typing_extensions": "typing_extensions"}.get(name, name)
    try:
        print(f"  <- {importlib.import_module(mod).__file__}")
    except Exception as exc:
        print(f"  import fails: {type(exc).__name__}: {exc}")
EOF
    echo "chromium: $(/usr/bin/chromium --version 2>&1 | head -1)"
    echo "node: $($SITE/playwright/driver/node --version)"
} 2>&1 | tee "$OUT/diag.txt"
python3 -c "import streamlit, plotly, playwright, sqlalchemy, orjson, pandas, pyarrow" || die "a package does not import"

# a browser that launches and renders, before anything long
step "browser smoke test"
timeout 90 python3 - <<'EOF' || die "playwright + chromium smoke test"
from tests.browser import chromium_page
with chromium_page() as page:
    page.set_content("<h1>devbench</h1>")
    assert page.inner_text("h1") == "devbench"
    print("browser OK:", page.context.browser.version)
EOF

# ---------------------------------------------------------------- 7. warm-up (as on the dev machine)
step "kernels (numba AOT build, once per checkout) + one CLI evaluation"
python3 -m core.kernel_build 2>&1 | tail -2 | tee "$OUT/warmup.log" || true
timeout 240 python3 -m core evaluate "$D/real-trash/fold3_gt.json" "$D/real-trash/fold3_deta_swinL.csv" \
    >> "$OUT/warmup.log" 2>&1 || echo "WARNING: core evaluate warm-up failed (see warmup.log); going on"
tail -3 "$OUT/warmup.log"

# ---------------------------------------------------------------- 8. the bench
step "bench_concurrency --sessions $SESSIONS --runs $RUNS (timeout $BENCH_TIMEOUT s)"
set +e
PYTHONUNBUFFERED=1 timeout "$BENCH_TIMEOUT" python3 bench/bench_concurrency.py --sessions "$SESSIONS" --runs "$RUNS" \
    2>&1 | tee "$OUT/concurrency.log"
rc=${PIPESTATUS[0]}
set -e
ls tests/screenshots/server_*.log > /dev/null 2>&1 && tar -czf "$OUT/server-logs.tgz" tests/screenshots/server_*.log || true
step "done, bench rc $rc"
exit "$rc"
