#!/usr/bin/env bash
# GPU proof for the adapters: `diffcheck run --device cuda` on the healthy reference fixture, the
# motivating bug, a Trainer1D checkpoint (through the documented example file) and two diffusers
# folders; exit codes, wall times and each report.json go to $OUT (device_run.json, <case>.json).
# Run on a GPU machine from the repository root; diffusers and denoising-diffusion-pytorch come as
# wheels in .whl/ where the machine cannot reach PyPI (see the device notes in the closing note).
set -u
OUT=${OUT:-device-out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/dc . || exit 1
export PYTHONPATH=/tmp/dc:/tmp/site PYTHONUNBUFFERED=1 COLUMNS=140
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
DATA=fixtures/data/spectra_tiny.h5
dc() { python3 -c 'import sys; from diffcheck.cli import main; sys.argv[0] = "diffcheck"; main()' "$@"; }
rows=()
case_() {  # name expected_exit args...
    local name=$1 expected=$2; shift 2
    local t0=$(date +%s%N)
    dc run "$@" --device "${DEVICE:-cuda}" ${SELECT:+--select "$SELECT"} --report-dir "/tmp/reports/$name" > "/tmp/reports_$name.log" 2>&1
    local code=$? t1=$(date +%s%N)
    local secs=$(( (t1 - t0) / 1000000 ))e-3
    cp "/tmp/reports/$name/report.json" "$OUT/$name.json" 2>/dev/null
    echo "=== $name: exit $code (expected $expected), ${secs} s"; tail -n 40 "/tmp/reports_$name.log"
    rows+=("{\"case\": \"$name\", \"exit\": $code, \"expected\": $expected, \"wall_s\": ${secs}}")
}
case_ healthy_tiny 0 fixtures/checkpoints/healthy_tiny.pt --data $DATA
case_ eps_as_x0 1 fixtures/checkpoints/healthy_tiny.pt --data $DATA --pipeline fixtures/zoo/objective_mismatch.py:eps_as_x0
case_ ddp_trainer1d 0 fixtures/libraries/ddp_trainer1d.pt --pipeline examples/trainer1d_pipeline.py:build --data $DATA
case_ diffusers_ddim50_leading 0 fixtures/libraries/diffusers_ddim50_leading --data $DATA
case_ diffusers_v_mismatch 1 fixtures/libraries/diffusers_v_mismatch --data $DATA
joined=$(IFS=,; echo "${rows[*]}")
echo "{\"device\": \"$GPU\", \"torch\": \"$(python3 -c 'import torch; print(torch.__version__)')\", \"cases\": [$joined]}" > "$OUT/device_run.json"
cat "$OUT/device_run.json"
