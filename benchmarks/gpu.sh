#!/usr/bin/env bash
# One command that proves inception3's GPU path on a GPU machine and measures it:
#
#   bash benchmarks/gpu.sh
#
# TIME BUDGET: 9 minutes on one H100-class GPU, installs included (GPU_SH_BUDGET=540 seconds):
#   deps        0:15  missing dependencies from benchmarks/wheels, nothing from the network
#   tests       1:30  python3 -m pytest -m cuda tests/cuda
#   shards      0:30  2,000 photo-like 500×375 JPEGs in 10 class folders -> `inception3 build`
#   train       1:50  `inception3 train` of the full network at 299×299, batch 128: fp32 NCHW (121
#                     steps) and bf16 channels_last (201 steps), each on the shards and on synthetic_data;
#                     fp16 channels_last with loss scaling (121 steps, on the shards)
#   decode      1:00  1,000 real photographs (benchmarks/photos.py) -> shards; bf16 channels_last (fp32 on
#                     GPUs without bf16), 101 steps each: decode=cpu, decode=gpu (nvJPEG), synthetic_data
#   train_step  0:45  benchmarks/train_step.py: inception3 against timm's and torchvision's
#                     inception_v3, same batch, interleaved, bf16 + channels_last
#   compile     3:00  bf16 channels_last compiled, 201 steps plus 1.5-2.5 min of torch.compile, on the
#                     shards, then on synthetic_data (skipped when under 2 min of the budget are left)
#   table       0:05  one markdown table for docs/performance.md
# Each phase prints its elapsed time; the total is compared with the budget at the end.
#
# It runs the checkout with the machine's own python3 (PYTHONPATH=src, no virtual environment), or
# the one PYTHON names (a virtual environment's: PYTHON=.venv-oldest/bin/python). That
# python needs torch (2.11 or later), torchvision, timm, tensorboard, safetensors and pytest; the
# package's other dependencies, where missing, are installed from benchmarks/wheels, which
# `bash benchmarks/gpu_wheels.sh` fills beforehand on a machine that reaches the package index.
#
# Environment: PYTHON (default python3); GPU_SH_WORK (default /tmp/inception3-gpu: images and shards,
# kept for a re-run; runs and results, made afresh); GPU_SH_OUT (a folder the table and the log are
# copied to); GPU_SH_WORKERS (loader workers, default min(16, CPU cores)); GPU_SH_DEVICE=cpu (a dry
# run of every phase at toy sizes on the CPU: checks this script, measures nothing).
#
# Exit status: non-zero if any check failed (a CUDA test, a run that failed, stopped short or logged a
# non-finite loss, a missing result). A failed phase does not stop the later ones, so that one GPU
# session yields every figure it can; the failures are listed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
DEVICE=${GPU_SH_DEVICE:-cuda}
WORK=${GPU_SH_WORK:-/tmp/inception3-gpu}
RES=$WORK/results
BUDGET=${GPU_SH_BUDGET:-540}
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$WORK"
rm -rf "$RES" "$WORK/runs"
mkdir -p "$RES"
exec > >(tee "$WORK/gpu.log") 2>&1

START=$SECONDS
PHASE=""
PHASE_START=$SECONDS
FAILED=()
phase() {
    if [[ -n $PHASE ]]; then
        echo "=== $PHASE: $((SECONDS - PHASE_START)) s"
        echo "$PHASE $((SECONDS - PHASE_START))" >>"$RES/phases.txt"
    fi
    PHASE=$1
    PHASE_START=$SECONDS
    [[ $PHASE == end ]] || echo -e "\n=== $PHASE (at $((SECONDS - START)) s of the $BUDGET s budget)"
}
fail() {
    echo "FAILED: $*" >&2
    FAILED+=("$*")
}
fatal() {
    echo "FATAL: $* (nothing after this can run)" >&2
    exit 1
}

if [[ $DEVICE == cpu ]]; then # toy sizes: the tiny network, a few steps, the eager compile backend
    COUNT=48 CLASSES=4 WIDTH=160 HEIGHT=120 IMAGE_SIZE=75
    BATCH=8 LOG_EVERY=2 SKIP_LOGS=1 STEPS_FP32=7 STEPS_BF16=7 STEPS_FP16=7 STEPS_COMPILE=7
    MODEL_SETS=(--set image_size=75 --set depth_multiplier=0.25)
    COMPILE_SETS=(--set compile_backend=eager)
    STEP_ARGS=(--batch 2 --size 299 --steps 1)
    RUN_TIMEOUT=300 COMPILE_TIMEOUT=300
    PHOTO_COUNT=48 STEPS_DECODE=7 GPU_DECODE=cpu # no nvJPEG on a CPU: the phase runs, decoding on the CPU
else
    COUNT=2000 CLASSES=10 WIDTH=500 HEIGHT=375 IMAGE_SIZE=299
    BATCH=128 LOG_EVERY=20 SKIP_LOGS=2 STEPS_FP32=121 STEPS_BF16=201 STEPS_FP16=121 STEPS_COMPILE=201
    MODEL_SETS=()
    COMPILE_SETS=()
    STEP_ARGS=(--batch 128 --size 299 --steps 10)
    RUN_TIMEOUT=150 COMPILE_TIMEOUT=300
    PHOTO_COUNT=1000 STEPS_DECODE=101 GPU_DECODE=gpu
fi

# --- deps: the package's dependencies, from benchmarks/wheels where missing ---------------------------
phase deps
"$PY" -c 'import sys, torch; print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {torch.version.cuda}")' ||
    fatal "$PY has no torch"
if [[ $DEVICE == cuda ]]; then
    "$PY" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print(torch.cuda.get_device_name())' ||
        fatal "torch sees no CUDA device (GPU_SH_DEVICE=cpu runs the dry run)"
fi
MISSING=$("$PY" - <<'EOF'
import importlib.util

# import name -> distribution, for every dependency in pyproject.toml but torch and torchvision
NEEDED = {
    "numpy": "numpy", "PIL": "pillow", "tensorboard": "tensorboard", "tqdm": "tqdm",
    "google.protobuf": "protobuf", "google_crc32c": "google-crc32c", "simplejpeg": "simplejpeg",
    "safetensors": "safetensors", "matplotlib": "matplotlib",
}
missing = []
for module, dist in NEEDED.items():
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # google.protobuf without the google namespace
        found = False
    if not found:
        missing.append(dist)
print(" ".join(missing))
EOF
)
if [[ -n $MISSING ]]; then
    echo "missing: $MISSING; installing from benchmarks/wheels"
    [[ -d benchmarks/wheels ]] || fatal "no benchmarks/wheels: run 'bash benchmarks/gpu_wheels.sh' where the package index is reachable"
    installed=0
    # A plain install; else into the user's site (no write access); else past PEP 668's marker.
    for extra in "" "--user" "--user --break-system-packages"; do
        # shellcheck disable=SC2086 # $extra is zero, one or two options
        if "$PY" -m pip install --no-index --find-links benchmarks/wheels $extra $MISSING; then
            installed=1
            break
        fi
    done
    ((installed)) || fatal "could not install $MISSING from benchmarks/wheels"
fi
"$PY" -c 'import inception3.data.build, inception3.train.loop, inception3.evaluate, inception3.predict' ||
    fatal "the package does not import"
TIMM=$("$PY" -c 'import importlib.util as u; print("timm," if u.find_spec("timm") else "")')
BF16=$("$PY" -c 'import torch; print(int(not torch.cuda.is_available() or torch.cuda.get_device_capability() >= (8, 0)))')
WORKERS=${GPU_SH_WORKERS:-$("$PY" benchmarks/gpu_train.py environment --results "$RES" --workers)}
echo "loader workers: $WORKERS; bf16: $BF16; baselines: ${TIMM}torchvision"

# --- tests: the CUDA checks ------------------------------------------------------------------------
phase tests
if ! timeout -s KILL 300 "$PY" -m pytest -m cuda tests/cuda -rs -p no:cacheprovider \
    --junitxml="$RES/cuda-tests.xml"; then
    fail "CUDA tests (pytest -m cuda tests/cuda)"
fi
if [[ $DEVICE == cuda ]] && ! "$PY" - "$RES/cuda-tests.xml" <<'EOF'; then
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suite = root if root.tag == "testsuite" else root.find("testsuite")
passed = int(suite.get("tests")) - sum(int(suite.get(k, 0)) for k in ("failures", "errors", "skipped"))
print(f"{passed} CUDA tests passed")
sys.exit(0 if passed > 0 else 1)
EOF
    fail "no CUDA test ran on a CUDA machine"
fi

# --- shards: generated JPEGs through the package's own builder -------------------------------------
phase shards
IMAGES=$WORK/images-$COUNT-${WIDTH}x$HEIGHT
SHARDS=$WORK/shards-$COUNT-${WIDTH}x$HEIGHT
if [[ ! -f $SHARDS/dataset.json ]]; then
    rm -rf "$IMAGES" "$SHARDS"
    "$PY" benchmarks/gpu_train.py images "$IMAGES" --count "$COUNT" --classes "$CLASSES" \
        --width "$WIDTH" --height "$HEIGHT" --workers "$WORKERS" || fatal "making the JPEGs"
    "$PY" -m inception3 build --train-dir "$IMAGES" --output-dir "$SHARDS" --train-shards 8 \
        --workers "$WORKERS" || fatal "inception3 build"
else
    echo "reusing $SHARDS"
fi
"$PY" benchmarks/gpu_train.py environment --results "$RES" --images "$COUNT" \
    --image-shape "${WIDTH}×${HEIGHT}" --classes "$CLASSES" >/dev/null

# --- train: three configurations, on the shards and on synthetic data ------------------------------
phase train
"$PY" benchmarks/gpu_train.py flops --results "$RES" --image-size "$IMAGE_SIZE" --classes "$CLASSES" ||
    fail "counting FLOPs"
train_run() { # NAME STEPS TIMEOUT --set ...: one measured run through the CLI, in its own process
    local name=$1 steps=$2 limit=$3
    shift 3
    echo -e "\n--- $name: $steps steps (at $((SECONDS - START)) s)"
    if ! timeout -s KILL "$limit" "$PY" benchmarks/gpu_train.py run --name "$name" --results "$RES" \
        --skip-logs "$SKIP_LOGS" -- train --data-dir "${DATA:-$SHARDS}" --train-dir "$WORK/runs/$name" \
        --max-steps "$steps" --set device="$DEVICE" --set batch_size="$BATCH" --set log_every="$LOG_EVERY" \
        --set summary_every=1000000 --set checkpoint_every=1000000 --set num_workers="$WORKERS" \
        ${MODEL_SETS[@]+"${MODEL_SETS[@]}"} "$@"; then
        fail "training run $name"
    fi
}
FP32=(--set precision=fp32 --set channels_last=false --set compile=false)
BF16_CL=(--set precision=bf16 --set channels_last=true --set compile=false)
FP16_CL=(--set precision=fp16 --set channels_last=true --set compile=false)
COMPILED=(--set precision=bf16 --set channels_last=true --set compile=true ${COMPILE_SETS[@]+"${COMPILE_SETS[@]}"})
train_run fp32 "$STEPS_FP32" "$RUN_TIMEOUT" "${FP32[@]}"
train_run fp32-synthetic "$STEPS_FP32" "$RUN_TIMEOUT" "${FP32[@]}" --set synthetic_data=true
if ((BF16)); then
    train_run bf16-cl "$STEPS_BF16" "$RUN_TIMEOUT" "${BF16_CL[@]}"
    train_run bf16-cl-synthetic "$STEPS_BF16" "$RUN_TIMEOUT" "${BF16_CL[@]}" --set synthetic_data=true
else
    echo "--- bf16 runs skipped: this GPU has no bf16 (compute capability below 8.0)"
fi
# fp16 with dynamic loss scaling: what precision=auto picks on a GPU without bf16 (V100, T4)
train_run fp16-cl "$STEPS_FP16" "$RUN_TIMEOUT" "${FP16_CL[@]}"

# --- decode: real photographs, decoded by the CPU workers and by nvJPEG, against synthetic data ---------
phase decode
PHOTOS=$WORK/photos-$PHOTO_COUNT
PHOTO_SHARDS=$WORK/photo-shards-$PHOTO_COUNT
if [[ ! -f $PHOTO_SHARDS/dataset.json ]]; then
    rm -rf "$PHOTOS" "$PHOTO_SHARDS"
    if ! { "$PY" benchmarks/gpu_train.py images "$PHOTOS" --photos --count "$PHOTO_COUNT" --classes "$CLASSES" &&
        "$PY" -m inception3 build --train-dir "$PHOTOS" --output-dir "$PHOTO_SHARDS" --train-shards 8 \
            --workers "$WORKERS"; }; then
        fail "photograph shards (scikit-image's sample photos: pip install scikit-image, or its wheel in benchmarks/wheels)"
    fi
fi
if [[ -f $PHOTO_SHARDS/dataset.json ]]; then
    DECODE_SETS=("${FP32[@]}")
    if ((BF16)); then DECODE_SETS=("${BF16_CL[@]}"); fi
    DATA=$PHOTO_SHARDS train_run decode-cpu "$STEPS_DECODE" "$RUN_TIMEOUT" "${DECODE_SETS[@]}" --set decode=cpu
    DATA=$PHOTO_SHARDS train_run decode-gpu "$STEPS_DECODE" "$RUN_TIMEOUT" "${DECODE_SETS[@]}" \
        --set decode="$GPU_DECODE"
    DATA=$PHOTO_SHARDS train_run decode-synthetic "$STEPS_DECODE" "$RUN_TIMEOUT" "${DECODE_SETS[@]}" \
        --set synthetic_data=true
fi

# --- train_step: the step alone against timm's and torchvision's inception_v3 -----------------------
phase train_step
VARIANT=fp32-cl
if ((BF16)); then VARIANT=bf16-cl; fi
if ! timeout -s KILL 240 "$PY" benchmarks/train_step.py "${STEP_ARGS[@]}" --variants "$VARIANT" \
    --baselines "${TIMM}torchvision" --json "$RES/train_step.json"; then
    fail "benchmarks/train_step.py"
fi

# --- compile: last, as its time is the least certain ------------------------------------------------
phase compile
if ((BF16)); then
    train_run bf16-cl-compile "$STEPS_COMPILE" "$COMPILE_TIMEOUT" "${COMPILED[@]}"
    # The second compilation mostly hits Inductor's on-disk cache; it is left out if time is short.
    if ((SECONDS - START < BUDGET - 120)); then
        train_run bf16-cl-compile-synthetic "$STEPS_COMPILE" "$COMPILE_TIMEOUT" "${COMPILED[@]}" \
            --set synthetic_data=true
    else
        echo "--- bf16-cl-compile-synthetic: skipped, $((SECONDS - START)) s of $BUDGET s spent"
    fi
fi

# --- table -----------------------------------------------------------------------------------------
phase table
"$PY" benchmarks/gpu_train.py table --results "$RES" >"$RES/table.md" || fail "making the table"
phase end
echo
echo "=== paste into docs/performance.md:"
echo
cat "$RES/table.md"
echo
TOTAL=$((SECONDS - START))
echo "total: $TOTAL s of the $BUDGET s budget$( ((TOTAL > BUDGET)) && echo ' -- OVER BUDGET: lower the step counts')"
if [[ -n ${GPU_SH_OUT:-} ]]; then
    mkdir -p "$GPU_SH_OUT"
    cp -r "$RES" "$GPU_SH_OUT/" && cp "$WORK/gpu.log" "$GPU_SH_OUT/"
fi
if ((${#FAILED[@]})); then
    echo "${#FAILED[@]} check(s) FAILED:" >&2
    printf '  - %s\n' "${FAILED[@]}" >&2
    exit 1
fi
echo "all checks passed"
