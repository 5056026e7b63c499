#!/usr/bin/env bash
# h2load recipe: native gRPC (or gRPC-Web) Domain.get_public_key.
#
#   recipes/h2load-grpc.sh [URL] [DOMAIN] [PROTOCOL]
#   URL default http://127.0.0.1:50051, DOMAIN default domain-dev,
#   PROTOCOL grpc (default) or grpc-web. Extra h2load flags: H2LOAD_ARGS.
#
# The body file is the 5-byte gRPC frame header (flag 0, big-endian length)
# followed by the protobuf AuthenticationRequest {1: domain_id}; this script
# writes it with `tokengate-load --dump-body get-public-key` (the same bytes
# as get_public_key.domain-dev.grpc.bin for domain-dev).
#
# CAUTION: h2load counts a gRPC failure as a success. A gRPC error is an
# HTTP 200 answer whose grpc-status (in the trailers, or in the headers of a
# trailers-only answer) is not 0, and h2load only looks at the HTTP status.
# So the script first makes one call with curl and shows its grpc-status;
# for real error counts use tokengate-load, which reads grpc-status.
set -euo pipefail
url=${1:-http://127.0.0.1:50051}
domain=${2:-domain-dev}
protocol=${3:-grpc}
here=$(cd "$(dirname "$0")" && pwd)
load=${TOKENGATE_LOAD:-$here/../../../target/release/tokengate-load}
[ -x "$load" ] || load=$here/../../../target/debug/tokengate-load

case "$protocol" in
  grpc) ctype=application/grpc ;;
  grpc-web) ctype=application/grpc-web+proto ;;
  *) echo "protocol: grpc or grpc-web" >&2; exit 2 ;;
esac
body=$(mktemp)
trap 'rm -f "$body" "$body.out"' EXIT
"$load" --protocol "$protocol" --domain "$domain" --dump-body get-public-key > "$body"
path=/spaceone.api.identity.v1.Domain/get_public_key

echo "== one call, to see grpc-status (h2load will not tell):"
# -D - prints the response headers and (native gRPC) the trailers; a gRPC-Web
# answer carries its status in the body's trailer frame (flag 0x80), shown by `strings`.
curl -s --http2-prior-knowledge -D - -o "$body.out" -H "content-type: $ctype" -H 'te: trailers' \
  --data-binary @"$body" "$url$path" | grep -i '^grpc-' || true
strings "$body.out" | grep -i '^grpc-' || true
rm -f "$body.out"

echo "== h2load"
# -c connections, -m streams in flight per connection, -D seconds, --warm-up-time seconds.
# shellcheck disable=SC2086
h2load -c 4 -m 16 -D 10 --warm-up-time 2 -d "$body" \
  -H "content-type: $ctype" -H 'te: trailers' ${H2LOAD_ARGS:-} "$url$path"
