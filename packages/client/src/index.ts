export { UsipClient, type PingOptions, type PingResult } from './client.js';
export { MODULE_NOT_LOADED_HELP, UsipArgumentError, UsipError, UsipModuleNotLoadedError, UsipProtocolError } from './errors.js';
export { EventStream, notificationItem, type EventNames, type ListenerEvent, type ListenerItem, type Overrun } from './events.js';
export { Listener, Watch, type ListenerRegistration } from './listener.js';
export {
  ACTIONS_OF_TYPE,
  actionFromName,
  actionSpecName,
  type InjectOptions,
  type MtabActionName,
  type NotifierOptions,
  type RegisterOptions,
  type StorageActionName,
  type TypedAction,
  type WatchOptions,
} from './options.js';
export type { InjectResult, ListenerInfo, NotifierInfo, StatsResult } from './replies.js';
export { AttributeError, decodeAttributes, encodeAttributes, flagNames } from './netlink/attributes.js';
export * as protocol from './generated/usip.js';
export { isNetlinkError, NetlinkError, type FamilyInfo } from '@usip/netlink-native';
