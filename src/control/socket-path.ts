/**
 * Where the control socket lives (docs/control-api.md): `--socket PATH`, else
 * $CDEVEMU_SOCKET, else the default: /run/cdevemu.sock for root,
 * $XDG_RUNTIME_DIR/cdevemu.sock for other users, and for a user without
 * XDG_RUNTIME_DIR /tmp/cdevemu-UID.sock.
 */
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? 0): string {
  // Root gets one fixed path: sudo may or may not keep XDG_RUNTIME_DIR, and
  // the daemon and its clients must agree.
  if (uid === 0) return '/run/cdevemu.sock';
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'cdevemu.sock');
  return join(tmpdir(), `cdevemu-${uid}.sock`);
}

/** `flag` (from --socket), else $CDEVEMU_SOCKET, else the default; made absolute. */
export function resolveSocketPath(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag || env.CDEVEMU_SOCKET || defaultSocketPath(env));
}
