#!/usr/bin/env bash
# Single-node SLURM 22.05 cluster on localhost for integration tests (Debian 12, root, no systemd).
#
#   bash slurm/local-cluster.sh up       install if needed, write /etc/slurm/*, start what is missing
#   bash slurm/local-cluster.sh stop     cancel all jobs, stop the daemons this script started
#   bash slurm/local-cluster.sh status   exit 0 only when every daemon runs and the node is usable
#
# Knobs (environment): LOCAL_SLURM_GPUS (fake GPUs, default 2), LOCAL_SLURM_CPUS (declared CPUs,
# default max(nproc, 8) so array tasks run side by side), LOCAL_SLURM_MEM_MB (default 90 % of
# MemTotal), LOCAL_SLURM_MAX_ARRAY_SIZE (default 1001), FRESH=1 (wipe job state and the accounting
# database, so job ids restart at 1). `up` with changed knobs restarts the daemons whose config
# changed (cancelling running jobs first); a second `up` with the same knobs does nothing.
# Settings and their reasons: slurm/README.md.
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
unset SLURM_CONF  # the clients must read the config this script writes

readonly ETC=/etc/slurm
readonly LOGDIR=/var/log/slurm
readonly STATE=/var/lib/slurm
readonly FAKEGPU=$STATE/fakegpu
readonly MARKS=/run/local-slurm          # NAME -> "pid config-hash" of daemons started here
readonly DAEMON_LOG=$LOGDIR/local-cluster.log  # stdout/stderr of the daemons themselves
readonly MARIADB_LOG=/var/log/mysql/local-cluster.err
readonly HEADER="# Written by slurm/local-cluster.sh; overwritten by its 'up'."
readonly PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
readonly STOP_TIMEOUT=30

# name -> pid file, process name
declare -A PIDFILE=([munged]=/run/munge/munged.pid [mariadbd]=/run/mysqld/mysqld.pid
    [slurmdbd]=/run/slurmdbd.pid [slurmctld]=/run/slurmctld.pid [slurmd]=/run/slurmd.pid)
readonly DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)  # start order

log() { printf '%s\n' "$*"; }
die() { printf 'local-cluster: %s\n' "$*" >&2; exit 1; }
elapsed() { awk -v now="$EPOCHREALTIME" -v t0="$1" 'BEGIN { printf "%.1f s", now - t0 }'; }

int_knob() {  # name default minimum
    local value=${!1:-$2}
    if ! [[ $value =~ ^[0-9]+$ ]] || ((value < $3)); then
        die "$1=$value: expected an integer >= $3"
    fi
    printf '%s' "$value"
}

# --- processes ------------------------------------------------------------------------------

alive() {  # pid name: the process exists, is not a zombie and has the expected name
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    [[ $(cat "/proc/$1/comm" 2>/dev/null) == "$2" && ${stat##*) } != Z* ]]
}

pid_of() {  # name -> pid of the running daemon, from its pid file
    local pid
    pid=$(cat "${PIDFILE[$1]}" 2>/dev/null) || return 1
    pid=${pid//[!0-9]/}
    [[ -n $pid ]] && alive "$pid" "$1" && printf '%s' "$pid"
}

mark_of() {  # name -> "pid hash" if this script started the running daemon
    local mark pid
    mark=$(cat "$MARKS/$1" 2>/dev/null) || return 1
    pid=$(pid_of "$1") || return 1
    [[ ${mark%% *} == "$pid" ]] && printf '%s' "$mark"
}

gone() {  # pid name [pid name...]: none of them is alive
    while (($#)); do
        ! alive "$1" "$2" || return 1
        shift 2
    done
}

wait_until() {  # timeout command...: poll every 0.2 s
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

launch() {  # command...: a clean environment, no inherited lock or pipes
    env -i PATH="$PATH" LC_ALL=C "$@" </dev/null >>"$DAEMON_LOG" 2>&1 9>&-
}

started() {  # name timeout logfile hash check...: wait for readiness, record the daemon as ours
    local name=$1 timeout=$2 logfile=$3 hash=$4 t0=$5
    shift 5
    if ! wait_until "$timeout" "$@"; then
        log "$name: not ready after ${timeout} s; last lines of $logfile:"
        tail -n 20 "$logfile" 2>/dev/null | sed 's/^/    /'
        die "$name did not start"
    fi
    wait_until 5 pid_of "$name" || die "$name: no live process in ${PIDFILE[$name]}"
    printf '%s %s\n' "$(pid_of "$name")" "$hash" >"$MARKS/$name"
    log "$name: started, pid $(pid_of "$name") ($(elapsed "$t0"))"
}

stop_daemons() {  # names...: SIGTERM together, SIGKILL after STOP_TIMEOUT
    local i name pid pairs=() names=() t0=$EPOCHREALTIME
    for name in "$@"; do
        pid=$(pid_of "$name") || { rm -f "$MARKS/$name"; continue; }
        kill -TERM "$pid" 2>/dev/null || true
        pairs+=("$pid" "$name") names+=("$name")
    done
    ((${#names[@]})) || return 0
    if ! wait_until "$STOP_TIMEOUT" gone "${pairs[@]}"; then
        for ((i = 0; i < ${#pairs[@]}; i += 2)); do kill -KILL "${pairs[i]}" 2>/dev/null || true; done
        wait_until 5 gone "${pairs[@]}" || true
        log "${names[*]}: SIGKILL after ${STOP_TIMEOUT} s"
    fi
    # slurmctld and slurmdbd leave their pid files behind (they drop root); a stale one makes
    # the Debian prerm of slurmctld run scancel, which fails without a controller
    for ((i = 0; i < ${#pairs[@]}; i += 2)); do
        name=${pairs[i + 1]}
        alive "${pairs[i]}" "$name" || rm -f "${PIDFILE[$name]}"
        rm -f "$MARKS/$name"
    done
    log "${names[*]}: stopped ($(elapsed "$t0"))"
}

queue_empty() { local q; q=$(squeue -h -o %i) && [[ -z $q ]]; }

drain_jobs() {  # cancel every job and wait until the queue is empty
    pid_of slurmctld >/dev/null || return 0
    local jobs t0=$EPOCHREALTIME
    jobs=$(squeue -h -o %F 2>/dev/null | sort -u) || return 0
    [[ -n $jobs ]] || return 0
    # shellcheck disable=SC2086  # one job id per word
    scancel $jobs 2>/dev/null || true
    if wait_until 60 queue_empty; then
        log "jobs: cancelled $(wc -w <<<"$jobs") ($(elapsed "$t0"))"
    else
        log "jobs: queue not empty after 60 s:"
        squeue | sed 's/^/    /'
    fi
}

# --- node and cluster -----------------------------------------------------------------------

HOST=$(hostname -s)

node_states() { sinfo -h -N -n "$HOST" -o %t 2>/dev/null | sort -u; }

node_summary() { node_states | paste -sd ' '; }

node_usable() {  # comp(leting) is a running node finishing a job
    local states
    states=$(node_states) && [[ -n $states ]] && ! grep -qvxE 'idle|mix|alloc|comp' <<<"$states"
}

node_ready_or_resume() {  # after a crash the node may come back drained; resume it once
    node_usable && return 0
    if [[ -z ${RESUMED:-} ]] && grep -qE '^(drain|drng|down)$' <<<"$(node_states)"; then
        RESUMED=1
        scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
    fi
    return 1
}

# --- install and configure ------------------------------------------------------------------

install_packages() {
    local missing=() pkg t0=$EPOCHREALTIME
    for pkg in "${PACKAGES[@]}"; do
        [[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) == installed ]] || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get: Debian 12 is required"
    log "apt: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold)
    # update only when the lists lack a package or are stale (a failed download)
    if ! apt-cache show --no-all-versions "${missing[@]}" >/dev/null 2>&1; then
        apt-get -q -o DPkg::Lock::Timeout=300 update >/dev/null
    fi
    if ! "${apt[@]}" install "${missing[@]}" >/tmp/local-cluster-apt.log 2>&1; then
        apt-get -q -o DPkg::Lock::Timeout=300 update >/dev/null
        "${apt[@]}" install "${missing[@]}" >/tmp/local-cluster-apt.log 2>&1 \
            || { tail -n 20 /tmp/local-cluster-apt.log >&2; die "apt-get install failed (log: /tmp/local-cluster-apt.log)"; }
    fi
    log "apt: done ($(elapsed "$t0"))"
}

db_password() {  # keep the password of an existing slurmdbd.conf, so the file stays unchanged
    local pass
    pass=$(sed -n 's/^StoragePass=//p' "$ETC/slurmdbd.conf" 2>/dev/null || true)
    [[ -n $pass ]] || pass=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    printf '%s' "$pass"
}

render_configs() {  # sets SLURM_CONF_TEXT, GRES_CONF_TEXT, DBD_CONF_TEXT
    local nproc mem_total cpus mem gpus max_array def_mem gres_node="" gres_file=""
    nproc=$(nproc)
    mem_total=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    gpus=$(int_knob LOCAL_SLURM_GPUS 2 0)
    cpus=$(int_knob LOCAL_SLURM_CPUS $((nproc > 8 ? nproc : 8)) 1)
    mem=$(int_knob LOCAL_SLURM_MEM_MB $((mem_total * 9 / 10)) 256)
    max_array=$(int_knob LOCAL_SLURM_MAX_ARRAY_SIZE 1001 1)
    ((max_array <= 4000001)) || die "LOCAL_SLURM_MAX_ARRAY_SIZE=$max_array: SLURM allows at most 4000001"
    # Without a default every job without --mem takes the whole node; 1 GiB unless that would
    # keep the declared CPUs from being used at once.
    def_mem=$((mem / cpus < 1024 ? mem / cpus : 1024))
    if ((gpus > 0)); then
        gres_node=" Gres=gpu:$gpus"
        gres_file="NodeName=$HOST Name=gpu File=$FAKEGPU/nvidia[0-$((gpus - 1))]"
    fi
    FAKE_GPUS=$gpus
    SLURM_CONF_TEXT="$HEADER
ClusterName=ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
AuthInfo=cred_expire=5
CredType=cred/munge
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=${PIDFILE[slurmctld]}
SlurmdPidFile=${PIDFILE[slurmd]}
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,bf_interval=1,sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$def_mem
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
KillWait=5
MinJobAge=300
InactiveLimit=0
ReturnToService=2
SlurmdParameters=config_overrides
MaxArraySize=$max_array
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem$gres_node State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL Default=NO MaxTime=INFINITE State=UP"
    # gres File= must be a character device: symlinks to /dev/null pass (no mknod needed)
    GRES_CONF_TEXT="$HEADER
AutoDetect=off${gres_file:+
$gres_file}"
    DBD_CONF_TEXT="$HEADER
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=slurm
DebugLevel=info
LogFile=$LOGDIR/slurmdbd.log
PidFile=${PIDFILE[slurmdbd]}
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$(db_password)
StorageLoc=slurm_acct_db"
}

write_if_changed() {  # path text owner mode
    if [[ ! -f $1 || $(<"$1") != "$2" ]]; then
        printf '%s\n' "$2" >"$1.tmp"
        mv -f "$1.tmp" "$1"
        log "config: wrote $1"
    fi
    chown "$3" "$1"
    chmod "$4" "$1"
}

configure() {
    local f
    for f in slurm.conf gres.conf slurmdbd.conf; do
        if [[ -f $ETC/$f ]] && ! grep -qxF "$HEADER" "$ETC/$f"; then
            die "$ETC/$f was not written by this script; move it away to use the local cluster"
        fi
    done
    render_configs
    mkdir -p "$ETC" "$LOGDIR" "$STATE/slurmctld" "$STATE/slurmd" "$FAKEGPU" "$MARKS" /var/log/mysql
    chown slurm:slurm "$STATE" "$STATE/slurmctld" "$LOGDIR"
    chown mysql:adm /var/log/mysql
    write_if_changed "$ETC/slurm.conf" "$SLURM_CONF_TEXT" root:root 644
    write_if_changed "$ETC/gres.conf" "$GRES_CONF_TEXT" root:root 644
    write_if_changed "$ETC/slurmdbd.conf" "$DBD_CONF_TEXT" slurm:slurm 600
    local i link
    for ((i = 0; i < FAKE_GPUS; i++)); do
        [[ $(readlink "$FAKEGPU/nvidia$i") == /dev/null ]] || ln -sfn /dev/null "$FAKEGPU/nvidia$i"
    done
    for link in "$FAKEGPU"/nvidia*; do
        [[ -e $link || -L $link ]] && ((${link##*nvidia} >= FAKE_GPUS)) && rm -f "$link"
    done
    SLURM_HASH=$(printf '%s\n%s' "$SLURM_CONF_TEXT" "$GRES_CONF_TEXT" | sha256sum | cut -c1-16)
    DBD_HASH=$(printf '%s' "$DBD_CONF_TEXT" | sha256sum | cut -c1-16)
}

config_current() {  # name hash: running, started here, with this config
    local mark
    mark=$(mark_of "$1") && [[ ${mark#* } == "$2" ]]
}

# --- daemons --------------------------------------------------------------------------------

munge_ok() { munge -n | unmunge; }
ctld_ok() { scontrol ping | grep -q 'is UP'; }
mariadb_ok() { mariadb-admin ping; }
dbd_ok() { sacctmgr -n show cluster; }

start_munge() {
    pid_of munged >/dev/null && return 0
    local t0=$EPOCHREALTIME
    if [[ ! -s /etc/munge/munge.key ]]; then
        mungekey --create --keyfile=/etc/munge/munge.key
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge
    chown munge:munge /run/munge
    launch runuser -u munge -- /usr/sbin/munged || die "munged failed to start (see /var/log/munge/munged.log)"
    started munged 15 /var/log/munge/munged.log - "$t0" munge_ok
}

start_mariadb() {
    pid_of mariadbd >/dev/null && return 0
    local t0=$EPOCHREALTIME
    if [[ ! -d /var/lib/mysql/mysql ]]; then
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql >>"$DAEMON_LOG" 2>&1
    fi
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld
    # slurmdbd reaches 'localhost' through the socket; 900 s lock wait as SLURM's docs advise
    setsid env -i PATH="$PATH" LC_ALL=C /usr/sbin/mariadbd --user=mysql --skip-networking \
        --pid-file="${PIDFILE[mariadbd]}" --log-error="$MARIADB_LOG" --innodb-lock-wait-timeout=900 \
        </dev/null >>"$DAEMON_LOG" 2>&1 9>&- &
    started mariadbd 60 "$MARIADB_LOG" - "$t0" mariadb_ok
}

setup_database() {
    local pass
    pass=$(sed -n 's/^StoragePass=//p' "$ETC/slurmdbd.conf")
    if [[ ${FRESH:-0} == 1 ]]; then
        mariadb -e 'DROP DATABASE IF EXISTS slurm_acct_db'
        log "fresh: dropped the accounting database"
    fi
    mariadb <<SQL
CREATE USER IF NOT EXISTS 'slurm'@'localhost';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL
}

start_slurm_daemon() {  # name hash timeout check
    pid_of "$1" >/dev/null && return 0
    local t0=$EPOCHREALTIME
    launch "/usr/sbin/$1" || { tail -n 20 "$LOGDIR/$1.log" 2>/dev/null; die "$1 failed to start"; }
    started "$1" "$3" "$LOGDIR/$1.log" "$2" "$t0" "$4"
}

# --- commands -------------------------------------------------------------------------------

cmd_up() {
    local t0=$EPOCHREALTIME restart=()
    install_packages
    configure
    # Daemons run with the config they read at start: restart those whose config changed.
    if [[ ${FRESH:-0} == 1 ]]; then
        restart=(slurmd slurmctld slurmdbd)
    else
        pid_of slurmd >/dev/null && ! config_current slurmd "$SLURM_HASH" && restart+=(slurmd slurmctld)
        pid_of slurmctld >/dev/null && ! config_current slurmctld "$SLURM_HASH" && restart+=(slurmd slurmctld)
        pid_of slurmdbd >/dev/null && ! config_current slurmdbd "$DBD_HASH" && restart+=(slurmdbd)
    fi
    if [[ " ${restart[*]} " == *" slurmctld "* ]]; then
        log "restart: slurmctld slurmd (config changed or FRESH=1; running jobs are cancelled)"
        drain_jobs
        stop_daemons slurmd slurmctld
    fi
    if [[ " ${restart[*]} " == *" slurmdbd "* ]]; then
        log "restart: slurmdbd (config changed or FRESH=1)"
        stop_daemons slurmdbd
    fi
    if [[ ${FRESH:-0} == 1 ]]; then
        rm -rf "${STATE:?}/slurmctld/"* "${STATE:?}/slurmd/"*
        log "fresh: wiped $STATE/slurmctld and $STATE/slurmd"
    fi
    start_munge
    start_mariadb
    if ! pid_of slurmdbd >/dev/null; then
        setup_database
        start_slurm_daemon slurmdbd "$DBD_HASH" 120 dbd_ok
    fi
    start_slurm_daemon slurmctld "$SLURM_HASH" 60 ctld_ok
    start_slurm_daemon slurmd "$SLURM_HASH" 60 node_ready_or_resume
    if ! wait_until 60 node_ready_or_resume; then
        sinfo -N -l >&2 || true
        die "node $HOST is not usable (state: $(node_summary))"
    fi
    log "up: node $HOST $(node_summary) ($(elapsed "$t0"))"
    log "logs: $LOGDIR/{slurmctld,slurmd,slurmdbd,local-cluster}.log /var/log/munge/munged.log $MARIADB_LOG"
}

cmd_stop() {
    local t0=$EPOCHREALTIME name running=0 leftovers line
    for name in "${DAEMONS[@]}"; do pid_of "$name" >/dev/null && running=1; done
    if ((!running)); then
        log "stop: nothing is running"
        return 0
    fi
    drain_jobs
    stop_daemons slurmd slurmctld
    stop_daemons slurmdbd  # after slurmctld, which flushes accounting to it
    local ours=()
    for name in mariadbd munged; do
        if mark_of "$name" >/dev/null; then
            ours+=("$name")
        elif pid_of "$name" >/dev/null; then
            log "$name: left running (pid $(pid_of "$name"), not started by this script)"
        fi
    done
    ((${#ours[@]})) && stop_daemons "${ours[@]}"
    # zombies are dead (this init may not reap them): only live processes count
    leftovers=$(ps -e -o pid=,stat=,comm= | awk -v names="slurmstepd slurmd slurmctld slurmdbd ${ours[*]}" \
        'BEGIN { split(names, n, " "); for (i in n) want[n[i]] = 1 } $2 !~ /^Z/ && want[$3]')
    if [[ -n $leftovers ]]; then
        log "stop: leftover processes:"
        while read -r line; do log "    $line"; done <<<"$leftovers"
        return 1
    fi
    log "stop: done ($(elapsed "$t0"))"
}

cmd_status() {
    local name pid rc=0 how
    for name in "${DAEMONS[@]}"; do
        if pid=$(pid_of "$name"); then
            how="started elsewhere"
            mark_of "$name" >/dev/null && how="started by local-cluster.sh"
            printf '%-10s running  pid %-8s %s\n' "$name" "$pid" "$how"
        else
            printf '%-10s stopped\n' "$name"
            rc=1
        fi
    done
    if pid_of slurmctld >/dev/null; then
        echo "--- sinfo"
        sinfo || rc=1
        echo "--- squeue"
        squeue || rc=1
    fi
    if pid_of slurmctld >/dev/null && node_usable; then
        log "cluster: up (node $HOST $(node_summary))"
    else
        log "cluster: not usable"
        rc=1
    fi
    return "$rc"
}

main() {
    local cmd=${1:-}
    case $cmd in
        up | stop | status) ;;
        *) die "usage: local-cluster.sh up|stop|status" ;;
    esac
    [[ $cmd == status ]] && { cmd_status; return; }
    ((EUID == 0)) || die "$cmd needs root"
    mkdir -p /run/lock
    exec 9>/run/lock/local-slurm.lock
    flock -w 600 9 || die "another local-cluster.sh holds /run/lock/local-slurm.lock"
    "cmd_$cmd"
}

main "$@"
