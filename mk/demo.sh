#!/bin/sh
# demo.sh: starts the bundled mock server on 127.0.0.1, gives it a service
# with two pending endpoints, then accepts one and rejects the other with
# examples/accept.lua and examples/reject.lua, and stops the mock.
set -e
LUA=${LUA:-lua5.4}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
/usr/bin/python3 spec/mock/server.py --port 0 --port-file "$dir/port" --quiet &
pid=$!
i=0
while [ ! -s "$dir/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
port=$(cat "$dir/port")
service=4e9a7c1b-5d2f-4a8e-9b3c-0123456789ab
curl -sf -o /dev/null http://127.0.0.1:$port/_mock/services -H 'Content-Type: application/json' -d '{
  "project_id": "p-0123456789", "service_id": "'$service'",
  "endpoints": [
    {"id": "705290f3-0d00-41f2-aedc-71f09844e879", "domain_id": "6e9dfd51d1124e8d8498dce894923a0d", "marker_id": 422321321312321321},
    {"id": "1a2b3c4d-0000-4000-8000-00000000beef", "domain_id": "0badc0ffee0000000000000000000000"}]}'
export VPCEP_ENDPOINT=http://127.0.0.1:$port HUAWEICLOUD_SDK_PROJECT_ID=p-0123456789 VPCEP_TOKEN=mock-token
export LUA_CPATH="build/$LUA/?.so;;"
echo "mock VPCEP server on $VPCEP_ENDPOINT"
echo "\$ $LUA examples/accept.lua $service 705290f3-0d00-41f2-aedc-71f09844e879"
$LUA examples/accept.lua $service 705290f3-0d00-41f2-aedc-71f09844e879
echo "\$ $LUA examples/reject.lua $service 1a2b3c4d-0000-4000-8000-00000000beef"
$LUA examples/reject.lua $service 1a2b3c4d-0000-4000-8000-00000000beef
