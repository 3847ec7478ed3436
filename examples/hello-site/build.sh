#!/bin/sh
# The "build" of this example: tagflip runs it in the new release directory
# (releases/<tag>), so everything it writes lands in that release only.
set -eu

release=${TAGFLIP_RELEASE:-unknown}
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)

printf 'release: %s\nbuilt: %s\n' "$release" "$built" > build-info.txt
echo "hello-site: built $release at $built"
