export { UsipClient, type PingOptions, type PingResult } from './client.js';
export { MODULE_NOT_LOADED_HELP, UsipError, UsipModuleNotLoadedError, UsipProtocolError } from './errors.js';
export { AttributeError, decodeAttributes, encodeAttributes, flagNames } from './netlink/attributes.js';
export * as protocol from './generated/usip.js';
export { isNetlinkError, NetlinkError, type FamilyInfo } from '@usip/netlink-native';
