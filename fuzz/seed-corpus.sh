#!/bin/sh
# Rebuilds the seed corpora from scenarios/: every scenario file for the scenario target, every
# API body for the body target. Run from the repository root or from fuzz/.
set -eu
cd "$(dirname "$0")"
mkdir -p corpus/body corpus/scenario
for f in ../scenarios/*.toml ../scenarios/bodies/*.json; do
    cp "$f" "corpus/scenario/seed-$(basename "$f")"
done
for f in ../scenarios/bodies/*.json; do
    cp "$f" "corpus/body/seed-$(basename "$f")"
done
# The inline [pool] of each scenario as a JSON body too, when Python 3.11+ (tomllib) is here.
if python3 -c 'import tomllib' 2>/dev/null; then
    python3 - <<'PY'
import glob, json, os, tomllib
for f in sorted(glob.glob("../scenarios/*.toml")):
    with open(f, "rb") as fh:
        pool = tomllib.load(fh).get("pool")
    if pool is not None:
        name = os.path.basename(f)[: -len(".toml")]
        with open(f"corpus/body/seed-{name}.json", "w") as out:
            json.dump({"pool": pool}, out, indent=2)
            out.write("\n")
PY
fi
