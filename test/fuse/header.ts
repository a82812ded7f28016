/**
 * The FUSE ABI as the kernel's <linux/fuse.h> states it: test/clients/fuse_abi.c,
 * compiled against the installed header, prints struct sizes, member
 * offsets and sizes, and constants; this reads them.
 */
import { cClient } from '../helpers/cc.js';
import { run } from '../helpers/proc.js';

export interface Member {
  offset: number;
  /** 0 for a flexible array member. */
  size: number;
}

export interface FuseHeader {
  /** FUSE_KERNEL_MINOR_VERSION of the installed header. */
  minor: number;
  structs: Map<string, { size: number; members: Map<string, Member> }>;
  consts: Map<string, bigint>;
  /** What the header is too old to have ("fuse_backing_map", "fuse_open_out.backing_id", "FUSE_STATX"): the minor that added it. */
  missing: Map<string, number>;
}

export async function readFuseHeader(): Promise<FuseHeader> {
  let bin: string;
  try {
    bin = await cClient('fuse_abi', ['/usr/include/linux/fuse.h']);
  } catch (err) {
    throw new Error(
      `test/clients/fuse_abi.c did not build against <linux/fuse.h>: it needs gcc and linux-libc-dev (node scripts/check-system.mjs --install --tests)\n${(err as Error).message}`,
      { cause: err },
    );
  }
  const r = await run(bin, []);
  if (r.code !== 0) throw new Error(`fuse_abi exited ${r.code}: ${r.stderr}`);
  const h: FuseHeader = { minor: -1, structs: new Map(), consts: new Map(), missing: new Map() };
  for (const line of r.stdout.trim().split('\n')) {
    const [kind, name, ...rest] = line.split(' ') as [string, string, ...string[]];
    if (kind === 'minor') h.minor = Number(name);
    else if (kind === 'struct') h.structs.set(name, { size: Number(rest[0]), members: new Map() });
    else if (kind === 'field') h.structs.get(name)!.members.set(rest[0]!, { offset: Number(rest[1]), size: Number(rest[2]) });
    else if (kind === 'const') h.consts.set(name, BigInt(rest[0]!));
    else if (kind === 'missing') h.missing.set(name, Number(rest[0]));
    else throw new Error(`fuse_abi printed an unknown line: ${line}`);
  }
  return h;
}

/** Why `name` (a struct, "struct.member" or a constant) cannot be checked against this header, or null when it can. */
export function absent(h: FuseHeader, name: string): string | null {
  const since = h.missing.get(name);
  return since === undefined ? null : `${name} is not in the installed <linux/fuse.h> (7.${h.minor}); it came with 7.${since}`;
}
