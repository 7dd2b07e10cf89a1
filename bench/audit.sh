#!/usr/bin/env bash
# KV v2 read throughput with one file audit device against none, for coffer and OpenBao, with
# the shared bench (../shared/bench/run.sh, durable mode). Each run.sh call starts a fresh server
# from a generated config; wrappers named like the servers append an `audit "file"` block to it.
# Runs alternate (plain, audit) per round so that drift of the machine's load hits both.
# Run from the checkout after `cargo build --release`; needs bao and wrk (run.sh installs them).
set -euo pipefail
shared="${SHARED_BENCH:-../shared/bench}"
rounds="${ROUNDS:-2}"
coffer="$(realpath "${COFFER_BIN:-target/release/coffer}")"
bao="$(command -v bao)"
wrap="$(mktemp -d)"
trap 'rm -rf "$wrap"' EXIT
# The config path is the last argument of coffer (`--config FILE`) and bao (`-config=FILE`).
cat >"$wrap/coffer" <<SH
#!/usr/bin/env bash
cfg="\${@: -1}"
printf 'audit "file" "file" {\n  options {\n    file_path = "%s"\n  }\n}\n' "\$(dirname "\$cfg")/audit.log" >>"\$cfg"
exec "$coffer" "\$@"
SH
mkdir "$wrap/bin"
cat >"$wrap/bin/bao" <<SH
#!/usr/bin/env bash
last="\${@: -1}"
if [ "\${last#-config=}" != "\$last" ]; then
  cfg="\${last#-config=}"
  printf 'audit "file" "file" {\n  options {\n    file_path = "%s"\n  }\n}\n' "\$(dirname "\$cfg")/audit.log" >>"\$cfg"
fi
exec "$bao" "\$@"
SH
chmod +x "$wrap/coffer" "$wrap/bin/bao"
one() { # label target [env...]
  local label=$1 target=$2
  shift 2
  printf '%-14s ' "$label"
  env "$@" BENCH_SCENARIOS=kv2-read BENCH_REPEAT=1 BENCH_DURATION="${BENCH_DURATION:-8}" \
    "$shared/run.sh" "$target" durable 2>&1 | grep -E '^[a-z]+/durable +kv2-read|^bench:' |
    awk '/^bench:/ {print; next} {print $3, "req/s  p99", $5, "ms  errors", $6, " srv cpu", $8, $9}' || true
}
for r in $(seq 1 "$rounds"); do
  echo "# round $r"
  one coffer coffer COFFER_BIN="$coffer"
  one coffer+audit coffer COFFER_BIN="$wrap/coffer"
  one openbao openbao
  one openbao+audit openbao PATH="$wrap/bin:$PATH"
done
