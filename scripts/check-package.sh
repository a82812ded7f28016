#!/usr/bin/env bash
# The package as a user gets it: `npm pack`, install the tarball into an
# empty project, and check that the bin runs, that the library and the
# control client import with their types (tsc, against the oldest and the
# newest @types/node a user may have, checking every declaration file the
# package ships), and, where FUSE can be
# mounted (root and /dev/fuse), that `npx cdevemu daemon` serves and that
# the library's startEmulator() works from the installed copy.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/cdevemu-pack.XXXXXX)
daemon_pid=
cleanup() {
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    # npx's child is the daemon: stop it by pid, then npx.
    for child in $(ps -o pid= --ppid "$daemon_pid"); do kill -TERM "$child" 2>/dev/null || true; done
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  if grep -q " $work/" /proc/mounts 2>/dev/null; then
    grep " $work/" /proc/mounts | cut -d' ' -f2 | xargs -r -n1 umount -l || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "check-package: FAIL: $*" >&2; exit 1; }
step() { echo "check-package: $*"; }

# 1. Pack (prepare builds dist/) and look at what the tarball holds.
cd "$repo"
tarball="$work/$(npm pack --silent --pack-destination "$work" | tail -n1)"
[ -f "$tarball" ] || fail "npm pack made no tarball"
listing=$(tar -tzf "$tarball")
for need in package/dist/daemon/cli.js package/dist/src/index.js package/dist/src/index.d.ts \
            package/dist/src/control/index.d.ts package/LICENSE package/README.md package/CHANGELOG.md; do
  grep -qx "$need" <<<"$listing" || fail "$need is missing from the tarball"
done
if grep -E '^package/(test|\.ci|bench|src|daemon|scripts|dist/bench)/' <<<"$listing"; then
  fail "the tarball ships files users do not need (above)"
fi
step "packed $(basename "$tarball"): $(wc -l <<<"$listing") files, no tests, CI or bench sources"

# 2. Install into an empty project.
proj="$work/project"
mkdir -p "$proj"
cd "$proj"
npm init -y >/dev/null
npm pkg set type=module
npm install --no-audit --no-fund --loglevel=error "$tarball" >/dev/null
version=$(node -p 'require(process.argv[1]).version' "$repo/package.json")
got=$(npx --no-install cdevemu --version)
[ "$got" = "$version" ] || fail "npx cdevemu --version printed '$got', expected '$version'"
npx --no-install cdevemu daemon --help | grep -q -- '--mount <dir>' || fail "npx cdevemu daemon --help lacks --mount"
step "npx cdevemu --version: $got; npx cdevemu daemon --help: ok"

# 3. The library and the control client, type-checked against the installed .d.ts.
cat > use.ts <<'TS'
import { startEmulator, HeldOpenError, type EmulatorHandle, type FaultRuleSpec, type StartOptions } from 'cdevemu';
import { ControlClient, type DeviceView } from 'cdevemu/control';

const options: StartOptions = { drainTimeoutMs: 500 };
// The types are real: an unknown option is an error (this line fails to compile if the types were `any`).
// @ts-expect-error -- no such option
const wrong: StartOptions = { noSuchOption: true };
void wrong;
const rule: FaultRuleSpec = { device: 'echo0', op: 'read', nth: 2, action: 'fail', errno: 'EIO' };
// @ts-expect-error -- delayMs belongs to action delay: fault rules are typed as the daemon checks them
const wrongRule: FaultRuleSpec = { action: 'fail', errno: 'EIO', delayMs: 5 };
void wrongRule;

async function main(): Promise<void> {
  const emu: EmulatorHandle = await startEmulator(options);
  try {
    const dev = await emu.plug('echo', 'echo0');
    emu.fault(rule);
    const n: number = dev.generation;
    console.log(`plugged ${dev.name} generation ${n} at ${emu.path('dev/echo0')}`);
    await emu.unplug('echo0');
    await emu.released('echo0', { within: 2000 });
  } catch (err) {
    if (err instanceof HeldOpenError) console.error(err.holders);
    throw err;
  } finally {
    await emu.stop();
  }
}

const client = new ControlClient('/nonexistent.sock');
const list: Promise<DeviceView[]> = client.listDevices();
void list.catch(() => {});
if (process.argv[2] === 'run') await main();
TS
# skipLibCheck false: every .d.ts the package ships is checked, as a user's
# strict project may. Node's types are the project's own: the oldest a user
# may have (the version this repository pins) and the newest published.
cat > tsconfig.json <<JSON
{
  "compilerOptions": {
    "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true,
    "skipLibCheck": false, "types": ["node"], "outDir": "out"
  },
  "files": ["use.ts"]
}
JSON
oldest=$(node -p 'require(process.argv[1]).devDependencies["@types/node"]' "$repo/package.json")
newest=$(npm view @types/node@latest version) || fail "cannot ask the npm registry for the newest @types/node"
for types in "$oldest" "$newest"; do
  npm install --no-save --no-audit --no-fund --loglevel=error "@types/node@$types" >/dev/null || fail "npm install @types/node@$types"
  node "$repo/node_modules/typescript/bin/tsc" -p tsconfig.json ||
    fail "tsc with @types/node $types rejected a script using cdevemu and cdevemu/control (or a declaration the package ships)"
done
node out/use.js || fail "the compiled script does not import"
step "import { startEmulator } from 'cdevemu' and { ControlClient } from 'cdevemu/control': type-checked by tsc with @types/node $oldest and $newest (skipLibCheck false), imported by node"

# 4. Serve for real where a FUSE mount can be made.
if [ "$(id -u)" != 0 ] || [ ! -w /dev/fuse ]; then
  step "not root or no /dev/fuse: skipped running the daemon and startEmulator()"
  exit 0
fi
node out/use.js run | grep -q 'plugged echo0 generation 1' || fail "startEmulator() from the installed package"
step "startEmulator() from the installed package: plugged, unplugged, released, stopped"
sock="$work/cdevemu.sock"
npx --no-install cdevemu daemon --mount "$work/mnt" --socket "$sock" >"$work/daemon.out" 2>"$work/daemon.err" &
daemon_pid=$!
for _ in $(seq 1 300); do
  [ -S "$sock" ] && grep -q 'Try, from another shell' "$work/daemon.out" && break
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/daemon.err" >&2; fail "npx cdevemu daemon exited"; }
  sleep 0.1
done
[ -S "$sock" ] || fail "npx cdevemu daemon did not serve within 30 s"
head -c 16 "$work/mnt/dev/zero" | od -An -tx1 | grep -q '00 00' || fail "reading $work/mnt/dev/zero"
npx --no-install cdevemu ls --socket "$sock" | grep -q echo0 || fail "npx cdevemu ls"
# npx is a parent of the daemon and does not wait for it on a signal: stop the daemon itself.
served_by=$(npx --no-install cdevemu status --socket "$sock" --json | node -e 'process.stdin.on("data", (b) => console.log(JSON.parse(b).pid))')
kill -TERM "$served_by"
rc=0; wait "$daemon_pid" || rc=$?
[ "$rc" = 0 ] || { tail -5 "$work/daemon.err" >&2; fail "npx cdevemu daemon exited $rc on SIGTERM"; }
daemon_pid=
grep -q " $work/mnt " /proc/mounts && fail "the daemon left its mount"
step "npx cdevemu daemon: served $work/mnt, answered ls, stopped on SIGTERM and unmounted"
