#!/usr/bin/env bash
# Build the offline wheelhouse of the llama.cpp inference server (lab/llm/requirements.txt), for the
# targets' Python: CPython 3.11 (Debian 12), manylinux x86_64. On the target:
#   pip install --no-index --find-links WHEELHOUSE -r lab/llm/requirements.txt
#
#   wheelhouse.sh [DIR]     DIR defaults to .cache/wheels/llm under the repository root
#
# llama-cpp-python has no wheel on PyPI. Its wheel is, in this order:
#   1. ../shared/wheels/<wheel> beside the checkout, when present (its sha256 must match below);
#   2. one this script built earlier, kept in .cache/wheels/llm with a .sha256 file beside it;
#   3. built now from the PyPI source distribution (sha256 checked), 4 to 7 minutes on 2 cores;
#      it needs a C++ compiler (and cmake, else pip fetches it), and stays in .cache/wheels/llm.
# Every other wheel is downloaded from the package index only when DIR lacks it. Then the
# wheelhouse is checked by resolving requirements.txt against DIR alone, offline, for the target's
# platform. A run with everything present only verifies (a few seconds).
#
# Environment: PYTHON (the interpreter whose pip downloads and builds; default: the repository's
# .venv, else python3.11, else python3).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REQUIREMENTS="${REPO_ROOT}/lab/llm/requirements.txt"
BUILD_CACHE="${REPO_ROOT}/.cache/wheels/llm"

LLAMA_VERSION=0.3.36
LLAMA_WHEEL="llama_cpp_python-${LLAMA_VERSION}-py3-none-linux_x86_64.whl"
LLAMA_WHEEL_SHA256=0e08d13e76044c8980b46dcf3750d76bb9bc5ad943453b94e7a390454b01d068
LLAMA_SDIST="llama_cpp_python-${LLAMA_VERSION}.tar.gz"
LLAMA_SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
SHARED_WHEEL="${REPO_ROOT}/../shared/wheels/${LLAMA_WHEEL}"
# Baseline x86-64 only (runs on any of the machines), and no libcurl download support.
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_CURL=OFF"

# The target: CPython 3.11 on glibc 2.36 (Debian 12). pip does not widen --platform to older
# manylinux levels by itself, so every level the target accepts is listed.
TARGET_TAGS=(--python-version 3.11 --implementation cp --abi cp311 --platform linux_x86_64
  --platform manylinux1_x86_64 --platform manylinux2010_x86_64 --platform manylinux2014_x86_64)
for minor in $(seq 5 36); do TARGET_TAGS+=(--platform "manylinux_2_${minor}_x86_64"); done

log() { printf 'wheelhouse: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

case "${1:-}" in
  -h | --help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
[[ $# -le 1 ]] || die "usage: $0 [DIR]"
DEST="${1:-${BUILD_CACHE}}"
mkdir -p "${DEST}"
DEST="$(cd "${DEST}" && pwd)"

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "${REPO_ROOT}/.venv/bin/python" ]]; then PYTHON="${REPO_ROOT}/.venv/bin/python"
  elif command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11
  else PYTHON=python3
  fi
fi
"${PYTHON}" -m pip --version >/dev/null 2>&1 || die "${PYTHON} has no pip (apt-get install python3-pip, or set PYTHON)"
pip() { "${PYTHON}" -m pip --disable-pip-version-check "$@"; }

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# --- llama-cpp-python --------------------------------------------------------------------------

# Print the path of a usable llama-cpp-python wheel, building one when there is none.
llama_wheel_source() {
  if [[ -f "${SHARED_WHEEL}" ]]; then
    local got
    got="$(sha256 "${SHARED_WHEEL}")"
    [[ "${got}" == "${LLAMA_WHEEL_SHA256}" ]] ||
      die "${SHARED_WHEEL}: sha256 ${got}, expected ${LLAMA_WHEEL_SHA256}"
    log "llama-cpp-python: prebuilt wheel ${SHARED_WHEEL} (sha256 ok)"
    printf '%s\n' "${SHARED_WHEEL}"
    return 0
  fi

  local built
  for built in "${BUILD_CACHE}"/llama_cpp_python-"${LLAMA_VERSION}"-*.whl; do
    [[ -f "${built}" && -f "${built}.sha256" ]] || continue
    if [[ "$(sha256 "${built}")" == "$(cat "${built}.sha256")" ]]; then
      log "llama-cpp-python: wheel built earlier, ${built} (sha256 ok)"
      printf '%s\n' "${built}"
      return 0
    fi
    log "llama-cpp-python: ${built} does not match its .sha256; building again"
    rm -f "${built}" "${built}.sha256"
  done

  build_llama_wheel
}

build_llama_wheel() {
  command -v c++ >/dev/null 2>&1 || die "building llama-cpp-python needs a C++ compiler (apt-get install build-essential)"
  command -v cmake >/dev/null 2>&1 || log "no cmake on PATH: the build fetches the cmake wheel from the index"
  local work sdist got wheel
  work="$(mktemp -d "${TMPDIR:-/tmp}/llama-wheel.XXXXXX")"
  # shellcheck disable=SC2064  # expand now: work is local
  trap "rm -rf '${work}'" EXIT
  log "llama-cpp-python: no prebuilt wheel (${SHARED_WHEEL}); building ${LLAMA_VERSION} from source, 4 to 7 minutes on 2 cores"
  pip download -q --no-deps --no-binary :all: -d "${work}" "llama-cpp-python==${LLAMA_VERSION}"
  sdist="${work}/${LLAMA_SDIST}"
  [[ -f "${sdist}" ]] || die "the index gave no ${LLAMA_SDIST}"
  got="$(sha256 "${sdist}")"
  [[ "${got}" == "${LLAMA_SDIST_SHA256}" ]] || die "${LLAMA_SDIST}: sha256 ${got}, expected ${LLAMA_SDIST_SHA256}"
  CMAKE_ARGS="${LLAMA_CMAKE_ARGS}" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
    pip wheel -q --no-deps -w "${work}/out" "${sdist}" >&2
  wheel="$(find "${work}/out" -name "llama_cpp_python-${LLAMA_VERSION}-*.whl" -print -quit)"
  [[ -n "${wheel}" ]] || die "pip wheel produced no llama-cpp-python wheel"
  mkdir -p "${BUILD_CACHE}"
  mv "${wheel}" "${BUILD_CACHE}/"
  wheel="${BUILD_CACHE}/$(basename "${wheel}")"
  sha256 "${wheel}" >"${wheel}.sha256"
  rm -rf "${work}"
  trap - EXIT
  log "llama-cpp-python: built ${wheel} (sha256 $(cat "${wheel}.sha256"))"
  printf '%s\n' "${wheel}"
}

src="$(llama_wheel_source)"
dst="${DEST}/$(basename "${src}")"
if [[ "${src}" != "${dst}" ]] && ! cmp -s "${src}" "${dst}"; then
  install -m 0644 "${src}" "${dst}.tmp"
  mv "${dst}.tmp" "${dst}"
  log "llama-cpp-python: copied into ${DEST}"
fi
# A copy kept in the build cache counts as built earlier: a later run without ../shared reuses it.
if [[ "${DEST}" == "${BUILD_CACHE}" ]]; then
  sum="$(sha256 "${dst}")"
  [[ "$(cat "${dst}.sha256" 2>/dev/null)" == "${sum}" ]] || printf '%s\n' "${sum}" >"${dst}.sha256"
fi

# --- the other wheels --------------------------------------------------------------------------

# PEP 503 name normalisation, which wheel file names follow up to case and - versus _.
norm() { tr '[:upper:]' '[:lower:]' <<<"$1" | sed -E 's/[-_.]+/_/g'; }

have_wheel() { # NAME VERSION
  local n f
  n="$(norm "$1")"
  for f in "${DEST}"/*-"$2"-*.whl; do
    [[ -f "${f}" ]] || continue
    [[ "$(norm "$(basename "${f}" | cut -d- -f1)")" == "${n}" ]] && return 0
  done
  return 1
}

missing=()
while IFS= read -r line; do
  line="${line%%#*}"
  line="${line//[[:space:]]/}"
  [[ -n "${line}" ]] || continue
  [[ "${line}" =~ ^([A-Za-z0-9._-]+)(\[[^]]*\])?==([^;]+)$ ]] || die "not an exact pin: ${line} (${REQUIREMENTS})"
  name="${BASH_REMATCH[1]}"
  version="${BASH_REMATCH[3]}"
  [[ "$(norm "${name}")" == llama_cpp_python ]] && continue
  have_wheel "${name}" "${version}" || missing+=("${name}==${version}")
done <"${REQUIREMENTS}"

if [[ ${#missing[@]} -gt 0 ]]; then
  log "downloading ${#missing[@]} wheel(s): ${missing[*]}"
  pip download -q --no-deps --only-binary :all: "${TARGET_TAGS[@]}" -d "${DEST}" "${missing[@]}" >&2
else
  log "all pinned wheels present in ${DEST}"
fi

# --- verify: requirements.txt resolves from DIR alone ---------------------------------------------

# No index and no find-links but DIR: the user's pip configuration is left out of this check.
scratch="$(mktemp -d "${TMPDIR:-/tmp}/wheelhouse-check.XXXXXX")"
if ! env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT -u PIP_REQUIRE_VIRTUALENV \
  PIP_CONFIG_FILE=/dev/null "${PYTHON}" -m pip --disable-pip-version-check install -q --dry-run \
  --ignore-installed --no-index --find-links "${DEST}" --only-binary :all: "${TARGET_TAGS[@]}" \
  --target "${scratch}" -r "${REQUIREMENTS}" >&2; then
  rm -rf "${scratch}"
  die "${DEST} does not satisfy ${REQUIREMENTS} offline"
fi
rm -rf "${scratch}"
count="$(find "${DEST}" -maxdepth 1 -name '*.whl' | wc -l)"
log "ok: ${DEST} satisfies lab/llm/requirements.txt offline (${count} wheels, $(du -sh "${DEST}" | cut -f1))"
