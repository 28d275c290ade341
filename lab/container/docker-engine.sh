#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine.
#
#   docker-engine.sh start   start dockerd in the background unless an engine already answers
#   docker-engine.sh stop    stop the dockerd that this script started (and nothing else)
#   docker-engine.sh status  say whether an engine answers and who started it
#
# There is no systemd as PID 1 on the lab hosts, so `systemctl start docker` is not an
# option there; on hosts where an engine already runs (systemd, CI service) `start` is a no-op.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="${DOCKER_ENGINE_STATE_DIR:-${REPO_ROOT}/.cache/docker}"
LOG_FILE="${STATE_DIR}/dockerd.log"
PID_FILE="${STATE_DIR}/dockerd.pid"
START_TIMEOUT="${DOCKER_ENGINE_START_TIMEOUT:-60}"
STOP_TIMEOUT="${DOCKER_ENGINE_STOP_TIMEOUT:-30}"

log() { printf 'docker-engine: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

engine_answers() { docker info >/dev/null 2>&1; }

# Prints the pid of the dockerd this script started, if it is still that process.
own_pid() {
  local pid
  [[ -r "${PID_FILE}" ]] || return 1
  pid="$(<"${PID_FILE}")"
  [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
  # A recycled pid must not be mistaken for ours.
  [[ "$(cat "/proc/${pid}/comm" 2>/dev/null)" == "dockerd" ]] || return 1
  printf '%s\n' "${pid}"
}

pid1_is_systemd() { [[ "$(cat /proc/1/comm 2>/dev/null)" == "systemd" ]]; }

cmd_start() {
  if engine_answers; then
    log "engine already running ($(docker info --format '{{.ServerVersion}}' 2>/dev/null))"
    return 0
  fi
  command -v dockerd >/dev/null 2>&1 || die "dockerd not found; install Debian's docker.io package"
  command -v docker >/dev/null 2>&1 || die "docker CLI not found; install Debian's docker.io package"
  if pid1_is_systemd && systemctl cat docker.service >/dev/null 2>&1; then
    log "systemd is PID 1: starting docker.service"
    systemctl start docker.service || die "systemctl start docker.service failed (journalctl -u docker)"
  elif own_pid >/dev/null; then
    log "dockerd started earlier by this script is still starting (pid $(own_pid))"
  else
    mkdir -p "${STATE_DIR}"
    log "starting dockerd (log: ${LOG_FILE})"
    # setsid: the daemon must outlive the shell (and any job control) that started it.
    setsid dockerd --pidfile "${PID_FILE}.dockerd" >>"${LOG_FILE}" 2>&1 </dev/null &
    echo "$!" >"${PID_FILE}"
  fi
  local waited=0
  until engine_answers; do
    if ! pid1_is_systemd && ! own_pid >/dev/null; then
      log "dockerd exited during start-up; last log lines:"
      tail -n 20 "${LOG_FILE}" >&2 || true
      die "Docker engine did not start"
    fi
    if (( waited >= START_TIMEOUT )); then
      tail -n 20 "${LOG_FILE}" >&2 || true
      die "Docker engine did not answer within ${START_TIMEOUT}s (see ${LOG_FILE})"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  log "engine running ($(docker info --format '{{.ServerVersion}} storage={{.Driver}} cgroup={{.CgroupDriver}}/v{{.CgroupVersion}}' 2>/dev/null)) after ${waited}s"
}

cmd_stop() {
  local pid waited=0
  if ! pid="$(own_pid)"; then
    rm -f "${PID_FILE}"
    if engine_answers; then
      log "the running engine was not started by this script; leaving it alone"
    else
      log "no engine started by this script is running"
    fi
    return 0
  fi
  log "stopping dockerd (pid ${pid})"
  kill -TERM "${pid}"
  while kill -0 "${pid}" 2>/dev/null; do
    if (( waited >= STOP_TIMEOUT )); then
      die "dockerd (pid ${pid}) still running after ${STOP_TIMEOUT}s"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  rm -f "${PID_FILE}"
  log "stopped after ${waited}s"
}

cmd_status() {
  local pid owner="not started by this script"
  if pid="$(own_pid)"; then owner="started by this script, pid ${pid}"; fi
  if engine_answers; then
    echo "running: $(docker info --format '{{.ServerVersion}}' 2>/dev/null) (${owner})"
  else
    echo "not running"
    return 3
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
