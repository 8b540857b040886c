export { SpecError, formatProblem, type SpecProblem } from './errors.js';
export { loadSpecFile, loadSpecText, schemaProblems, specTextLocator } from './load.js';
export { specSchema } from './schema.js';
export type * from './model.js';
export { emitUapiHeader } from './emit/uapi-header.js';
export { emitKernelHeader, emitKernelSource } from './emit/kernel-source.js';
export { emitTypeScript } from './emit/typescript.js';
export { emitMarkdown } from './emit/markdown.js';
export {
  DEFAULT_SPEC,
  findWorkspaceRoot,
  generateFiles,
  staleFiles,
  writeFiles,
  type GeneratedFile,
  type StaleFile,
} from './generate.js';
