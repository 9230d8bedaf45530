#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for the SLURM tests and for trying a sweep before a real cluster
# (issue 23): Debian's slurm-wlm, slurmdbd, munge and mariadb-server (installed with apt-get when run as root and
# missing). Everything it writes (config, state, logs, pid files, the accounting database) lives in $RBO_SLURM_DIR
# (default ${TMPDIR:-/tmp}/rbo-slurm); nothing under /etc is touched.
#
#   scripts/slurm/local_cluster.sh up       start munged, mariadbd, slurmdbd, slurmctld, slurmd; wait for an idle node
#   scripts/slurm/local_cluster.sh status   each daemon, then `export SLURM_CONF=...`; exit 1 unless all run
#   scripts/slurm/local_cluster.sh down     cancel the cluster's jobs, stop exactly the daemons `up` started
#
# Clients (sbatch, squeue, sacct, and the submitit launcher that calls them) find the cluster through SLURM_CONF:
#   eval "$(scripts/slurm/local_cluster.sh status | tail -1)"
#   python -m experiments.train -m seed=0,1 dataset=synthetic epochs=1 logger=none runs_dir=/tmp/runs \
#       hydra/launcher=slurm hydra.launcher.gpus_per_node=0 hydra.launcher.cpus_per_task=1 hydra.launcher.mem_gb=1
#
# The node: 2 CPUs, 32 GB and one fake GPU cut into 4 shards (gres gpu on /dev/null, gres shard), declared whatever
# the machine has (SlurmdParameters=config_overrides), so the presets' requests (conf/hydra/launcher/slurm*.yaml)
# can be checked with `sbatch --test-only`; memory is bookkeeping only (no cgroups: the tests' processes share the
# machine's cgroup). Accounting (slurmdbd on MariaDB) is there because submitit learns that a job ended without a
# result (cancelled, timed out, failed) only from `sacct`: without it the launcher waits forever.
# Scheduler settings the tests rely on: JobRequeue=0 (jobs are requeued only if submitted with --requeue, a site
# setting the slurm preset must cope with), KillWait=5 (SIGTERM to SIGKILL; sites use 30) and cred_expire=10 (a
# requeued job may start again after it; the default 120 s would idle the tests for minutes).
# Ports: slurmctld $RBO_SLURM_PORT (default 6817), slurmd +1, slurmdbd +2; MariaDB listens on a socket only.
set -euo pipefail

DIR=${RBO_SLURM_DIR:-${TMPDIR:-/tmp}/rbo-slurm}
PORT=${RBO_SLURM_PORT:-6817}
CLUSTER=rbo-local
PARTITION=rbo
NODE=$(hostname -s)
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)  # start order; `down` stops them in reverse
export SLURM_CONF=$DIR/etc/slurm.conf

say() { echo "local_cluster: $*"; }
die() { echo "local_cluster: $*" >&2; exit 1; }

pid_file() { echo "$DIR/run/$1.pid"; }

# The pid of daemon $1 if the process in its pid file is alive and is that daemon (a recycled pid is not).
running_pid() {
    local file pid
    file=$(pid_file "$1")
    [[ -s $file ]] || return 1
    pid=$(<"$file")
    [[ -r /proc/$pid/comm && $(</proc/"$pid"/comm) == "$1" ]] || return 1
    echo "$pid"
}

# Wait up to $1 seconds for the command that follows to succeed.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.25
    done
}

log_tail() { [[ -f $DIR/log/$1.log ]] && tail -n 20 "$DIR/log/$1.log" >&2; true; }

install_packages() {
    local missing=()
    for binary in slurmctld slurmd sbatch slurmdbd munged mariadbd; do
        command -v "$binary" >/dev/null || missing+=("$binary")
    done
    [[ ${#missing[@]} == 0 ]] && return
    [[ $(id -u) == 0 ]] || die "${missing[*]} not installed and not root; as root: apt-get install ${PACKAGES[*]}"
    say "installing ${PACKAGES[*]} (missing: ${missing[*]})"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
}

write_configs() {
    mkdir -p "$DIR"/{etc,run,log,state,spool,munge}
    chmod 700 "$DIR" "$DIR/munge"
    cat >"$SLURM_CONF" <<EOF
# Written by scripts/slurm/local_cluster.sh: a one-node test cluster (see that script).
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=$(id -un)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket,cred_expire=10
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$(pid_file slurmctld)
SlurmdPidFile=$(pid_file slurmd)
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$((PORT + 2))
AccountingStoragePass=$DIR/munge/munge.socket
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
EnforcePartLimits=ALL
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
JobRequeue=0
MpiDefault=none
GresTypes=gpu,shard
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 \
    RealMemory=32768 Gres=gpu:1,shard:4 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=24:00:00 State=UP
EOF
    cat >"$DIR/etc/gres.conf" <<EOF
NodeName=$NODE Name=gpu File=/dev/null
NodeName=$NODE Name=shard Count=4
EOF
    (umask 077 && cat >"$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
DbdHost=localhost
DbdPort=$((PORT + 2))
SlurmUser=$(id -un)
PidFile=$(pid_file slurmdbd)
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=$(id -un)
StorageLoc=slurm_acct_db
EOF
    )
    [[ -s $DIR/munge/munge.key ]] ||
        (umask 077 && dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 2>/dev/null)
}

start_munged() {
    munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
        --pid-file="$(pid_file munged)" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
    wait_for 10 munge --socket="$DIR/munge/munge.socket" -n || { log_tail munged; die "munged does not answer"; }
}

start_mariadbd() {
    if [[ ! -d $DIR/db/mysql ]]; then
        mariadb-install-db --no-defaults --datadir="$DIR/db" --user="$(id -un)" --skip-test-db \
            --auth-root-authentication-method=socket >"$DIR/log/mariadb-install.log" 2>&1 ||
            { tail -n 20 "$DIR/log/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
    fi
    setsid mariadbd --no-defaults --datadir="$DIR/db" --socket="$DIR/run/mariadb.socket" --skip-networking \
        --pid-file="$(pid_file mariadbd)" --log-error="$DIR/log/mariadbd.log" --user="$(id -un)" \
        </dev/null >/dev/null 2>&1 &
    wait_for 60 mariadb-admin --no-defaults --socket="$DIR/run/mariadb.socket" ping ||
        { log_tail mariadbd; die "mariadbd does not answer"; }
}

start_slurmdbd() {
    MYSQL_UNIX_PORT=$DIR/run/mariadb.socket slurmdbd
    wait_for 30 sacctmgr -n list cluster || { log_tail slurmdbd; die "slurmdbd does not answer"; }
}

start_slurmctld() {
    slurmctld
    wait_for 30 scontrol ping || { log_tail slurmctld; die "slurmctld does not answer"; }
}

start_slurmd() {
    slurmd
    wait_for 60 node_idle || { log_tail slurmd; die "node $NODE is not idle: $(sinfo -h -N -o '%T %E')"; }
}

node_idle() { [[ $(sinfo -h -N -n "$NODE" -o %T) == idle ]]; }

up() {
    install_packages
    write_configs
    local started=()
    for daemon in "${DAEMONS[@]}"; do
        running_pid "$daemon" >/dev/null && continue
        "start_$daemon"
        running_pid "$daemon" >/dev/null || { log_tail "$daemon"; die "$daemon did not write its pid file"; }
        started+=("$daemon")
    done
    if [[ ${#started[@]} == 0 ]]; then
        say "already up ($DIR)"
    else
        say "started ${started[*]}; node $NODE idle in partition $PARTITION ($DIR)"
    fi
    echo "export SLURM_CONF=$SLURM_CONF"
}

# Stop daemon $1: SIGTERM, then SIGKILL if it is still there after 30 s.
stop_daemon() {
    local pid
    pid=$(running_pid "$1") || return 0
    kill -TERM "$pid"
    if ! wait_for 30 bash -c "! kill -0 $pid"; then
        say "$1 (pid $pid) ignored SIGTERM for 30 s; SIGKILL"
        kill -KILL "$pid"
    fi
    rm -f "$(pid_file "$1")"
    say "stopped $1 (pid $pid)"
}

down() {
    local any=0
    for daemon in "${DAEMONS[@]}"; do running_pid "$daemon" >/dev/null && any=1; done
    if [[ $any == 0 ]]; then
        say "no local cluster is running under $DIR; nothing to stop"
        return 0
    fi
    local jobs
    if running_pid slurmctld >/dev/null && jobs=$(squeue -h -o %A | tr '\n' ' ') && [[ -n $jobs ]]; then
        say "cancelling the cluster's jobs: $jobs"
        scancel --full $jobs
        wait_for 60 bash -c '[[ -z $(squeue -h -o %A) ]]' || say "jobs still listed: $(squeue -h -o '%A %T')"
    fi
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do stop_daemon "${DAEMONS[i]}"; done
}

status() {
    local stopped=0
    for daemon in "${DAEMONS[@]}"; do
        if pid=$(running_pid "$daemon"); then
            echo "$daemon: running (pid $pid)"
        else
            echo "$daemon: stopped"
            stopped=1
        fi
    done
    echo "export SLURM_CONF=$SLURM_CONF"
    return $stopped
}

case ${1:-} in
    up | down | status) "$1" ;;
    *) die "usage: $0 up|down|status (got '${1:-}')" ;;
esac
