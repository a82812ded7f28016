/**
 * Runs a program under test in a private mount namespace where paths of
 * the mount are bound over host paths (`--bind /dev/uio0=dev/uio0`), so a
 * program that hard-codes /dev/uio0 or /sys/class/uio runs unmodified.
 * Nothing is ever written to the host's filesystems:
 *
 * - `unshare --mount` gives the program its own mount table (util-linux
 *   makes it private, so nothing propagates back to the host); every
 *   mount(8) and umount(8) runs with -n, so none records anything in
 *   /run/mount/utab, which is the host's file (and, in a user namespace,
 *   not the run's to write: mount(8) makes the mount, then fails);
 * - a bind target that exists is bound over directly, with the mounts
 *   under its source (a private /dev's null, pts...: see private-dev.ts);
 * - a target that does not exist (no /dev/uio0 on a machine without uio)
 *   is created inside an overlayfs laid over its nearest existing ancestor
 *   in the namespace, with a tmpfs upper layer in a staging directory the
 *   caller owns; the ancestor's submounts (/dev/pts, /dev/shm...) are bound
 *   back on top, since an overlay shows only its lower filesystem, and the
 *   whole is moved over the ancestor at once (the staging directory itself
 *   may lie under it: a bind under $TMPDIR). In a user namespace (an
 *   ordinary user's run) the overlay keeps its attributes in user.* xattrs
 *   (`userxattr`: trusted.* needs CAP_SYS_ADMIN in the initial namespace),
 *   and the kernel refuses it over a directory with mounts below it that
 *   came from the host: those are locked (fs/namespace.c
 *   clone_private_mount() -> __has_locked_children()), as /dev's pts and
 *   shm are. Such an ancestor is shadowed instead, as `/` is below;
 * - when that ancestor is `/` itself (or a symlink to it), an overlay would not do: a mount on
 *   `/` is never entered by a path lookup, which starts at the process's
 *   root, the mount below it (fs/namei.c path_init() takes fs->root as it
 *   is), so the target would be made on the host's root filesystem. The
 *   namespace gets a new root instead, a shadow made its root with
 *   pivot_root(2); a new top-level directory then exists in that tmpfs only;
 * - a shadow of a directory is a tmpfs with its mode holding its entries,
 *   each bound (or, for a symlink, copied) in: the entries are the host's,
 *   but one added to the directory afterwards, on the host or by the
 *   program, is not shared;
 * - a target that is a dangling symlink is replaced, inside the overlay or
 *   shadow, by the file or directory to bind over: creating it through the
 *   link would write wherever the link points.
 *
 * Binds keep the flags of their source (nosuid, nodev, noexec, ro): a user
 * namespace may not clear those of a mount it was given (MNT_LOCK_*), and
 * nothing here asks to.
 *
 * Everything disappears with the namespace when the program exits.
 */
import { inUserNamespace } from '../sys/userns.js';

export interface Bind {
  /** Absolute path in the program's view, e.g. /dev/uio0. */
  host: string;
  /** Absolute path of the source: inside the mount (MOUNT/dev/uio0), or a staging file or directory. */
  source: string;
}

// $1: staging directory; $2: 1 in a user namespace other than the initial
// one; then host/source pairs; then "--" and the program's argv.
const SCRIPT = `
set -eu
stage=$1; userns=$2; shift 2
cwd=$(pwd)
n=0
# $2, an empty directory, becomes a shadow of directory $1 (see bind.ts).
shadow() {
  d=\${1%/}; t=$2; own=
  [ "$userns" = 1 ] || own=",uid=$(stat -c %u "$1"),gid=$(stat -c %g "$1")"
  mount -n -t tmpfs -o "mode=$(stat -c %a "$1")$own" cdevemu-ns "$t"
  # Not copied into itself by the rbind of an entry that holds the stage.
  mount -n --make-unbindable "$t"
  for e in "$d"/* "$d"/.[!.]* "$d"/..?*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    c=$t/\${e##*/}
    if [ -L "$e" ]; then ln -s "$(readlink "$e")" "$c"
    elif [ -d "$e" ]; then mkdir "$c"; mount -n --rbind "$e" "$c"
    else : > "$c"; mount -n --bind "$e" "$c"
    fi
  done
  mount -n --make-private "$t"
}
# Directory $1 becomes the namespace's own: an overlay, else (refused in a user namespace) a shadow.
cover() {
  d=$1; n=$((n + 1)); s=$stage/$n
  mkdir -p "$s"; mount -n -t tmpfs cdevemu-ns "$s"
  mkdir "$s/lower" "$s/upper" "$s/work" "$s/merged"
  mount -n --rbind "$d" "$s/lower"
  opts="lowerdir=$s/lower,upperdir=$s/upper,workdir=$s/work"
  [ "$userns" = 0 ] || opts="$opts,userxattr"
  if mount -n -t overlay cdevemu-ns -o "$opts" "$s/merged" 2>"$s/error"; then
    done_=" "
    for t in $(findmnt -rn -o TARGET | grep "^$s/lower/" | sort); do
      rel=\${t#"$s/lower/"}; top=\${rel%%/*}
      case "$done_" in *" $top "*) continue ;; esac
      mount -n --rbind "$s/lower/$top" "$s/merged/$top"; done_="$done_$top "
    done
  elif [ "$userns" = 1 ]; then
    umount -n -l "$s/lower"
    shadow "$d" "$s/merged"
  else
    cat "$s/error" >&2; exit 1
  fi
  # Assembled aside, then moved over $d whole: the stage may lie under $d,
  # and once $d is the overlay its paths lead through it.
  mount -n --move "$s/merged" "$d"
}
newroot=
new_root() {
  [ -z "$newroot" ] || return 0
  newroot=$stage/root
  mkdir "$newroot"
  shadow / "$newroot"
  old=$newroot/.cdevemu-old-root
  mkdir "$old"
  # util-linux puts pivot_root in /usr/sbin, which an ordinary user's PATH lacks.
  cd "$newroot" && PATH=$PATH:/usr/sbin:/sbin pivot_root . "$old"
  umount -n -l /.cdevemu-old-root && rmdir /.cdevemu-old-root
  cd "$cwd"
}
while [ "$1" != "--" ]; do
  host=$1; src=$2; shift 2
  if [ ! -e "$host" ]; then
    anc=$(dirname "$host")
    while [ ! -d "$anc" ]; do anc=$(dirname "$anc"); done
    # Through its symlinks: /tmp/l -> / is the root too.
    anc=$(readlink -f "$anc")
    if [ "$anc" = / ]; then new_root; else cover "$anc"; fi
    mkdir -p "$(dirname "$host")"
    if [ -L "$host" ]; then rm "$host"; fi
    if [ -d "$src" ]; then mkdir "$host"; else : > "$host"; fi
  fi
  mount -n --rbind "$src" "$host"
done
shift
exec "$@"
`;

/**
 * The argv that runs `argv` with `binds` applied; `stageDir` must exist and
 * be empty. `userns`: whether it will run in a user namespace other than
 * the initial one (this process's, unless the caller starts it in one of
 * its own).
 */
export function bindCommand(binds: readonly Bind[], stageDir: string, argv: readonly string[], userns = inUserNamespace()): string[] {
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
    userns ? '1' : '0',
    ...binds.flatMap((b) => [b.host, b.source]),
    '--',
    ...argv,
  ];
}

// Says on fd 3 that every layer before it is done, then runs the program
// without that fd (program.ts's readyPipe). An exec that fails after the
// byte would exit 127 or 126 as if the program had (a wrong path passed
// `expect: {exit: 127}` and the checks of a program that never ran): so the
// file exec would take (the first of $PATH for a bare name, as execvp(3)
// looks) must first be an executable file (access(2) X_OK, which a noexec
// mount fails too), else it exits without the byte.
const READY = `case $1 in
*/*) f=$1 ;;
*) f=; set -f; IFS=:; for d in $PATH; do if [ -f "\${d:-.}/$1" ] && [ -x "\${d:-.}/$1" ]; then f=\${d:-.}/$1; break; fi; done; unset IFS ;;
esac
if [ ! -f "$f" ] || [ ! -x "$f" ]; then echo "cannot execute $1: no executable file by that name" >&2; exit 127; fi
printf . >&3 && exec "$@" 3>&-`;

/** The ids a program runs with. */
export interface ProgramIds {
  uid: number;
  gid: number;
}

export interface NamespaceOptions {
  binds: readonly Bind[];
  /** An empty directory the bind namespace may stage overlays in. */
  stageDir: string;
  /**
   * Run the program as these ids, without capabilities: in a user
   * namespace of its own, nested in the run's, where they are the only ids
   * mapped, to uid and gid 0 of the run's namespace, which stand for the
   * user who ran cdevemu (`cdevemu run --as-user`, ../../daemon/run-userns.ts).
   */
  asUser?: ProgramIds | null;
  /** Write one byte to fd 3 (which the spawner must give) just before the program itself is executed. */
  notifyFd3?: boolean;
}

/** Whether the program needs a wrapper at all: binds to make or ids to take. */
export const needsNamespace = (o: NamespaceOptions): boolean => o.binds.length > 0 || Boolean(o.asUser);

/**
 * The argv that runs `argv` in the namespaces `o` asks for: the mount
 * namespace with the binds (made as the run's root), then the user
 * namespace of `asUser`, then the readiness byte. Without that byte, the
 * argv's exit is the namespaces' failure, not the program's.
 */
export function namespaceCommand(argv: readonly string[], o: NamespaceOptions): string[] {
  let cmd = [...argv];
  if (o.notifyFd3) cmd = ['sh', '-c', READY, 'cdevemu-ready', ...cmd];
  if (o.asUser) cmd = ['unshare', '--user', `--map-user=${o.asUser.uid}`, `--map-group=${o.asUser.gid}`, '--', ...cmd];
  if (o.binds.length) cmd = bindCommand(o.binds, o.stageDir, cmd);
  return cmd;
}
