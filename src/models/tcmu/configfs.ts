/**
 * The files of a tcmu device, where tcmu-runner 1.5.4 reads them:
 *
 * sys/class/uio/uioN/: name, version, event, maps/map0/{name,addr,size,offset}
 * (uio.c's formats).
 *
 * sys/kernel/config/target/core/user_<hba>/<dev>/ (configfs):
 *   info                 target_core_dev_info_show: transport_dump_dev_state()
 *                        then tcmu_show_configfs_dev_params() ("... Size: N ...")
 *   enable               1 (the device is configured)
 *   control              write-only: "key=value,..." (tcmu_set_configfs_dev_params)
 *   attrib/...           hw_block_size, hw_max_sectors, hw_queue_depth, cmd_time_out
 *                        (rw, but EINVAL: the device is exported), qfull_time_out (rw),
 *                        max_data_area_mb, dev_config (rw), dev_size (rw),
 *                        nl_reply_supported (rw), emulate_write_cache (rw),
 *                        tmr_notification (rw); a write of
 *                        dev_config, dev_size, emulate_write_cache asks the daemon
 *                        first (RECONFIG_DEVICE)
 *   action/block_dev     rw: "blocked"/"unblocked"; 1 blocks, 0 unblocks (tcmu_block_dev_store)
 *   action/reset_ring    write-only: 1 or 2 (tcmu_reset_ring_store)
 *   alua/                a group directory (its default_tg_pt_gp is not emulated)
 *   wwn/vpd_unit_serial  "T10 VPD Unit Serial Number: <serial>"
 */
import { after } from '../../awaitable.js';
import { Errno } from '../../errno.js';
import { SYS_DIR } from '../../devio.js';
import type { Attribute } from '../../core/index.js';
import { uioAttributes } from '../uio.js';
import { configfsDir, uioName, type TcmuReconfig } from './config.js';
import { blockDev, resetRing } from './device-actions.js';
import type { TcmuInstance } from './model.js';

/**
 * kstrtou8/kstrtou32(page, 0, &val) as configfs stores parse: decimal, 0x
 * hex or 0 octal, one trailing newline allowed. The page is a C string, so
 * a NUL ends it: tcmu-runner's tcmu_cfgfs_set_u32() writes "1\0".
 */
export function kstrtoul(text: string, max: number): number {
  const c = text.split('\0')[0]!;
  const t = c.endsWith('\n') ? c.slice(0, -1) : c;
  const m = /^\+?(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))$/.exec(t);
  if (!m) throw new Errno('EINVAL');
  const v = m[1] !== undefined ? parseInt(m[1], 16) : m[2] !== undefined ? parseInt(m[2], 8) : parseInt(m[3]!, 10);
  if (!Number.isSafeInteger(v)) throw new Errno('ERANGE');
  if (v > max) throw new Errno('ERANGE');
  return v;
}

/** kstrtos32 / kstrtos8: like kstrtoul with a sign. */
function kstrtos(text: string, bits: 8 | 32): number {
  const t = text.split('\0')[0]!;
  const max = 2 ** (bits - 1);
  return t.startsWith('-') ? -kstrtoul(t.slice(1), max) : kstrtoul(t, max - 1);
}

/**
 * A timeout in seconds as the kernel shows it. The model takes milliseconds
 * (for tests); the kernel's are whole seconds, so a part of a second shows
 * as the next whole one: 300 ms must not read "0", which means "disabled".
 */
const seconds = (ms: number): number => Math.ceil(ms / 1000);

const line = (v: string | number): string => `${v}\n`;

export function tcmuAttributes(inst: TcmuInstance): Record<string, Attribute> {
  const s = () => inst.state;
  const c = () => inst.state.config;
  const d = configfsDir(inst.state.config);
  return {
    // info->mem[0] as tcmu_configure_device() fills it.
    ...uioAttributes(inst.name, s, [{ name: 'tcm-user command & data buffer', addr: 0, size: () => c().layout.mapSize }]),
    [`${d}/info`]: () =>
      // transport_dump_dev_state() (as for a device exported through a LUN,
      // queue depth hw_queue_depth), then tcmu_show_configfs_dev_params().
      `Status: ACTIVATED  Max Queue Depth: 128  SectorSize: ${c().hwBlockSize}  HwMaxSectors: ${c().hwMaxSectors}\n` +
      `        Config: ${c().cfgstring ? `${c().subtype}/${c().cfgstring}` : 'NULL'} Size: ${c().devSize} MaxDataAreaMB: ${c().maxDataAreaMB}\n`,
    [`${d}/enable`]: '1\n',
    [`${d}/control`]: { store: (text) => storeControl(inst, text) },
    [`${d}/attrib/hw_block_size`]: () => line(c().hwBlockSize),
    [`${d}/attrib/hw_max_sectors`]: () => line(c().hwMaxSectors),
    [`${d}/attrib/hw_queue_depth`]: '128\n',
    [`${d}/attrib/max_data_area_mb`]: () => line(c().maxDataAreaMB),
    [`${d}/attrib/dev_config`]: {
      show: () => line(`${c().subtype}/${c().cfgstring}`),
      // tcmu_dev_config_store(): the daemon first, then the string and the uio name.
      store: async (text) => {
        const v = text.endsWith('\n') ? text.slice(0, -1) : text;
        const slash = v.indexOf('/');
        if (!v || Buffer.byteLength(v) > TCMU_CONFIG_LEN - 1 || slash <= 0) throw new Errno('EINVAL');
        await reconfigure(inst, { devConfig: v });
        c().subtype = v.slice(0, slash);
        c().cfgstring = v.slice(slash + 1);
        s().name = uioName(c());
      },
    },
    [`${d}/attrib/dev_size`]: {
      show: () => line(c().devSize),
      store: async (text) => {
        const v = kstrtoul(text, Number.MAX_SAFE_INTEGER);
        await reconfigure(inst, { devSize: BigInt(v) });
        c().devSize = v;
      },
    },
    // The kernel copies tcmu_kern_cmd_reply_supported (a daemon's SET_FEATURES) in at
    // configure time; here, until written, it follows the consumers registered now.
    // Written (tcmu_nl_reply_supported_store, kstrtos8), a value <= 0 stops the
    // device's events waiting for replies (tcmu_wait_genl_cmd_reply()).
    [`${d}/attrib/nl_reply_supported`]: {
      show: () => line(s().nlReplySupported ?? (s().consumers?.replySupported() ? 1 : 0)),
      store: (text) => {
        s().nlReplySupported = kstrtos(text, 8);
      },
    },
    [`${d}/attrib/emulate_write_cache`]: {
      show: () => line(c().writeCache ? 1 : 0),
      store: async (text) => {
        const v = kstrtoul(text, 255);
        if (v > 1) throw new Errno('EINVAL');
        await reconfigure(inst, { writeCache: v === 1 });
        c().writeCache = v === 1;
      },
    },
    [`${d}/attrib/cmd_time_out`]: {
      show: () => line(seconds(c().cmdTimeOutMs)),
      // tcmu_cmd_time_out_store(): "Unable to set tcmu cmd_time_out while
      // exports exist"; the emulated device is always exported to its initiator.
      store: () => {
        throw new Errno('EINVAL');
      },
    },
    [`${d}/attrib/qfull_time_out`]: {
      show: () => line(c().qfullTimeOutMs <= 0 ? c().qfullTimeOutMs : seconds(c().qfullTimeOutMs)),
      store: (text) => {
        const v = kstrtos(text, 32);
        if (v < -1) throw new Errno('EINVAL');
        c().qfullTimeOutMs = v < 0 ? -1 : v * 1000;
        s().ring.setTimeouts(c());
      },
    },
    // tcmu_tmr_notification_store(): kstrtou8, 0 or 1.
    [`${d}/attrib/tmr_notification`]: {
      show: () => line(c().tmrNotification ? 1 : 0),
      store: (text) => {
        const v = kstrtoul(text, 255);
        if (v > 1) throw new Errno('EINVAL');
        c().tmrNotification = v === 1;
        s().ring.setTmrNotification(v === 1);
      },
    },
    [`${d}/action/block_dev`]: {
      show: () => line(s().ring.blocked ? 'blocked' : 'unblocked'),
      store: (text) => {
        const v = kstrtoul(text, 255);
        if (v > 1) throw new Errno('EINVAL');
        return after(blockDev(inst, v === 1), () => undefined);
      },
    },
    [`${d}/action/reset_ring`]: {
      store: (text) => {
        const v = kstrtoul(text, 255);
        if (v !== 1 && v !== 2) throw new Errno('EINVAL');
        return after(resetRing(inst, v), () => undefined);
      },
    },
    [`${d}/alua`]: SYS_DIR,
    [`${d}/wwn/vpd_unit_serial`]: () => line(`T10 VPD Unit Serial Number: ${c().serial}`),
  };
}

/** TCMU_CONFIG_LEN: dev_config's buffer, NUL included. */
const TCMU_CONFIG_LEN = 256;

/** The daemon's answer to a reconfiguration of a configured (enabled) device. */
function reconfigure(inst: TcmuInstance, r: TcmuReconfig): Promise<void> {
  return inst.state.consumers ? inst.state.consumers.reconfigure(r) : Promise.reject(new Errno('ESRCH'));
}

/**
 * target_core_dev_control_store -> tcmu_set_configfs_dev_params(): comma or
 * newline separated key=value pairs; unknown keys are ignored as the
 * kernel's match_token default does. dev_config only replaces the string:
 * the uio name was set when the device was configured.
 */
function storeControl(inst: TcmuInstance, text: string): void {
  const c = inst.state.config;
  for (const part of text.split(/[,\n]/)) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    if (key === 'dev_size') c.devSize = kstrtoul(value, Number.MAX_SAFE_INTEGER);
    else if (key === 'hw_block_size' || key === 'hw_max_sectors') {
      const v = kstrtoul(value, 0x7fffffff);
      if (v <= 0) throw new Errno('EINVAL');
      if (key === 'hw_block_size') c.hwBlockSize = v;
      else c.hwMaxSectors = v;
    } else if (key === 'dev_config') {
      const slash = value.indexOf('/');
      if (!value || slash <= 0) throw new Errno('EINVAL');
      c.subtype = value.slice(0, slash);
      c.cfgstring = value.slice(slash + 1);
    }
  }
}
