#!/usr/bin/env bash
# Builds the command-line tools the tests run for real (today: helm) from the Go
# module proxy, at the versions pinned in this folder's go.mod/go.sum, into bin/.
# Cached: a build runs only when go.mod, go.sum, tools.go, this script or the Go
# toolchain changed (hash in bin/.stamp). Cold: about 2 minutes on 2 cores.
# Prints the bin/ folder as its last line on success.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
mkdir -p bin
command -v go >/dev/null 2>&1 || { echo "tools build FAILED: the 'go' command is not on PATH" >&2; exit 1; }

exec 9>bin/.lock
command -v flock >/dev/null 2>&1 && flock 9

want="$({ go env GOVERSION GOOS GOARCH; sha256sum go.mod go.sum tools.go build.sh; } | sha256sum | cut -d' ' -f1)"
if [[ -x bin/helm && -f bin/.stamp && "$(cat bin/.stamp)" == "$want" ]]; then
    echo "test tools are up to date" >&2
    echo "$here/bin"
    exit 0
fi

helm_version="$(go list -m -f '{{.Version}}' helm.sh/helm/v4)"
echo "building helm $helm_version from Go modules (cold: about 2 minutes)..." >&2
rm -f bin/.stamp
if ! go build -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$helm_version" \
        -o bin/helm.tmp helm.sh/helm/v4/cmd/helm >bin/build.log 2>&1; then
    tail -n 40 bin/build.log >&2
    echo "tools build FAILED: go build of helm exited non-zero (full log: $here/bin/build.log)" >&2
    exit 1
fi
mv -f bin/helm.tmp bin/helm
echo "$want" >bin/.stamp
echo "built $here/bin/helm ($(bin/helm version --short))" >&2
echo "$here/bin"
