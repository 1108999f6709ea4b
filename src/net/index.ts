// Network zones, listeners and access control: who may reach which service class, and how.
export { AcceptFilter, type AcceptFilterOptions, type DropCounts, type DropReason } from './accept-filter.js';
export {
  AccessControl,
  type AccessControlOptions,
  type GuardedRequest,
  ListenerGuard,
  type OriginDecision,
  type Principal,
  type RequestClient,
  resolveClient,
  viaHttps,
} from './access.js';
export {
  type AddressScope,
  addressScope,
  type CidrBlock,
  cidrContains,
  type IpAddress,
  isLoopback,
  parseCidrBlock,
  parseIpAddress,
} from './address.js';
export { FailedAuthLimiter, type FailedAuthLimiterOptions } from './auth-failures.js';
export { CorsPolicy } from './cors.js';
export {
  assertExposureAllowed,
  assessExposure,
  type ExposureAssessment,
  exposureReport,
  KEYED_CLASSES,
} from './exposure.js';
export { HostAllowlist, hostCheckApplies } from './host-check.js';
export { KEY_SCOPES, type KeyScope, parseKeyExpiry } from './keys/api-key.js';
export { type ApiKeyInfo, ApiKeyStore, type CreateKeyOptions, checkScopes, type KeyCheck } from './keys/key-store.js';
export { type Admission, ZoneMap, ZonePolicy } from './zones.js';
