#!/usr/bin/env bash
# Re-capture the real Slurm output used by test_parsers.py (run after .ci/slurm/up, as root).
# Takes about 2 minutes because of the TIMEOUT case. Writes *.txt next to this script;
# each file is the verbatim stdout (or stderr, *.err.txt) of one command.
# Not made here (they need a daemon down), captured by hand the same way:
#   scontrol_no_controller.err.txt, sbatch_no_controller.err.txt: SLURM_CONF pointing at a copy of
#     slurm.conf with "SlurmctldPort=6999" added, then `scontrol show job -o 5` / `sbatch --wrap true`
#   sacct_no_dbd.err.txt: slurmdbd stopped, then `sacct -X -n -P -o JobID,State,ExitCode -j 5`
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
w=$(mktemp -d /tmp/slurm-capture.XXXXXX); chmod 755 "$w"; cd "$w"
sb() { sbatch --parsable --time=1 -o "$w/%j.out" "$@"; }
state() { scontrol show job -o "$1" | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
wait_state() { for _ in $(seq 600); do [ "$(state "$1")" = "$2" ] && return; sleep 0.2; done; echo "timeout waiting $1 $2" >&2; exit 1; }
final() { for _ in $(seq 900); do case $(state "$1") in PENDING|RUNNING|COMPLETING|CONFIGURING) sleep 0.2;; *) return;; esac; done; }
sacct_of() { sacct -X -n -P -o JobID,State,ExitCode -j "$1"; }

sinfo --version > "$here/version.txt"
sb -J cap-ok --wrap 'sleep 1' > "$here/sbatch_parsable.txt"; ok=$(cat "$here/sbatch_parsable.txt")
sbatch --parsable --clusters=ci --time=1 -o /dev/null --wrap true > "$here/sbatch_parsable_cluster.txt"
sbatch --parsable --time=1 -n 64 --wrap true 2> "$here/sbatch_rejected.err.txt" || true
bad=$(sb -J cap-bad --wrap 'sleep 1; exit 3')
# both CPUs busy, so the next job pends with Reason=Resources
hog=$(sb -J cap-hog -n 2 --wrap 'sleep 4')
wait_state "$hog" RUNNING
scontrol show job -o "$hog" > "$here/scontrol_running.txt"
pend=$(sb -J cap-pend --wrap 'sleep 1')
sleep 1; scontrol show job -o "$pend" > "$here/scontrol_pending.txt"
scancel "$pend"; sleep 0.5
scontrol show job -o "$pend" > "$here/scontrol_cancelled_pending.txt"
never=$(sb -J cap-never --dependency=afterok:"$bad" --wrap true)
run=$(sb -J cap-cancel --wrap 'sleep 100')
wait_state "$run" RUNNING; scancel "$run"; final "$run"
scontrol show job -o "$run" > "$here/scontrol_cancelled_running.txt"
launch=$(sb -J cap-launch -o "$w/no/such/dir/%j.out" --wrap true)
final "$ok"; final "$bad"; final "$launch"
scontrol show job -o "$ok" > "$here/scontrol_completed.txt"
scontrol show job -o "$bad" > "$here/scontrol_failed.txt"
scontrol show job -o "$launch" > "$here/scontrol_launch_failed.txt"
sleep 2; scontrol show job -o "$never" > "$here/scontrol_dependency_never.txt"; scancel "$never"
tmo=$(sb -J cap-timeout --wrap 'sleep 300')
final "$tmo"
scontrol show job -o "$tmo" > "$here/scontrol_timeout.txt"
for j in "$ok" "$bad" "$run" "$pend" "$launch" "$tmo"; do sacct_of "$j"; done > "$here/sacct_mixed.txt"
sacct_of "$ok" > "$here/sacct_completed.txt"
sacct_of "$bad" > "$here/sacct_failed.txt"
sacct_of "$run" > "$here/sacct_cancelled.txt"
sacct_of "$tmo" > "$here/sacct_timeout.txt"
sacct -n -P -o JobID,State,ExitCode -j "$run" > "$here/sacct_cancelled_with_steps.txt"
# a script with quoted #SBATCH paths: a step folder with a space and a % in its name
mkdir -p "$w/step 1%"; printf '#!/bin/sh\n#SBATCH --chdir="%s"\n#SBATCH --output="%s"\ntrue\n' \
  "$w/step 1%" "$w/step 1%%/stdout.txt" > "$w/step 1%/job.sh"
sp=$(sbatch --parsable --time=1 "$w/step 1%/job.sh"); final "$sp"
scontrol show job -o "$sp" > "$here/scontrol_spaces.txt"
# the batch script itself killed by SIGKILL
kill9=$(sb -J cap-kill9 --wrap 'kill -9 $$'); final "$kill9"
scontrol show job -o "$kill9" > "$here/scontrol_killed.txt"; sacct_of "$kill9" > "$here/sacct_killed.txt"
sacct_of 999999 > "$here/sacct_unknown.txt"
scontrol show job -o 999999 2> "$here/scontrol_invalid.err.txt" || true
rm -rf "$w"
echo "captured into $here"
