#!/usr/bin/env bash
# KV v2 read by a token holding ten policies (the ACL check at work): coffer --dev against
# bao -dev, both in memory, driven by the shared bench's wrk.lua. Run from the checkout after
# `cargo build --release`; needs bao and wrk on PATH.
set -euo pipefail
run() { # name addr
  local name=$1 A=$2 H='X-Vault-Token: root'
  curl -sf -H "$H" -X POST "$A/v1/secret/data/team7/app/db" -d '{"data":{"password":"x"}}' >/dev/null
  for i in $(seq 0 9); do
    pol="path \"secret/data/team$i/*\" { capabilities = [\"read\"] }
path \"secret/metadata/team$i/*\" { capabilities = [\"list\"] }
path \"secret/data/team$i/+/config\" { capabilities = [\"read\"] }
path \"transit/encrypt/key$i\" { capabilities = [\"update\"] }
path \"sys/policy/team$i\" { capabilities = [\"read\"] }"
    python3 -c 'import json,sys;print(json.dumps({"policy":sys.argv[1]}))' "$pol" | curl -sf -H "$H" -X POST "$A/v1/sys/policy/team$i" -d @- >/dev/null
  done
  T=$(curl -sf -H "$H" -X POST "$A/v1/auth/token/create" -d '{"policies":["team0","team1","team2","team3","team4","team5","team6","team7","team8","team9"],"ttl":"1h"}' | python3 -c 'import json,sys;print(json.load(sys.stdin)["auth"]["client_token"])')
  curl -sf -H "X-Vault-Token: $T" "$A/v1/secret/data/team7/app/db" >/dev/null
  BENCH_PATH=/v1/secret/data/team7/app/db BENCH_TOKEN=$T wrk -t2 -c32 -d3s -s "${SHARED_BENCH:-../shared/bench}/wrk.lua" "$A" >/dev/null
  for r in 1 2; do
    echo -n "$name round $r: "
    BENCH_PATH=/v1/secret/data/team7/app/db BENCH_TOKEN=$T wrk -t2 -c32 -d8s --timeout 5s -s "${SHARED_BENCH:-../shared/bench}/wrk.lua" "$A" | grep BENCHRESULT | awk '{for(i=2;i<=NF;i++){split($i,a,"="); v[a[1]]=a[2]}; printf "req/s=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d\n", v["requests"]/(v["duration_us"]/1e6), v["p50_us"]/1000, v["p99_us"]/1000, v["err_status"]+v["err_timeout"]+v["err_connect"]+v["err_read"]+v["err_write"]}'
  done
}
"${COFFER_BIN:-target/release/coffer}" server --dev --dev-root-token-id root --dev-listen-address 127.0.0.1:18780 >/tmp/tenpol-coffer.log 2>&1 & C=$!
bao server -dev -dev-root-token-id=root -dev-listen-address=127.0.0.1:18790 >/tmp/tenpol-bao.log 2>&1 & B=$!
trap 'kill $C $B 2>/dev/null' EXIT
for i in $(seq 1 100); do curl -sf http://127.0.0.1:18780/v1/sys/health >/dev/null && curl -sf http://127.0.0.1:18790/v1/sys/health >/dev/null && break; sleep 0.1; done
sleep 2
run coffer http://127.0.0.1:18780
run openbao http://127.0.0.1:18790
