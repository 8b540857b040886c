import {
  chooseBackends,
  FEATURE_TITLES,
  probeBackends,
  protocol,
  UsipClient,
  UsipError,
  isNetlinkError,
  type BackendPlan,
  type FamilyInfo,
  type FeatureStatus,
  type MountBackend,
  type PingResult,
} from '@usip/client';

/** What `usip status` reports; also its --json output. */
export interface StatusReport {
  loaded: boolean;
  client: { version: string; protocolVersion: number };
  module?: {
    version: string;
    protocolVersion: number;
    kernelRelease: string;
    features: string[];
    featureMask: number;
    /** Every feature: available or not, and why in a word. */
    featureStatus: FeatureStatus[];
  };
  family?: {
    name: string;
    id: number;
    version: number;
    /** Operation names this client knows, or `cmd-N` for ones it does not. */
    operations: string[];
    multicastGroups: { name: string; id: number }[];
  };
  /** Whether this client and the module speak the same protocol version. */
  compatible?: boolean;
  /** Which backend serves each feature (mount table, changes, statfs, ...) and why. */
  backends: BackendPlan;
  error?: { code: string; message: string };
}

// Spec spellings (listener-register), as in docs/reference/protocol.md.
const commandNames = new Map<number, string>(Object.values(protocol.OPERATIONS).map(({ name, command }) => [command, name]));

function describeFamily(family: FamilyInfo): NonNullable<StatusReport['family']> {
  return {
    name: family.name,
    id: family.id,
    version: family.version,
    operations: family.operations.map(({ id }) => commandNames.get(id) ?? `cmd-${id}`),
    multicastGroups: family.multicastGroups.map(({ name, id }) => ({ name, id })),
  };
}

function describeModule(ping: PingResult): NonNullable<StatusReport['module']> {
  return {
    version: ping.moduleVersion,
    protocolVersion: ping.protocolVersion,
    kernelRelease: ping.kernelRelease,
    features: ping.features,
    featureMask: ping.featureMask,
    featureStatus: ping.featureStatus,
  };
}

function errorCode(error: unknown): string {
  if (error instanceof UsipError || isNetlinkError(error)) return error.code;
  return 'EUNKNOWN';
}

export async function collectStatus(clientVersion: string, backend?: MountBackend): Promise<StatusReport> {
  const client = { version: clientVersion, protocolVersion: protocol.PROTOCOL_VERSION };
  let connection: UsipClient;
  try {
    connection = await UsipClient.connect();
  } catch (error) {
    const backends = chooseBackends(await probeBackends(), backend === undefined ? {} : { backend });
    return { loaded: false, client, backends, error: { code: errorCode(error), message: (error as Error).message } };
  }
  const report: StatusReport = { loaded: true, client, backends: chooseBackends(await probeBackends({ client: connection }), backend === undefined ? {} : { backend }) };
  try {
    report.family = describeFamily(connection.family);
    const ping = await connection.ping();
    report.module = describeModule(ping);
    report.compatible = ping.protocolVersion === protocol.PROTOCOL_VERSION;
    if (!report.compatible) {
      report.error = {
        code: 'USIP_PROTOCOL_MISMATCH',
        message:
          `the usip module speaks protocol ${ping.protocolVersion} but this client speaks ` +
          `${protocol.PROTOCOL_VERSION}: install matching versions of the module and the tools`,
      };
    }
  } catch (error) {
    report.error = { code: errorCode(error), message: (error as Error).message };
  } finally {
    await connection.close();
  }
  return report;
}

/** The backends section: one row per feature, FEATURE BACKEND MECHANISM WHY. */
export function formatBackends(plan: BackendPlan): string {
  const rows = plan.features.map((c) => [FEATURE_TITLES[c.feature], c.backend, c.backend === 'none' ? '-' : c.mechanism, c.reason]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  const head = `backends${plan.forced === undefined ? '' : ` (--backend ${plan.forced})`}, kernel ${plan.kernelRelease}`;
  return [head, ...rows.map((r) => `  ${r.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell)).join('  ')}`.trimEnd())].join('\n') + '\n';
}

export function formatStatus(report: StatusReport): string {
  if (!report.loaded || !report.family) {
    const unavailable = report.backends.features.filter((c) => c.backend === 'none').map((c) => FEATURE_TITLES[c.feature]);
    const title = `usip module is not loaded${unavailable.length > 0 ? `: ${unavailable.join(' and ')} unavailable` : ''}; the rest is served without it`;
    return `${title}\n${formatBackends(report.backends)}`;
  }
  const rows: [string, string][] = [];
  const family = report.family;
  if (report.module) {
    const module = report.module;
    rows.push(['protocol', `${module.protocolVersion} (this client: ${report.client.protocolVersion})`]);
    rows.push(['kernel release', module.kernelRelease]);
    rows.push(['features', module.features.length > 0 ? module.features.join(', ') : 'none']);
    const missing = module.featureStatus.filter((s) => !s.available);
    if (missing.length > 0) {
      rows.push(['unavailable', missing.map((s) => `${s.feature} (${s.reason ?? 'unknown'})`).join(', ')]);
    }
  }
  rows.push(['family', `${family.name}, id ${family.id}, version ${family.version}`]);
  rows.push(['operations', family.operations.join(', ')]);
  rows.push(['multicast groups', family.multicastGroups.map((g) => g.name).join(', ')]);
  const width = Math.max(...rows.map(([key]) => key.length));
  const title = report.module ? `usip module ${report.module.version} is loaded` : 'usip module is loaded';
  return [title, ...rows.map(([key, value]) => `  ${key.padEnd(width)}  ${value}`)].join('\n') + '\n' + formatBackends(report.backends);
}
