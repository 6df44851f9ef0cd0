# Sourced by the benchmark scripts' cleanup: what a run stopped part way leaves behind. Ctrl-C or a kill ends the
# benchmark's JVM without its own cleanup, and containerd (which catches SIGINT) without removing its tasks, so
# containers would run on, their runc state removed with the run's directory and nothing left to find them by.

# remove_run_containers WORK ROOT...: kills and deletes every runc container in the runc roots ROOT... whose bundle is
# under WORK (never another run's: the shared roots, /run/containerd/runc/<namespace>, hold those too), then kills
# every process whose working directory is under WORK, a shim's being its bundle, and removes the socket the shim
# named in its bundle's `address` file. Call it once the run's JVM and containerd have ended.
remove_run_containers() {
  local work=$1 root id pid cwd address
  shift
  for root in "$@"; do
    [ -d "$root" ] || continue
    # runc list: ID PID STATUS BUNDLE CREATED OWNER; the run's paths hold no spaces (mktemp).
    runc --root "$root" list 2>/dev/null | awk -v under="$work/" 'NR > 1 && index($4, under) == 1 { print $1 }' |
      while read -r id; do
        echo "removing container $id left in $root" >&2
        runc --root "$root" delete --force "$id" >/dev/null 2>&1 || true
      done
  done
  for cwd in /proc/[0-9]*/cwd; do
    case "$(readlink "$cwd" 2>/dev/null)" in
      "$work"/*)
        pid=${cwd#/proc/}; pid=${pid%/cwd}
        address=$(cat "$(readlink "$cwd")/address" 2>/dev/null || true)
        echo "killing process $pid left in $(readlink "$cwd")" >&2
        kill -KILL "$pid" 2>/dev/null || true
        case "$address" in unix:///run/containerd/s/*) rm -f "${address#unix://}" ;; esac
        ;;
    esac
  done
}
