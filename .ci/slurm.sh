#!/usr/bin/env bash
# A private single-node SLURM for the cluster tests: `.ci/slurm.sh install|up|down|status|env`.
#
#   install install slurmctld, slurmd, slurm-client and munge with apt-get where missing (root, Debian/Ubuntu).
#   up      install what is missing (as `install`), write a slurm.conf for this host into
#           $RLDYN_SLURM_DIR (default /tmp/rldyn-slurm), start munged, slurmctld and slurmd from it and wait until
#           `sinfo` shows the node idle (at most $RLDYN_SLURM_WAIT_S, 120 s). Idempotent: a second `up` finds the
#           daemons it started and only waits. Exit status 0 when the node is idle, 1 otherwise.
#   down    stop exactly the daemons `up` recorded (pid files under $RLDYN_SLURM_DIR/pids, each checked against its
#           command line so a reused pid is never signalled); nothing else is touched. Idempotent.
#   status  say whether the recorded daemons run and what sinfo reports.
#   env     print `export SLURM_CONF=...`, the one variable clients (sinfo, sbatch, submitit) need.
#
# Nothing outside $RLDYN_SLURM_DIR is written (no /etc/slurm, no system munge socket): the daemons use their own
# munge key and socket, and ports 6917/6918, so a system SLURM or munge on the same host is left alone.
# Needs root (slurmd runs jobs as their submitter). Accounting is off; proctrack/linuxproc, task/none and
# select/cons_tres need no cgroups, so this runs in containers.
set -euo pipefail

DIR="${RLDYN_SLURM_DIR:-/tmp/rldyn-slurm}"
WAIT_S="${RLDYN_SLURM_WAIT_S:-120}"
CONF="$DIR/slurm.conf"
PIDS="$DIR/pids"
CTLD_PORT="${RLDYN_SLURMCTLD_PORT:-6917}"
SLURMD_PORT="${RLDYN_SLURMD_PORT:-6918}"
export SLURM_CONF="$CONF"

say() { echo "slurm.sh: $*" >&2; }

# the pid recorded for a daemon, if that process still runs the command we started (else nothing)
live_pid() {
    local name="$1" pid
    [[ -f "$PIDS/$name" ]] || return 1
    pid="$(cat "$PIDS/$name")"
    [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] || return 1
    local cmd
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
    [[ "$cmd" == *"$DIR/"* ]] || return 1
    echo "$pid"
}

install_packages() {
    local missing=()
    command -v munged >/dev/null || [[ -x /usr/sbin/munged ]] || missing+=(munge)
    command -v slurmctld >/dev/null || [[ -x /usr/sbin/slurmctld ]] || missing+=(slurmctld)
    command -v slurmd >/dev/null || [[ -x /usr/sbin/slurmd ]] || missing+=(slurmd)
    command -v sinfo >/dev/null || missing+=(slurm-client)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
        say "cannot install ${missing[*]}: needs root and apt-get (Debian/Ubuntu); install them and rerun"
        return 1
    fi
    say "installing ${missing[*]} with apt-get"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        >"$DIR/apt.log" 2>&1; then
        say "apt-get could not install ${missing[*]} (see $DIR/apt.log):"
        tail -n 5 "$DIR/apt.log" >&2
        return 1
    fi
}

write_conf() {
    local host cpus mem
    host="$(hostname -s)"
    cpus="$(nproc)"
    # a margin below the total: slurmd drains a node whose memory is lower than configured
    mem="$(free -m | awk '/^Mem:/ {print int($2 * 0.9)}')"
    cat >"$CONF" <<EOF
# written by .ci/slurm.sh for $host: a single-node cluster for tests
ClusterName=rldyn
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
JobRequeue=1
KillWait=30
MinJobAge=600
SlurmdTimeout=60
InactiveLimit=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {  # start NAME COMMAND...: run a daemon in the foreground, in the background, and record its pid
    local name="$1"
    shift
    if live_pid "$name" >/dev/null; then
        return 0
    fi
    nohup "$@" >"$DIR/log/$name.out" 2>&1 </dev/null &
    echo $! >"$PIDS/$name"
}

node_state() { sinfo -h -N -o '%T' 2>/dev/null | head -n 1; }

up() {
    mkdir -p "$DIR"
    chmod 0711 "$DIR"
    install_packages || return 1
    mkdir -p "$PIDS" "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/munge"
    chmod 0700 "$DIR/munge"
    if [[ ! -s "$DIR/munge/munge.key" ]]; then
        head -c 1024 /dev/urandom >"$DIR/munge/munge.key"
        chmod 0400 "$DIR/munge/munge.key"
    fi
    if ! live_pid slurmctld >/dev/null; then
        write_conf  # rewritten only while our controller is down
    fi
    start munged /usr/sbin/munged --foreground --force --key-file="$DIR/munge/munge.key" \
        --socket="$DIR/munge/munge.socket" --pid-file="$DIR/munge/munged.pid" \
        --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
    local deadline=$((SECONDS + WAIT_S))
    until [[ -S "$DIR/munge/munge.socket" ]]; do
        if ((SECONDS >= deadline)) || ! live_pid munged >/dev/null; then
            say "munged did not start (see $DIR/log/munged.log, $DIR/log/munged.out)"
            return 1
        fi
        sleep 0.5
    done
    start slurmctld /usr/sbin/slurmctld -D -c -f "$CONF"  # -c: no jobs carried over from an earlier session
    start slurmd /usr/sbin/slurmd -D -f "$CONF"
    local state=""
    while ((SECONDS < deadline)); do
        state="$(node_state)"
        case "$state" in
        idle | mixed | allocated | completing) break ;;
        drain* | down* | fail*)  # e.g. a node left down by an earlier run of ours: bring it back once
            scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true ;;
        esac
        for d in slurmctld slurmd; do
            if ! live_pid "$d" >/dev/null; then
                say "$d exited (see $DIR/log/$d.log and $DIR/log/$d.out):"
                tail -n 5 "$DIR/log/$d.out" "$DIR/log/$d.log" 2>/dev/null >&2 || true
                return 1
            fi
        done
        sleep 1
    done
    case "$state" in
    idle | mixed | allocated | completing)
        say "up: node $(hostname -s) $state ($(nproc) CPUs), SLURM_CONF=$CONF"
        return 0
        ;;
    esac
    say "the node did not become idle within ${WAIT_S}s (state: ${state:-no answer}); see $DIR/log/"
    return 1
}

down() {
    local name pid stopped=()
    for name in slurmd slurmctld munged; do  # jobs first go with slurmd, the controller saves its state
        if pid="$(live_pid "$name")"; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 100); do
                [[ -d "/proc/$pid" ]] || break
                sleep 0.1
            done
            if [[ -d "/proc/$pid" ]]; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
            stopped+=("$name($pid)")
        fi
        rm -f "$PIDS/$name"
    done
    if [[ ${#stopped[@]} -gt 0 ]]; then
        say "stopped ${stopped[*]}"
    else
        say "nothing of ours was running"
    fi
}

status() {
    local name pid
    for name in munged slurmctld slurmd; do
        if pid="$(live_pid "$name")"; then echo "$name: running (pid $pid)"; else echo "$name: not running"; fi
    done
    if command -v sinfo >/dev/null && [[ -f "$CONF" ]]; then
        sinfo -N 2>&1 || true
    fi
}

case "${1:-}" in
install) mkdir -p "$DIR" && install_packages ;;
up) up ;;
down) down ;;
status) status ;;
env) echo "export SLURM_CONF=$CONF" ;;
*)
    echo "usage: $0 install|up|down|status|env" >&2
    exit 2
    ;;
esac
