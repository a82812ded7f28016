/**
 * Bounds on what users may ask for, checked where requests, config files
 * and scenarios come in, so nothing out of range reaches a timer or a path.
 */

/**
 * The longest duration a timer can wait: Node's setTimeout() stores the
 * delay as a 32-bit signed int and turns anything longer into 1 ms.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** NAME_MAX (include/uapi/linux/limits.h): the longest path component, in bytes. */
export const NAME_MAX = 255;

/** TASK_COMM_LEN (include/linux/sched.h) less the NUL: the longest comm a process can have. */
export const COMM_MAX = 15;

/** PID_MAX_LIMIT (include/linux/threads.h) on 64-bit: no pid is larger. */
export const PID_MAX = 4 * 1024 * 1024;

/**
 * The most one FUSE request reads or writes: the mount's max_read and
 * max_write (less where /proc/sys/fs/fuse/max_pages_limit is lower). A
 * longer read or write comes as several (fs/fuse/file.c fuse_direct_io()).
 */
export const MAX_CALL_BYTES = 1 << 20;

/** How error messages state MAX_DURATION_MS. */
export const MAX_DURATION_TEXT = `at most ${MAX_DURATION_MS} ms (about 24.8 days)`;
