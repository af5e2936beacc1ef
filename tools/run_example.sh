#!/bin/bash
# Runs the bookstore example: installs what is missing, builds, starts the example backend
# and gatewayd in front of it on loopback, makes a round of calls through the gateway, and
# keeps both running until Ctrl-C.
#
#   tools/run_example.sh            gateway on 127.0.0.1:9090 (gRPC) and 127.0.0.1:8080
#                                   (HTTP/JSON), backend on 127.0.0.1:50051
#   GATEWAY_PORT=9191 HTTP_PORT=8181 BACKEND_PORT=50151 tools/run_example.sh
#   tools/run_example.sh --once     make the calls, then stop (for scripts)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
gateway_port=${GATEWAY_PORT:-9090}
http_port=${HTTP_PORT:-8080}
backend_port=${BACKEND_PORT:-50051}
once=false
[ "${1:-}" = "--once" ] && once=true

tools/install_deps.sh
echo "== building (first build: several minutes) =="
bazel build //gateway:gatewayd //examples/bookstore:bookstore_backend \
  //examples/bookstore:bookstore_proto.pb
bin=$(bazel info bazel-bin 2>/dev/null)

run=$(mktemp -d /tmp/bookstore-example.XXXXXX)
cp "$bin/examples/bookstore/bookstore_proto.pb" "$run/"
sed -e "s/127.0.0.1:9090/127.0.0.1:$gateway_port/" \
    -e "s/127.0.0.1:50051/127.0.0.1:$backend_port/" \
    -e "s/127.0.0.1:8080/127.0.0.1:$http_port/" \
    examples/bookstore/gateway.yaml > "$run/gateway.yaml"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

wait_for() {  # log file, what, [pattern]
  for _ in $(seq 1 100); do
    grep -q "${3:-listening on}" "$1" && return 0
    sleep 0.1
  done
  echo "$2 did not start:"; cat "$1"; exit 1
}

"$bin/examples/bookstore/bookstore_backend" --listen="127.0.0.1:$backend_port" \
  2> "$run/backend.log" &
pids+=($!)
wait_for "$run/backend.log" bookstore_backend
"$bin/gateway/gatewayd" --config="$run/gateway.yaml" 2> "$run/gatewayd.log" &
pids+=($!)
wait_for "$run/gatewayd.log" gatewayd "http listening on"

cat <<MSG

== running ==
  backend  bookstore.v1.Bookstore on 127.0.0.1:$backend_port   (log: $run/backend.log)
  gatewayd gRPC front end on 127.0.0.1:$gateway_port           (log: $run/gatewayd.log)
           HTTP/JSON front end on 127.0.0.1:$http_port
  config   $run/gateway.yaml

== calling the gateway ==
MSG
/usr/bin/python3 examples/bookstore/client.py --target="127.0.0.1:$gateway_port" \
  --descriptor_set="$run/bookstore_proto.pb"

echo
echo "== the same service over HTTP/JSON =="
echo "\$ curl http://127.0.0.1:$http_port/v1/shelves/1/books?page_size=2"
curl -sS --max-time 10 "http://127.0.0.1:$http_port/v1/shelves/1/books?page_size=2"
echo

echo
echo "== and over gRPC-Web (as a browser would call it) =="
echo "\$ tools/grpcweb/grpc_web_client.py --address=127.0.0.1:$http_port --method=/bookstore.v1.Bookstore/GetShelf --json='{\"shelf\": \"1\"}' ..."
/usr/bin/python3 tools/grpcweb/grpc_web_client.py --address="127.0.0.1:$http_port" \
  --descriptor_set="$run/bookstore_proto.pb" --method=/bookstore.v1.Bookstore/GetShelf \
  --json='{"shelf": "1"}'

cat <<MSG

Call it yourself over REST:
  curl http://127.0.0.1:$http_port/v1/shelves
  curl -X POST http://127.0.0.1:$http_port/v1/shelves/1/books -d '{"title": "Kindred", "author": "Octavia E. Butler"}'
  curl -X PATCH 'http://127.0.0.1:$http_port/v1/shelves/1/books/1?update_mask=title' -d '{"title": "New title"}'
  curl -N http://127.0.0.1:$http_port/v1/shelves/1/books:stream

over gRPC-Web (binary, or --text for application/grpc-web-text):
  /usr/bin/python3 $root/tools/grpcweb/grpc_web_client.py --address=127.0.0.1:$http_port \\
      --descriptor_set=$run/bookstore_proto.pb --method=/bookstore.v1.Bookstore/ListBooks \\
      --json='{"shelf": "1"}'

or with any gRPC client (this one needs only python3-grpcio):
  /usr/bin/python3 $root/examples/bookstore/client.py --target=127.0.0.1:$gateway_port \\
      --descriptor_set=$run/bookstore_proto.pb
More: examples/bookstore/README.md. Ctrl-C stops both processes.
MSG
$once && exit 0
wait
