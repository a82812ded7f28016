/**
 * Runs a program under test in a private mount namespace where paths of
 * the mount are bound over host paths (`--bind /dev/uio0=dev/uio0`), so a
 * program that hard-codes /dev/uio0 or /sys/class/uio runs unmodified.
 * Nothing is ever written to the host's filesystems:
 *
 * - `unshare --mount` gives the program its own mount table (util-linux
 *   makes it private, so nothing propagates back to the host);
 * - a bind target that exists is bound over directly, with the mounts
 *   under its source (a private /dev's null, pts...: see private-dev.ts);
 * - a target that does not exist (no /dev/uio0 on a machine without uio)
 *   is created inside an overlayfs laid over its nearest existing ancestor
 *   in the namespace, with a tmpfs upper layer in a staging directory the
 *   caller owns; the ancestor's submounts (/dev/pts, /dev/shm...) are bound
 *   back on top, since an overlay shows only its lower filesystem, and the
 *   whole is moved over the ancestor at once (the staging directory itself
 *   may lie under it: a bind under $TMPDIR);
 * - when that ancestor is `/` itself (or a symlink to it), an overlay would not do: a mount on
 *   `/` is never entered by a path lookup, which starts at the process's
 *   root, the mount below it (fs/namei.c path_init() takes fs->root as it
 *   is), so the target would be made on the host's root filesystem. The
 *   namespace gets a new root instead: a tmpfs holding the host root's
 *   entries, each bound (or, for a symlink, copied) in, made its root with
 *   pivot_root(2); a new top-level directory then exists in that tmpfs only;
 * - a target that is a dangling symlink is replaced, inside the overlay, by
 *   the file or directory to bind over: creating it through the link would
 *   write wherever the link points.
 *
 * Everything disappears with the namespace when the program exits.
 */

export interface Bind {
  /** Absolute path in the program's view, e.g. /dev/uio0. */
  host: string;
  /** Absolute path of the source: inside the mount (MOUNT/dev/uio0), or a staging file or directory. */
  source: string;
}

// $1: staging directory; $2: 1 to write a byte to fd 3 once the binds are made;
// then host/source pairs; then "--" and the program's argv.
const SCRIPT = `
set -eu
stage=$1; notify=$2; shift 2
cwd=$(pwd)
n=0
overlay() {
  d=$1; n=$((n + 1)); s=$stage/$n
  mkdir -p "$s" && mount -t tmpfs cdevemu-ns "$s"
  mkdir "$s/lower" "$s/upper" "$s/work" "$s/merged"
  mount --rbind "$d" "$s/lower"
  mount -t overlay cdevemu-ns -o "lowerdir=$s/lower,upperdir=$s/upper,workdir=$s/work" "$s/merged"
  done_=" "
  for t in $(findmnt -rn -o TARGET | grep "^$s/lower/" | sort); do
    rel=\${t#"$s/lower/"}; top=\${rel%%/*}
    case "$done_" in *" $top "*) continue ;; esac
    mount --rbind "$s/lower/$top" "$s/merged/$top"; done_="$done_$top "
  done
  # Assembled aside, then moved over $d whole: the stage may lie under $d,
  # and once $d is the overlay its paths lead through it.
  mount --move "$s/merged" "$d"
}
newroot=
new_root() {
  [ -z "$newroot" ] || return 0
  newroot=$stage/root
  mkdir "$newroot" && mount -t tmpfs cdevemu-ns "$newroot"
  # Not copied into itself by the rbind of the directory that holds the stage.
  mount --make-unbindable "$newroot"
  for e in /* /.[!.]* /..?*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    t=$newroot/\${e#/}
    if [ -L "$e" ]; then ln -s "$(readlink "$e")" "$t"
    elif [ -d "$e" ]; then mkdir "$t" && mount --rbind "$e" "$t"
    else : > "$t" && mount --bind "$e" "$t"
    fi
  done
  mount --make-private "$newroot"
  old=$newroot/.cdevemu-old-root
  mkdir "$old"
  cd "$newroot" && pivot_root . "$old"
  umount -l /.cdevemu-old-root && rmdir /.cdevemu-old-root
  cd "$cwd"
}
while [ "$1" != "--" ]; do
  host=$1; src=$2; shift 2
  if [ ! -e "$host" ]; then
    anc=$(dirname "$host")
    while [ ! -d "$anc" ]; do anc=$(dirname "$anc"); done
    # Through its symlinks: /tmp/l -> / is the root too.
    anc=$(readlink -f "$anc")
    if [ "$anc" = / ]; then new_root; else overlay "$anc"; fi
    mkdir -p "$(dirname "$host")"
    if [ -L "$host" ]; then rm "$host"; fi
    if [ -d "$src" ]; then mkdir "$host"; else : > "$host"; fi
  fi
  mount --rbind "$src" "$host"
done
shift
# Every bind is made: say so on fd 3 (program.ts), which the program does not inherit.
if [ "$notify" = 1 ]; then printf . >&3; exec 3>&-; fi
exec "$@"
`;

/**
 * The argv that runs `argv` with `binds` applied; `stageDir` must exist and
 * be empty. With `notifyFd3` it writes one byte to its fd 3 (which the
 * spawner must give it) once the binds are made, just before it execs
 * `argv` (Program's readyPipe): without that byte, its exit is the
 * namespace's failure, not the program's.
 */
export function bindCommand(binds: readonly Bind[], stageDir: string, argv: readonly string[], o: { notifyFd3?: boolean } = {}): string[] {
  return [
    'unshare',
    '--mount',
    '--propagation',
    'private',
    '--',
    'sh',
    '-c',
    SCRIPT,
    'cdevemu-bind',
    stageDir,
    o.notifyFd3 ? '1' : '0',
    ...binds.flatMap((b) => [b.host, b.source]),
    '--',
    ...argv,
  ];
}
