export {
  DEFAULT_ADMIN_ZONE,
  DEFAULT_LISTEN_ADDRESS,
  DEFAULT_PORT,
  DEFAULTS,
  defaultListener,
  LOOPBACK_CIDRS,
  LOOPBACK_ZONE,
  SERVICE_CLASSES,
} from './defaults.js';
export {
  API_KEY_VARIABLE,
  CONFIG_FILE_VARIABLE,
  type EnvSetting,
  envSettings,
  envVariableName,
  HOST_VARIABLE,
  OTHER_HEARTH_PREFIXES,
  OTHER_HEARTH_VARIABLES,
} from './env.js';
export {
  type ConfigFromObjectOptions,
  configFromObject,
  embeddedDbDir,
  engineDirOf,
  type LoadConfigOptions,
  type LoadedConfig,
  loadConfig,
} from './load.js';
export { maskSecrets, renderConfig } from './render.js';
export {
  configSchema,
  GPU_BACKENDS,
  GPU_FALLBACKS,
  type GpuBackend,
  type HearthConfig,
  LISTENER_AUTH,
  type ListenerConfig,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogLevel,
  type ServiceClass,
} from './schema.js';
export {
  type Cidr,
  formatBytesExact,
  formatDuration,
  formatListenAddress,
  type ListenAddress,
  type ListenAddressOptions,
  maskUrlPassword,
  parseBytes,
  parseCidr,
  parseDuration,
  parseListenAddress,
} from './values.js';
