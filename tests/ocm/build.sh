#!/usr/bin/env bash
# Builds meshplane-test-ocm (Open Cluster Management's registration hub controller, work
# hub manager and klusterlet agent in one binary, from OCM's Go module at the version
# pinned in go.mod; see main.go) and copies the OCM CRDs the hub and the agent need from
# the open-cluster-management.io/api module, for the end-to-end tests (docs/e2e.md).
#
# The result is cached OUTSIDE the clone (CI clones afresh on each run), keyed by the
# OCM version and a hash of the inputs (Go version/OS/arch, go.mod, go.sum, *.go, this
# script):
#
#   ${MESHPLANE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/meshplane}/ocm/<ocm version>-<hash12>/
#       bin/meshplane-test-ocm
#       crds/hub/*.yaml      ManagedCluster(Set, SetBinding), Placement(Decision), AddOnPlacementScore,
#                            ManifestWork, ManifestWorkReplicaSet, the addon.open-cluster-management.io kinds
#       crds/spoke/*.yaml    AppliedManifestWork, ClusterClaim
#
# A cold build (empty Go build cache, modules already downloaded) takes about 3 min on
# 2 cores (measured: 2 min 44 s, 4 min 9 s user), plus the download of 168 modules
# (~130 MB of zips, ~850 MB unpacked) when the module cache is empty too; with a warm
# build cache (e.g. only this cache dir was removed) a few seconds; an up-to-date check
# takes ~0.01 s (no lock, no go command but 'go env').
#
# Usage: tests/ocm/build.sh [--force]
# Prints the cache directory as its last line on success.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
force=0
[[ "${1:-}" == "--force" ]] && force=1

die() {
    echo "meshplane-test-ocm build FAILED: $*" >&2
    exit 1
}

command -v go >/dev/null 2>&1 || die "the 'go' command is not on PATH (Go >= 1.25 is needed: see docs/e2e.md)"

ocm_version="$(awk '$1 == "open-cluster-management.io/ocm" && $2 ~ /^v/ {print $2; exit}' go.mod)"
[[ -n "$ocm_version" ]] || die "cannot find the open-cluster-management.io/ocm version in $here/go.mod"

mapfile -t go_env < <(go env GOVERSION GOOS GOARCH)
want="$({
    echo "${go_env[*]}"
    # shellcheck disable=SC2046
    sha256sum go.mod go.sum build.sh $(LC_ALL=C ls -1 -- *.go)
} | sha256sum | cut -d' ' -f1)"

root="${MESHPLANE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/meshplane}/ocm"
dir="$root/$ocm_version-${want:0:12}"
out="$dir/bin/meshplane-test-ocm"

up_to_date() {
    [[ -x "$out" && -f "$dir/.stamp" && "$(cat "$dir/.stamp")" == "$want" ]]
}

# The directory is complete once it exists (it is renamed into place at the end), so
# the check needs no lock.
if [[ $force -eq 0 ]] && up_to_date; then
    echo "meshplane-test-ocm is up to date" >&2
    echo "$dir"
    exit 0
fi

mkdir -p "$root"
# One build at a time (several pytest processes may call this at once).
exec 9>"$root/.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi
if [[ $force -eq 0 ]] && up_to_date; then  # built by whoever held the lock
    echo "meshplane-test-ocm is up to date" >&2
    echo "$dir"
    exit 0
fi

log="$root/$ocm_version-${want:0:12}.build.log"
work="$root/.building-${want:0:12}"
rm -rf "$work"
mkdir -p "$work/bin" "$work/crds/hub" "$work/crds/spoke"

fail() {
    rm -rf "$work"
    {
        echo
        echo "---- last 40 lines of $log ----"
        tail -n 40 "$log"
        echo "----"
        echo "Hints: the Go module proxy must be reachable (GOPROXY=$(go env GOPROXY));"
        echo "go.sum must be complete (run 'go mod tidy' in $here after editing go.mod);"
        echo "Go >= 1.25 is required (found ${go_env[0]})."
    } >&2
    die "$* (full log: $log)"
}

major="${ocm_version#v}"; major="${major%%.*}"
minor="${ocm_version#v*.}"; minor="${minor%%.*}"
pkg=open-cluster-management.io/ocm/pkg/version
ldflags="-s -w -X $pkg.versionFromGit=$ocm_version -X $pkg.majorFromGit=$major -X $pkg.minorFromGit=$minor"

echo "building meshplane-test-ocm (Open Cluster Management $ocm_version: registration hub controller," \
     "work hub manager, klusterlet agent) with ${go_env[0]} into $dir" >&2
echo "(a cold build takes about 3 min on 2 cores, plus the module download when the module cache is empty)..." >&2
start=$(date +%s)
: >"$log"
if ! go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$work/bin/meshplane-test-ocm" . >>"$log" 2>&1; then
    fail "go build exited non-zero"
fi

# The CRDs, from the API module the binary was built with. The addon kinds come in
# their v1alpha1-only form: the v1beta1 files serve both versions and, as OCM installs
# them, convert through the addon manager's webhook, which the tests do not run (every
# controller started here reads and writes v1alpha1).
api_dir="$(go list -m -f '{{.Dir}}' open-cluster-management.io/api 2>>"$log")" || fail "go list -m open-cluster-management.io/api failed"
[[ -d "$api_dir" ]] || fail "the open-cluster-management.io/api module is not in the module cache ($api_dir)"
hub_crds=(
    cluster/v1/0000_00_clusters.open-cluster-management.io_managedclusters.crd.yaml
    cluster/v1beta2/0000_00_clusters.open-cluster-management.io_managedclustersets.crd.yaml
    cluster/v1beta2/0000_01_clusters.open-cluster-management.io_managedclustersetbindings.crd.yaml
    cluster/v1beta1/0000_02_clusters.open-cluster-management.io_placements.crd.yaml
    cluster/v1beta1/0000_03_clusters.open-cluster-management.io_placementdecisions.crd.yaml
    cluster/v1alpha1/0000_05_clusters.open-cluster-management.io_addonplacementscores.crd.yaml
    work/v1/0000_00_work.open-cluster-management.io_manifestworks.crd.yaml
    work/v1alpha1/0000_00_work.open-cluster-management.io_manifestworkreplicasets.crd.yaml
    addon/v1alpha1/0000_00_addon.open-cluster-management.io_clustermanagementaddons.crd.yaml
    addon/v1alpha1/0000_01_addon.open-cluster-management.io_managedclusteraddons.crd.yaml
    addon/v1alpha1/0000_02_addon.open-cluster-management.io_addondeploymentconfigs.crd.yaml
    addon/v1alpha1/0000_03_addon.open-cluster-management.io_addontemplates.crd.yaml
)
spoke_crds=(
    work/v1/0000_01_work.open-cluster-management.io_appliedmanifestworks.crd.yaml
    cluster/v1alpha1/0000_02_clusters.open-cluster-management.io_clusterclaims.crd.yaml
)
for f in "${hub_crds[@]}"; do
    cp "$api_dir/$f" "$work/crds/hub/" 2>>"$log" || fail "cannot copy $f from $api_dir"
done
for f in "${spoke_crds[@]}"; do
    cp "$api_dir/$f" "$work/crds/spoke/" 2>>"$log" || fail "cannot copy $f from $api_dir"
done
chmod -R u+w "$work/crds"  # the module cache is read-only

echo "$want" >"$work/.stamp"
cp "$log" "$work/build.log"
rm -rf "$dir"
mv "$work" "$dir"
echo "built $out ($(du -h "$out" | cut -f1)) and copied $(( ${#hub_crds[@]} + ${#spoke_crds[@]} )) CRDs in $(( $(date +%s) - start ))s" >&2
echo "$dir"
