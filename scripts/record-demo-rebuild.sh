#!/usr/bin/env bash
# Records the frame sequence in docs/demo-rebuild.md: `axon demo` (8 nodes, 4+2+2) in a
# real terminal (tmux, 120x40), the Stripes panel, a node failed from the console's
# palette, read around within the grace period, rebuilt past it, then healed.
# Usage: scripts/record-demo-rebuild.sh [path/to/axon] > docs/demo-rebuild.md
set -euo pipefail
AXON=${1:-target/release/axon}
DIR=$(mktemp -d)
S=axon-record-$$
trap 'tmux kill-session -t $S 2>/dev/null || true; rm -rf "$DIR"' EXIT
tmux new-session -d -s $S -x 120 -y 40 \
  "$AXON demo --nodes 8 --scheme 4+2 --rebuild-grace 10s --rebuild-rate 512K --port 24800 --metrics-port 24890 --dir $DIR 2>$DIR/stderr"
start=$(date +%s.%N)
frame() { # title
  local t
  t=$(echo "$(date +%s.%N) - $start" | bc)
  printf '\n### t = %.0f s — %s\n\n```text\n' "$t" "$1"
  tmux capture-pane -p -t $S
  printf '```\n'
}
wait_for() { # text, seconds
  for _ in $(seq 1 $(( $2 * 10 ))); do
    tmux capture-pane -p -t $S | grep -qF -- "$1" && return 0
    sleep 0.1
  done
  echo "timed out waiting for: $1" >&2
  tmux capture-pane -p -t $S >&2
  return 1
}
echo "# A rebuild in the demo, frame by frame"
echo
echo "Recorded with \`scripts/record-demo-rebuild.sh\` on $(date -u +%Y-%m-%d) ($(nproc) vCPUs):"
echo "\`axon demo --nodes 8 --scheme 4+2 --rebuild-grace 10s --rebuild-rate 512K\` in a 120×40 terminal, the"
echo "Stripes panel (key 6), then \`:fail node axon003\` and later \`:heal node axon003\` typed"
echo "into the console's palette. Every figure is the program's own."
wait_for "8 nodes" 120
tmux send-keys -t $S 6
wait_for "STARTED" 60
wait_for "Objects     48" 120
sleep 2
frame "the cluster formed, IO started, the demo's load written"
tmux send-keys -t $S ":" ; tmux send-keys -l -t $S "fail node axon003"; tmux send-keys -t $S Enter
wait_for "within the grace period" 20
# Each member counts the objects it is responsible for: the ones axon003 counted are
# taken over by the next home node once it has noticed (3 s without an answer). At most
# 4 s, so the frame stays inside the 10 s grace period.
wait_for "Objects     48" 4 || true
frame "axon003 failed: its chunks are read around, not rebuilt yet"
for _ in $(seq 1 600); do
  tmux capture-pane -p -t $S | grep -qE "Rebuild .* [1-9][0-9]? % ·" && break
  sleep 0.1
done
frame "past the 10 s grace period: rebuilding on the other nodes"
for _ in $(seq 1 60); do
  tmux capture-pane -p -t $S | grep -qE "Protection +OK" && \
    ! tmux capture-pane -p -t $S | grep -q "% ·" && break
  sleep 1
done
frame "rebuilt: protection OK with axon003 still down"
tmux send-keys -t $S ":" ; tmux send-keys -l -t $S "heal node axon003"; tmux send-keys -t $S Enter
wait_for "emulation: axon003 healed" 30
wait_for "Away        none" 30
sleep 2
frame "axon003 healed: back in the cluster"
tmux send-keys -t $S 7
sleep 1
frame "the Events panel: what happened, as it happened"
