// Scraping the agent's metrics over real HTTP (TCP or a unix socket) and reading the samples.
import { request } from 'node:http';

export interface Scrape {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request to a metrics server: `target` is `HOST:PORT` (IPv6 in brackets) or a socket path. */
export function httpRequest(target: string, path = '/metrics', method = 'GET'): Promise<Scrape> {
  const where = target.startsWith('/')
    ? { socketPath: target }
    : { host: target.slice(0, target.lastIndexOf(':')).replace(/^\[|\]$/g, ''), port: Number(target.slice(target.lastIndexOf(':') + 1)) };
  return new Promise((resolve, reject) => {
    const req = request({ ...where, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a text exposition (comments skipped); label values unescaped. */
export function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    }
    out.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return out;
}

/** The value of the sample with this name and these labels (all of them given), or undefined. */
export function value(text: string | Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const all = typeof text === 'string' ? samples(text) : text;
  const want = Object.entries(labels);
  const found = all.filter((s) => s.name === name && Object.keys(s.labels).length === want.length && want.every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`more than one sample ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}
