#!/usr/bin/env bash
# Crypto services under load, coffer --dev against bao -dev (both in memory, loopback ports in
# 18400-18499): transit encrypt of 32 B and of 4 KiB (aes256-gcm96), transit sign of 32 B
# (ed25519), PKI issue of an EC P-256 certificate (role with no_store, 1h TTL, EC P-256 root),
# all by a token holding only a policy for these paths. wrk -t2 -c32 drives each scenario for
# two rounds of BENCH_SECONDS (8) seconds per server, the servers taking turns to go first.
# req/s is the mean of the rounds, p99 the worse round; any non-2xx answer or socket error makes
# the row INVALID. Run from the checkout after `cargo build --release`; needs bao, wrk, curl and
# python3 on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
COFFER_BIN=${COFFER_BIN:-target/release/coffer}
ROUND_SECONDS=${BENCH_SECONDS:-8}
LUA=bench/crypto.lua
OUT=$(mktemp -d /tmp/crypto-bench.XXXXXX)

# A port in 18400-18499 that is free, with the next one free too (bao's cluster listener),
# avoiding the ports given.
free_port() {
  python3 - "$@" <<'PY'
import random, socket, sys
avoid = {int(p) for p in sys.argv[1:]} | {int(p) + 1 for p in sys.argv[1:]}
def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
ports = list(range(18400, 18499))
random.shuffle(ports)
for p in ports:
    if p not in avoid and p + 1 not in avoid and free(p) and free(p + 1):
        print(p)
        break
else:
    sys.exit("no free port pair in 18400-18499")
PY
}

api() { # addr method path [json]: the answer's body; fails on a non-2xx status
  curl -sSf -H 'X-Vault-Token: root' -X "$2" ${4:+-d "$4"} "$1/v1/$3"
}

setup() { # addr: mounts, keys, CA, role and policy; prints the bench token
  local A=$1
  api "$A" POST sys/mounts/transit '{"type":"transit"}' >/dev/null
  api "$A" POST transit/keys/bench '{"type":"aes256-gcm96"}' >/dev/null
  api "$A" POST transit/keys/sign '{"type":"ed25519"}' >/dev/null
  api "$A" POST sys/mounts/pki '{"type":"pki","config":{"max_lease_ttl":"87600h"}}' >/dev/null
  api "$A" POST pki/root/generate/internal \
    '{"common_name":"bench root","key_type":"ec","key_bits":256,"ttl":"87600h"}' >/dev/null
  api "$A" POST pki/roles/bench \
    '{"allow_any_name":true,"key_type":"ec","key_bits":256,"ttl":"1h","no_store":true}' >/dev/null
  python3 -c 'import json; print(json.dumps({"policy": """
path "transit/encrypt/bench" { capabilities = ["update"] }
path "transit/sign/sign" { capabilities = ["update"] }
path "pki/issue/bench" { capabilities = ["update"] }
"""}))' | curl -sSf -H 'X-Vault-Token: root' -X POST -d @- "$A/v1/sys/policy/crypto-bench" >/dev/null
  api "$A" POST auth/token/create '{"policies":["crypto-bench"],"ttl":"2h"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["auth"]["client_token"])'
}

b64_of() { python3 -c "import base64,os; print(base64.b64encode(os.urandom($1)).decode())"; }

# Scenarios: name, path, body.
SCENARIOS=(
  "transit-encrypt-32B|/v1/transit/encrypt/bench|{\"plaintext\":\"$(b64_of 32)\"}"
  "transit-encrypt-4KiB|/v1/transit/encrypt/bench|{\"plaintext\":\"$(b64_of 4096)\"}"
  "transit-sign-ed25519|/v1/transit/sign/sign|{\"input\":\"$(b64_of 32)\"}"
  "pki-issue-ec-p256|/v1/pki/issue/bench|{\"common_name\":\"svc.bench.example\"}"
)

run_wrk() { # addr token path body seconds: one BENCHRESULT line
  BENCH_PATH=$3 BENCH_BODY=$4 BENCH_TOKEN=$2 \
    wrk -t2 -c32 -d"$5"s --timeout 5s -s "$LUA" "$1" | grep '^BENCHRESULT'
}

C_PORT=$(free_port)
B_PORT=$(free_port "$C_PORT")
C=http://127.0.0.1:$C_PORT
B=http://127.0.0.1:$B_PORT
"$COFFER_BIN" server --dev --dev-root-token-id root --dev-listen-address "127.0.0.1:$C_PORT" \
  >"$OUT/coffer.log" 2>&1 &
C_PID=$!
bao server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$B_PORT" \
  >"$OUT/bao.log" 2>&1 &
B_PID=$!
trap 'kill $C_PID $B_PID 2>/dev/null; wait $C_PID $B_PID 2>/dev/null' EXIT
for _ in $(seq 1 200); do
  curl -sf "$C/v1/sys/health" >/dev/null && curl -sf "$B/v1/sys/health" >/dev/null && break
  sleep 0.1
done
declare -A TOKEN
TOKEN[coffer]=$(setup "$C")
TOKEN[openbao]=$(setup "$B")
declare -A ADDR=([coffer]=$C [openbao]=$B)
echo "$("$COFFER_BIN" --version) ($COFFER_BIN) at $C; $(bao version) at $B"

for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r name path body <<<"$s"
  # Each scenario must work by the bench token before it is measured; then a short warm-up.
  for server in coffer openbao; do
    curl -sSf -o /dev/null -H "X-Vault-Token: ${TOKEN[$server]}" -X POST -d "$body" \
      "${ADDR[$server]}$path" || { echo "$name fails on $server" >&2; exit 1; }
    run_wrk "${ADDR[$server]}" "${TOKEN[$server]}" "$path" "$body" 2 >/dev/null
  done
  for round in 1 2; do
    order="coffer openbao"
    [ "$round" = 2 ] && order="openbao coffer"
    for server in $order; do
      line=$(run_wrk "${ADDR[$server]}" "${TOKEN[$server]}" "$path" "$body" "$ROUND_SECONDS")
      echo "$name $server round=$round ${line#BENCHRESULT }" | tee -a "$OUT/results"
    done
  done
done

python3 - "$OUT/results" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    name, server, *fields = line.split()
    v = dict(f.split("=") for f in fields)
    errors = sum(int(v[k]) for k in ("non2xx", "err_connect", "err_read", "err_write", "err_timeout"))
    r = rows.setdefault(name, {}).setdefault(server, {"rps": [], "p99": [], "errors": 0})
    r["rps"].append(int(v["requests"]) / (int(v["duration_us"]) / 1e6))
    r["p99"].append(int(v["p99_us"]) / 1000)
    r["errors"] += errors
print()
print(f"{'scenario':<22} {'coffer req/s':>12} {'p99 ms':>8} {'openbao req/s':>13} {'p99 ms':>8} {'ratio':>7}  errors")
for name, servers in rows.items():
    c, b = servers["coffer"], servers["openbao"]
    crps, brps = sum(c["rps"]) / len(c["rps"]), sum(b["rps"]) / len(b["rps"])
    errors = c["errors"] + b["errors"]
    status = f"INVALID (coffer {c['errors']}, openbao {b['errors']})" if errors else "0"
    print(f"{name:<22} {crps:>12.0f} {max(c['p99']):>8.2f} {brps:>13.0f} {max(b['p99']):>8.2f} "
          f"{crps / brps if brps else float('inf'):>6.2f}x  {status}")
PY
echo "raw rounds and server logs: $OUT"
