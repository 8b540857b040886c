import type { InjectOptions, TypedAction, UsipClient } from '@usip/client';
import { toJson } from './common.js';

/** The options of `usip inject`, as commander parsed them (type and action are checked apart). */
export interface InjectCommandOptions {
  mountId?: number;
  parentId?: number;
  path?: string;
  fsType?: string;
  source?: string;
  dev?: number;
  count?: number;
  repeat?: number;
  json?: boolean;
}

export async function inject(client: UsipClient, event: TypedAction, options: InjectCommandOptions): Promise<void> {
  const { json, ...fields } = options;
  const request: Record<string, unknown> = { ...event };
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) request[key] = value;
  const result = await client.inject(request as InjectOptions);
  if (json) {
    process.stdout.write(`${toJson(result, 2)}\n`);
    return;
  }
  const times = options.repeat === undefined ? '' : ` x ${options.repeat}`;
  process.stdout.write(
    `injected ${event.type}/${event.action}${times}: seq ${result.seq}, queued ${result.queued}, dropped ${result.dropped}\n`,
  );
}
