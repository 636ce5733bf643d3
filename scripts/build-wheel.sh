#!/usr/bin/env bash
# Builds meshplane's wheel (with the compiled placement kernels) and installs it, with
# the locked runtime dependencies, into a fresh virtualenv. The Dockerfile runs this
# very script for its image, and tests/e2e/test_wheel.py runs it on this machine, so
# what the tests prove is what the image holds.
#
#   scripts/build-wheel.sh wheel [DIST]           build the wheel into DIST (dist/)
#   scripts/build-wheel.sh install VENV [DIST]    fresh VENV: the lock, then the wheel
#   scripts/build-wheel.sh all VENV [DIST]        both
#
# Environment: PYTHON (python3) makes the build environment and the venv;
# MESHPLANE_OPENMP (1 here: the kernels must run in parallel in the image; setup.py
# fails the build if the compiler refuses OpenMP).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
lock="$repo/requirements/runtime.lock"
stage=""
trap '[[ -z "$stage" ]] || rm -rf "$stage"' EXIT

usage() { sed -n '7,9p' "${BASH_SOURCE[0]}" | sed 's/^# *//' >&2; exit 2; }

build_wheel() {
    local dist="$1"
    # A clean copy of the sources: setuptools reuses build/ and a stale build/lib would
    # put modules deleted since into the wheel; the editable install's .c and .so in
    # placement_ext/ must not stand in for a fresh compile either. (The image's build
    # context has none of these: .dockerignore.)
    local start=$SECONDS
    stage="$(mktemp -d "${TMPDIR:-/tmp}/meshplane-wheel.XXXXXX")"
    tar -C "$repo" -cf - \
        --exclude=./.git --exclude='./.venv*' --exclude=./build --exclude=./dist \
        --exclude='*.egg-info' --exclude=__pycache__ --exclude='./.*_cache' --exclude=./.hypothesis \
        --exclude='./placement_ext/*.c' --exclude='./placement_ext/*.so' --exclude='./placement_ext/*.html' \
        --exclude=./tests --exclude=./bench --exclude=./docs --exclude=./helm --exclude=./.make \
        . | tar -C "$stage" -xf -
    mkdir -p "$dist"
    rm -f "$dist"/meshplane-*.whl
    # pip builds in an isolated environment with pyproject's [build-system] requires.
    MESHPLANE_OPENMP="${MESHPLANE_OPENMP:-1}" \
        "$python" -m pip wheel --no-deps --wheel-dir "$dist" "$stage"
    echo "build-wheel: built $(basename "$dist"/meshplane-*.whl) in $((SECONDS - start)) s" >&2
}

install_venv() {
    local venv="$1" dist="$2"
    local wheels=("$dist"/meshplane-*.whl) start=$SECONDS
    [[ ${#wheels[@]} -eq 1 && -f "${wheels[0]}" ]] || {
        echo "build-wheel: expected exactly one meshplane wheel in $dist, found: ${wheels[*]}" >&2; exit 1; }
    rm -rf "$venv"
    "$python" -m venv "$venv"
    # The lock has a sha256 for every distribution: pip refuses anything else.
    # Binary wheels only: the runtime image has no compiler.
    "$venv/bin/pip" install --require-hashes --only-binary=:all: --no-deps -r "$lock"
    # The lock already holds every dependency: --no-deps, so nothing unlocked slips in.
    "$venv/bin/pip" install --no-deps "${wheels[0]}"
    # Every installed requirement satisfied: the lock matches the wheel's metadata.
    "$venv/bin/pip" check
    echo "build-wheel: installed the wheel and $(grep -c '==' "$lock") locked dependencies into $venv in $((SECONDS - start)) s" >&2
}

cmd="${1:-}"
case "$cmd" in
    wheel) build_wheel "$(realpath -m "${2:-$repo/dist}")" ;;
    install) [[ $# -ge 2 ]] || usage; install_venv "$(realpath -m "$2")" "$(realpath -m "${3:-$repo/dist}")" ;;
    all)
        [[ $# -ge 2 ]] || usage
        dist="$(realpath -m "${3:-$repo/dist}")"
        build_wheel "$dist"
        install_venv "$(realpath -m "$2")" "$dist"
        ;;
    *) usage ;;
esac
