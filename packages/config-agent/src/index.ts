export {
  NotifierConfig,
  NotifierFileError,
  describeEntry,
  formatProblem,
  listConfigEntries,
  resolveConfigEntry,
  type ConfigEntry,
  type ConfigListing,
  isNotifierFileName,
  listNotifierFiles,
  loadNotifierFile,
  parseNotifierFile,
  readNotifierFile,
  type ConfigProblem,
  type LoadOptions,
  type LoadResult,
  type NotifierFile,
} from './load.js';
export { ENTRY_RULES, MAX_FILE_BYTES, PERMISSIONS_RULE, fileKind, readEntry, runPermissionProblems, type EntryRead } from './files.js';
export {
  AGENT_RULES,
  AJV_OPTIONS,
  DEFAULT_CONFIG_DIRS,
  MAX_TIMEOUT_SECONDS,
  SCHEMA_ID,
  STARTABLE_UNIT_TYPES,
  UNIT_NAME_PATTERN,
  MTAB_ACTIONS,
  STORAGE_ACTIONS,
  notifierFileSchema,
  type NotifierDeclaration,
  type NotifierFileContent,
} from './schema.js';
export { Agent, AgentStartError, DEFAULT_UNIT_EVENT_DIR, type AgentOptions, type FileStatus } from './agent.js';
export {
  ActionRunner,
  DEFAULT_ACTION_LIMITS,
  eventVariables,
  writeEventFile,
  type ActionCounters,
  type ActionJob,
  type ActionLimits,
  type ActionOutcome,
} from './actions.js';
export {
  decodeDev,
  environmentFileText,
  environmentName,
  eventEnvironment,
  eventJson,
  notifierMatches,
  pathWithin,
  registerOptions,
  toJsonText,
  type EventJson,
} from './event.js';
export { connectUsip, familyGone, type AgentKernel, type AgentListener, type KernelConnector } from './kernel.js';
export { createLogger, humanLine, LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel, type Logger, type LoggerOptions } from './log.js';
export { Tally } from './tally.js';
export { PrometheusMetrics, MetricsServerError, parseMetricsAddress, readModuleStats, serveMetrics, actionKind, MODULE_STATS, type AgentMetrics, type AgentView, type MetricsAddress, type MetricsServer, type ModuleStatsSource, type PrometheusMetricsOptions } from './metrics.js';
