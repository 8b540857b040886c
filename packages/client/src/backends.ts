// Which backend serves each feature: the usip module, the kernel's own mount API
// (listmount/statmount 6.8+, fanotify mount events 6.15+, statfs(2)) or /proc/self/mountinfo,
// chosen per feature with the reason, from what a probe found (probeBackends) and what the
// caller forced. chooseBackends() is pure: the client and `usip status` use the same decision.
import { release } from 'node:os';
import { UsipClient, type PingResult } from './client.js';
import { UsipArgumentError, UsipError, UsipModuleNotLoadedError } from './errors.js';
import { kernelApi, missingReason, type MountApiSupport } from './kernel-api.js';

/** Where mount information can come from. */
export const MOUNT_BACKENDS = ['module', 'kernel', 'mountinfo'] as const;
export type MountBackend = (typeof MOUNT_BACKENDS)[number];

/** The features a backend is chosen for, in the order `usip status` shows them. */
export const BACKEND_FEATURES = ['mount-table', 'mount-changes', 'remounts', 'statfs', 'block-devices', 'storage-events', 'low-space'] as const;
export type BackendFeature = (typeof BACKEND_FEATURES)[number];

/** What each feature is, for people. */
export const FEATURE_TITLES: Readonly<Record<BackendFeature, string>> = {
  'mount-table': 'mount table',
  'mount-changes': 'mount changes',
  remounts: 'remounts',
  statfs: 'statfs',
  'block-devices': 'block devices',
  'storage-events': 'storage events',
  'low-space': 'low space',
};

/** What a probe found out about the module and the kernel. */
export interface BackendProbe {
  /** The running kernel's release (uname -r). */
  kernelRelease: string;
  /** The module: its ping, or why it cannot be used. */
  module: { loaded: true; ping: PingResult } | { loaded: false; reason: string };
  /** The kernel's mount API, or why it could not be asked (the binding lacks it). */
  kernel: { support: MountApiSupport } | { support?: undefined; reason: string };
  /** Whether the binding can poll mountinfo (MountinfoWatch) and statfs a path, or why not. */
  mountinfoWatch: { available: boolean; reason?: string };
  statfsPath: { available: boolean; reason?: string };
}

/** A backend that was passed over for a feature, and why. */
export interface PassedOver {
  backend: MountBackend;
  reason: string;
}

/** The decision for one feature. */
export interface BackendChoice {
  feature: BackendFeature;
  /** Who serves it; 'none' when nothing can. */
  backend: MountBackend | 'none';
  /** How, in a few words: 'usip module', 'listmount+statmount', 'fanotify', 'poll(mountinfo)', 'statfs(2)', ... */
  mechanism: string;
  /** Why this backend: the reasons the better ones were passed over, or that it is the best. */
  reason: string;
  /** The better backends that could not serve it, best first. */
  passedOver: PassedOver[];
}

export interface BackendPlan {
  kernelRelease: string;
  /** The backend the caller forced, if any. */
  forced?: MountBackend;
  moduleLoaded: boolean;
  features: BackendChoice[];
}

/** A forced backend cannot serve a feature (or no backend can): names both and why. */
export class UsipBackendUnavailableError extends UsipError {
  readonly backend: MountBackend | 'none';
  readonly feature: BackendFeature;
  readonly reason: string;
  constructor(feature: BackendFeature, backend: MountBackend | 'none', reason: string, options?: { cause?: unknown }) {
    super(
      'USIP_BACKEND_UNAVAILABLE',
      backend === 'none'
        ? `no backend can serve the ${FEATURE_TITLES[feature]} here: ${reason}`
        : `the ${backend} backend cannot serve the ${FEATURE_TITLES[feature]}: ${reason}`,
      options,
    );
    this.backend = backend;
    this.feature = feature;
    this.reason = reason;
  }
}

/** A module feature by spec name: available, or why not ('module not loaded', 'module: feature off: <reason>'). */
function moduleFeature(probe: BackendProbe, ...features: string[]): { ok: true } | { ok: false; reason: string } {
  if (!probe.module.loaded) return { ok: false, reason: probe.module.reason };
  for (const feature of features) {
    const status = probe.module.ping.featureStatus.find((s) => s.feature === feature);
    const available = status?.available ?? probe.module.ping.features.includes(feature);
    if (!available) return { ok: false, reason: `module: feature ${feature} off: ${status?.reason ?? 'unknown'}` };
  }
  return { ok: true };
}

function listmountReason(probe: BackendProbe): string | undefined {
  if (probe.kernel.support === undefined) return probe.kernel.reason;
  const { listmount, statmount } = probe.kernel.support;
  if (listmount && statmount) return undefined;
  return `${listmount ? 'statmount' : 'listmount'} needs Linux 6.8 (this kernel: ${probe.kernelRelease})`;
}

/** fanotify's refusal as people read it: the binding's reason is an errno name, maybe followed by ": details". */
export function fanotifyReason(reason: string | undefined, kernelRelease: string): string {
  const code = reason === undefined ? undefined : /^E[A-Z]+\b/.exec(reason)?.[0];
  if (code === 'EPERM' || code === 'EACCES') return `fanotify needs CAP_SYS_ADMIN (${reason})`;
  if (reason === undefined || code === 'EINVAL' || code === 'ENOSYS') {
    return `fanotify mount events need Linux 6.15 (this kernel: ${kernelRelease}${reason === undefined ? '' : `; ${reason}`})`;
  }
  return reason.startsWith('fanotify') ? reason : `fanotify: ${reason}`;
}

function fanotifyUnavailable(probe: BackendProbe): string | undefined {
  const list = listmountReason(probe);
  if (list !== undefined) return list;
  const { fanotifyMount } = probe.kernel.support!;
  return fanotifyMount.available ? undefined : fanotifyReason(fanotifyMount.reason, probe.kernelRelease);
}

interface Candidate {
  backend: MountBackend;
  mechanism: string;
  /** Said of it when it is chosen. */
  note?: string;
  /** Why it cannot serve; undefined: it can. */
  unavailable: string | undefined;
}

function decide(feature: BackendFeature, candidates: Candidate[], forced: MountBackend | undefined): BackendChoice {
  const passedOver: PassedOver[] = [];
  for (const c of candidates) {
    if (forced !== undefined && c.backend !== forced) continue;
    if (c.unavailable === undefined) {
      const why = forced !== undefined ? [`forced (--backend ${forced})`] : passedOver.length === 0 ? [c.backend === 'module' ? 'module loaded, feature on' : 'the best there is'] : passedOver.map((p) => p.reason);
      const reason = [...why, ...(c.note === undefined ? [] : [c.note])].join('; ');
      return { feature, backend: c.backend, mechanism: c.mechanism, reason, passedOver };
    }
    passedOver.push({ backend: c.backend, reason: c.unavailable });
  }
  if (forced !== undefined && !candidates.some((c) => c.backend === forced)) {
    passedOver.push({ backend: forced, reason: `the ${forced} backend does not offer the ${FEATURE_TITLES[feature]}` });
  }
  return { feature, backend: 'none', mechanism: 'none', reason: passedOver.map((p) => p.reason).join('; ') || 'unavailable', passedOver };
}

/**
 * The backend of each feature. Without `forced`, the best that can serve it: the module where it
 * is loaded and has the feature on this kernel, else the kernel's own mechanism, else mountinfo.
 * With `forced`, the mount features (table, changes, remounts) only from that backend; statfs
 * comes from the module when the module is forced, else from statfs(2); block devices always
 * from sysfs, with the mount table's backend for which mounts use them; storage events and low
 * space only from the module. A feature nothing can serve has backend 'none' and the reasons.
 */
export function chooseBackends(probe: BackendProbe, options: { backend?: MountBackend } = {}): BackendPlan {
  const forced = options.backend;
  if (forced !== undefined && !(MOUNT_BACKENDS as readonly string[]).includes(forced)) {
    throw new UsipArgumentError('backend', `backend: expected one of ${MOUNT_BACKENDS.join(', ')}, got ${JSON.stringify(forced)}`);
  }
  const moduleTable = moduleFeature(probe, 'mount-table');
  const moduleChanges = moduleFeature(probe, 'mount-table', 'mount-events');
  const moduleRemounts = moduleFeature(probe, 'mount-table', 'mount-events', 'remount-events', 'propagation-events', 'setattr-events');
  const mountinfoWatch = probe.mountinfoWatch.available ? undefined : (probe.mountinfoWatch.reason ?? 'unavailable');
  const reasonOf = (r: { ok: true } | { ok: false; reason: string }) => (r.ok ? undefined : r.reason);

  const table = decide(
    'mount-table',
    [
      { backend: 'module', mechanism: 'mount-get dump', unavailable: reasonOf(moduleTable) },
      { backend: 'kernel', mechanism: 'listmount+statmount', unavailable: listmountReason(probe) },
      { backend: 'mountinfo', mechanism: 'read /proc/self/mountinfo', unavailable: undefined },
    ],
    forced,
  );
  // The module's watcher needs every kind of mount event: it serves changes and remounts together.
  const changes = decide(
    'mount-changes',
    [
      { backend: 'module', mechanism: 'mtab events', unavailable: reasonOf(moduleRemounts) ?? reasonOf(moduleChanges) },
      { backend: 'kernel', mechanism: 'fanotify+statmount', unavailable: fanotifyUnavailable(probe) ?? (mountinfoWatch === undefined ? undefined : `remounts need the mountinfo poll: ${mountinfoWatch}`) },
      { backend: 'mountinfo', mechanism: 'poll(mountinfo)', unavailable: mountinfoWatch },
    ],
    forced,
  );
  const remounts = decide(
    'remounts',
    [
      { backend: 'module', mechanism: 'mtab events', unavailable: changes.backend === 'module' ? undefined : reasonOf(moduleRemounts) },
      {
        backend: 'kernel',
        mechanism: 'poll(mountinfo)+statmount',
        note: 'fanotify does not report remounts',
        unavailable: changes.backend === 'kernel' || (forced === 'kernel' && changes.backend !== 'none') ? undefined : (fanotifyUnavailable(probe) ?? 'mount changes come from another backend'),
      },
      {
        backend: 'mountinfo',
        mechanism: 'poll(mountinfo)',
        unavailable: mountinfoWatch,
      },
    ],
    forced,
  );
  const statfsCandidates: Candidate[] = [
    { backend: 'module', mechanism: 'statfs op', unavailable: reasonOf(moduleFeature(probe, 'statfs')) },
    {
      backend: 'kernel',
      mechanism: 'statfs(2)',
      unavailable: probe.statfsPath.available ? undefined : (probe.statfsPath.reason ?? 'unavailable'),
    },
  ];
  const statfs = decide('statfs', statfsCandidates, forced === 'module' ? 'module' : forced === undefined ? undefined : 'kernel');
  const devices: BackendChoice =
    table.backend === 'none'
      ? { ...table, feature: 'block-devices' }
      : { feature: 'block-devices', backend: table.backend, mechanism: `sysfs + ${table.mechanism}`, reason: table.reason, passedOver: table.passedOver };
  // Only the module has these, whatever backend the mount features were forced to.
  const storage = decide('storage-events', [{ backend: 'module', mechanism: 'space-errors, quota-warnings', unavailable: reasonOf(moduleFeature(probe, 'space-errors')) }], undefined);
  const lowSpace = decide('low-space', [{ backend: 'module', mechanism: 'low-space', unavailable: reasonOf(moduleFeature(probe, 'low-space')) }], undefined);
  const plan: BackendPlan = {
    kernelRelease: probe.kernelRelease,
    moduleLoaded: probe.module.loaded,
    features: [table, changes, remounts, statfs, devices, storage, lowSpace],
  };
  if (forced !== undefined) plan.forced = forced;
  return plan;
}

/** The decision for one feature of a plan. */
export function choiceOf(plan: BackendPlan, feature: BackendFeature): BackendChoice {
  return plan.features.find((c) => c.feature === feature)!;
}

/**
 * The backend that serves a feature; throws when none does: UsipModuleNotLoadedError (naming what
 * needs it) when only the module could and it is not loaded, else UsipBackendUnavailableError.
 */
export function requireBackend(plan: BackendPlan, feature: BackendFeature): BackendChoice {
  const choice = choiceOf(plan, feature);
  if (choice.backend !== 'none') return choice;
  if (!plan.moduleLoaded && (feature === 'storage-events' || feature === 'low-space')) {
    throw new UsipModuleNotLoadedError({ needs: `${FEATURE_TITLES[feature]} need${feature === 'low-space' ? 's' : ''} the usip kernel module: no other backend provides them` });
  }
  if (!plan.moduleLoaded && plan.forced === 'module') {
    throw new UsipModuleNotLoadedError({ needs: `the module backend was asked for (--backend module), and it cannot serve the ${FEATURE_TITLES[feature]}` });
  }
  const forced = plan.forced ?? 'none';
  const reason = choice.passedOver.find((p) => p.backend === forced)?.reason ?? choice.reason;
  throw new UsipBackendUnavailableError(feature, plan.forced ?? 'none', reason);
}

/**
 * Probes the module (connect + ping) and the kernel's mount API. `client` is an open
 * connection to reuse (it is not closed); otherwise one is opened and closed again.
 */
export async function probeBackends(options: { client?: UsipClient } = {}): Promise<BackendProbe> {
  let module: BackendProbe['module'];
  try {
    const client = options.client ?? (await UsipClient.connect());
    try {
      module = { loaded: true, ping: await client.ping() };
    } finally {
      if (options.client === undefined) await client.close();
    }
  } catch (error) {
    module = { loaded: false, reason: error instanceof UsipModuleNotLoadedError ? 'module not loaded' : `module: ${(error as Error).message}` };
  }
  return { ...probeKernel(), module };
}

/** The kernel half of a probe (no netlink). */
export function probeKernel(): Omit<BackendProbe, 'module'> {
  const kernelRelease = release();
  const support = kernelApi('mountApiSupport');
  let kernel: BackendProbe['kernel'];
  if (support === undefined) kernel = { reason: missingReason('mountApiSupport') };
  else {
    try {
      kernel = { support: support() };
    } catch (error) {
      kernel = { reason: `mountApiSupport(): ${(error as Error).message}` };
    }
  }
  const available = (name: 'MountinfoWatch' | 'statfsPath') => (kernelApi(name) === undefined ? { available: false, reason: missingReason(name) } : { available: true });
  return { kernelRelease, kernel, mountinfoWatch: available('MountinfoWatch'), statfsPath: available('statfsPath') };
}
