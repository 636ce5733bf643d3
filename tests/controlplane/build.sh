#!/usr/bin/env bash
# Builds tests/controlplane/bin/meshplane-test-controlplane (embedded etcd, the real
# kube-apiserver, kube-scheduler and some kube-controller-manager controllers, and KWOK,
# from Go modules) for the end-to-end tests.
#
# The build is cached: it runs only when go.mod, go.sum, a *.go file, this script or
# the Go toolchain changed since the last successful build (hash in bin/.stamp).
# A cold build (empty build cache) compiles most of Kubernetes plus KWOK: ~10 min of
# CPU, 6-12 min on 2 cores depending on load, plus the module download when the module
# cache is empty too; a rebuild after editing a *.go file ~20 s; an up-to-date check
# takes well under a second.
#
# Usage: tests/controlplane/build.sh [--force]
# Prints the binary's path as its last line on success.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
bin_dir="$here/bin"
out="$bin_dir/meshplane-test-controlplane"
stamp="$bin_dir/.stamp"
log="$bin_dir/build.log"
force=0
[[ "${1:-}" == "--force" ]] && force=1

die() {
    echo "meshplane-test-controlplane build FAILED: $*" >&2
    exit 1
}

command -v go >/dev/null 2>&1 || die "the 'go' command is not on PATH (Go >= 1.26 is needed: see docs/e2e.md)"
mkdir -p "$bin_dir"

# One build at a time (several pytest processes may call this at once).
exec 9>"$bin_dir/.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi

go_version="$(go env GOVERSION)"
inputs_hash() {
    {
        echo "$go_version $(go env GOOS)/$(go env GOARCH)"
        # shellcheck disable=SC2046
        sha256sum go.mod go.sum build.sh $(LC_ALL=C ls -1 -- *.go)
    } | sha256sum | cut -d' ' -f1
}
want="$(inputs_hash)"

if [[ $force -eq 0 && -x "$out" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "meshplane-test-controlplane is up to date" >&2
    echo "$out"
    exit 0
fi

k8s_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' go.mod)"
[[ -n "$k8s_version" ]] || die "cannot find the k8s.io/kubernetes version in $here/go.mod"
major="${k8s_version#v}"; major="${major%%.*}"
minor="${k8s_version#v*.}"; minor="${minor%%.*}"
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"

echo "building meshplane-test-controlplane (kube-apiserver, kube-scheduler $k8s_version + etcd + KWOK) with $go_version" >&2
echo "(a cold build fetches ~560 MB of modules through GOPROXY=$(go env GOPROXY) and takes 6-12 min on 2 cores)..." >&2
start=$(date +%s)
rm -f "$stamp"
if ! go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$out.tmp" . >"$log" 2>&1; then
    rm -f "$out.tmp"
    {
        echo
        echo "---- last 40 lines of $log ----"
        tail -n 40 "$log"
        echo "----"
        echo "Hints: the Go module proxy must be reachable (GOPROXY=$(go env GOPROXY));"
        echo "go.sum must be complete (run 'go mod tidy' in $here after editing go.mod);"
        echo "Go >= 1.26 is required (found $go_version)."
    } >&2
    die "go build exited non-zero (full log: $log)"
fi
mv -f "$out.tmp" "$out"
echo "$want" >"$stamp"
echo "built $out ($(du -h "$out" | cut -f1)) in $(( $(date +%s) - start ))s" >&2
echo "$out"
