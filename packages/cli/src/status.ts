import { protocol, UsipClient, UsipError, isNetlinkError, type FamilyInfo, type FeatureStatus, type PingResult } from '@usip/client';

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

export async function collectStatus(clientVersion: string): Promise<StatusReport> {
  const report: StatusReport = {
    loaded: false,
    client: { version: clientVersion, protocolVersion: protocol.PROTOCOL_VERSION },
  };
  let client: UsipClient;
  try {
    client = await UsipClient.connect();
  } catch (error) {
    report.error = { code: errorCode(error), message: (error as Error).message };
    return report;
  }
  try {
    report.loaded = true;
    report.family = describeFamily(client.family);
    const ping = await client.ping();
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
    client.close();
  }
  return report;
}

export function formatStatus(report: StatusReport): string {
  if (!report.loaded || !report.family) return '';
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
  return [title, ...rows.map(([key, value]) => `  ${key.padEnd(width)}  ${value}`)].join('\n') + '\n';
}
