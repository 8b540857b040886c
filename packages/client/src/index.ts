export { devices, UsipClient, type FeatureStatus, type PingOptions, type PingResult } from './client.js';
export {
  parseUdevData,
  readBlockDevices,
  splitDev,
  vpdSerial,
  type BlockDevice,
  type BlockDeviceOptions,
  type DeviceMount,
  type SysfsIo,
} from './devices.js';
export {
  MODULE_NOT_LOADED_HELP,
  UsipArgumentError,
  UsipDumpInterruptedError,
  UsipError,
  UsipModuleNotLoadedError,
  UsipProtocolError,
  UsipUnsupportedError,
} from './errors.js';
export {
  eventItem,
  EventStream,
  isLowSpaceEvent,
  notificationItem,
  type ListenerEvent,
  type ListenerItem,
  type LowSpaceEvent,
  type Missed,
  type MtabListenerEvent,
  type Overrun,
  type QuotaEvent,
  type SpaceErrorEvent,
  type StorageListenerEvent,
  type UnknownEvent,
} from './events.js';
export { Listener, Watch, type ListenerRegistration } from './listener.js';
export {
  escapeMountinfo,
  formatMountinfoLine,
  mountAttributeNames,
  mountAttrFromOptions,
  mountOptions,
  optionalFields,
  parseMountinfo,
  readMountinfo,
  sameMount,
  unescapeMountinfo,
  UsipMountinfoError,
  type MountInfo,
  type MountTable,
  type ParseMountinfoOptions,
  type ReadMountinfoOptions,
} from './mounts.js';
export {
  BACKEND_FEATURES,
  chooseBackends,
  choiceOf,
  fanotifyReason,
  FEATURE_TITLES,
  MOUNT_BACKENDS,
  probeBackends,
  probeKernel,
  requireBackend,
  UsipBackendUnavailableError,
  type BackendChoice,
  type BackendFeature,
  type BackendPlan,
  type BackendProbe,
  type MountBackend,
  type PassedOver,
} from './backends.js';
export { kernelMountInfo, mountAttrOfKernel } from './kernel-mounts.js';
export { missingKernelApi, type FanotifyBatch, type KernelMount, type MountApiSupport, type MountinfoBatch, type NativeStatfs } from './kernel-api.js';
export {
  kernelTable,
  mountOfPath,
  openMounts,
  OVERMOUNTED,
  statfsOfMount,
  UsipMounts,
  UsipNoSuchMountError,
  UsipSystemError,
  type OpenMountsOptions,
  type WatchMountsOptions,
} from './mount-service.js';
export { UserSpaceMountWatcher, type MountTableWatcher, type UserWatcherIo, type UserWatcherOptions } from './user-watcher.js';
export { MountWatcher, type MountChange, type MountResync, type MountResyncReason, type MountTableChange } from './mount-watcher.js';
export {
  ACTIONS_OF_TYPE,
  actionFromName,
  DEFAULT_WATCH_RECEIVE_BUFFER,
  LOW_SPACE_KEYS,
  type InjectOptions,
  type LowSpaceOptions,
  type MountWatcherOptions,
  type MtabActionName,
  type NotifierOptions,
  type RegisterOptions,
  type StatfsOptions,
  type StatfsTarget,
  type StorageActionName,
  type TypedAction,
  type WatchOptions,
  renamedValue,
} from './options.js';
export { decodeStatfs, statfsError, type StatfsError, type StatfsInfo, type StatfsUsage } from './statfs.js';
export { decodeStats, enumName, type InjectResult, type ListenerInfo, type NotifierInfo, type StatsResult } from './replies.js';
export { AttributeError, decodeAttributes, encodeAttributes, flagNames } from './netlink/attributes.js';
export { decodeDev, encodeDev, quote, toJson } from './text.js';
export * as protocol from './generated/usip.js';
export { isNetlinkError, NetlinkError, type FamilyInfo } from '@usip/netlink-native';
