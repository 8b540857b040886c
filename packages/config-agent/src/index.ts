export {
  NotifierConfig,
  NotifierFileError,
  formatProblem,
  listNotifierFiles,
  parseNotifierFile,
  readNotifierFile,
  type ConfigProblem,
  type NotifierFile,
} from './load.js';
export {
  MTAB_ACTIONS,
  STORAGE_ACTIONS,
  notifierFileSchema,
  type NotifierDeclaration,
  type NotifierFileContent,
} from './schema.js';
