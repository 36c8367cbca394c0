#!/usr/bin/env bash
# Every method on the GPU at 512 and 1024 px, fp16 where a method supports it
# (STYLEBOT_HALF_PRECISION=true), single and batch of 4 per image, written as a Markdown
# table into bench/gpu-results.md and appended to bench/README.md. Budget: under 8 minutes
# (each method's run is capped; a method that runs out of time is reported as such).
#
#   bench/gpu.sh                 # on the lent GPU machine, from the repository root
#   PY=.venv/bin/python bench/gpu.sh
#
# On a machine without CUDA it prints "no GPU" and exits 0 without measuring.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "no GPU: torch sees no CUDA device here; nothing measured"
    exit 0
fi

export STYLEBOT_DEVICE=cuda STYLEBOT_HALF_PRECISION=true PYTHONPATH=.
out=$(mktemp -d)
table=bench/gpu-results.md
gpu=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -1)
{
    echo "## GPU: \`bench/gpu.sh\` ($(date -u +%F), ${gpu}, fp16, repeat 3, batch of 4)"
    echo
    echo "| method | size | single, median s | batch of 4, per image s |"
    echo "| --- | --- | --- | --- |"
} > "$table"

# Per-method caps (seconds) keep the whole run under 8 minutes; the long methods run fewer
# iterations (bench/run.py's BENCH_OPTIONS).
for spec in hub:40 fast:40 adain:60 gatys:120 sd:120 nada:90; do
    method=${spec%%:*} cap=${spec##*:}
    if timeout "$cap" "$PY" bench/run.py --methods "$method" --sizes 512 1024 --repeat 3 \
            --batch 4 --json "$out/$method.json" > "$out/$method.log" 2>&1; then
        "$PY" - "$out/$method.json" >> "$table" <<'PYEOF'
import json, sys
report = json.load(open(sys.argv[1]))
for m in report["methods"]:
    if "skipped" in m:
        print(f"| {m['method']} | - | skipped: {m['skipped']} | |")
        continue
    for row in m["sizes"]:
        batch = row.get("batch4_per_image_s", "not batchable")
        print(f"| {m['method']} | {row['size']} | {row['median_s']} | {batch} |")
PYEOF
    else
        echo "| $method | 512, 1024 | did not finish in ${cap} s (log: $(tail -1 "$out/$method.log")) | |" >> "$table"
    fi
done
cat "$table"
{ echo; cat "$table"; } >> bench/README.md
echo "written to $table and appended to bench/README.md"
