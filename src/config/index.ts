/** Config and document loading shared by the daemon and (later) scenario files. */
export { ConfigError, Field, Mapping, SourceDocument, formatPath, type FieldPath } from './document.js';
export { LOG_LEVELS, type LogLevel } from './log-levels.js';
export {
  loadDaemonConfig,
  readDaemonConfig,
  readDeviceList,
  readDeviceSpec,
  readFaultRule,
  readUnplugMode,
  type DaemonConfigFile,
  type DeviceSpec,
} from './daemon.js';
export { DEFAULT_DEVICES, DEFAULT_MOUNTPOINT, DEFAULT_SHUTDOWN_RELEASE_MS } from './defaults.js';
