// Real Linux network namespaces for the zone tests: a "host" namespace (where hearth runs) with a
// bridge, and one namespace per VLAN with a veth pair onto that bridge. Everything lives inside
// namespaces this module creates, so deleting them removes every interface, address and route.
// Needs root and iproute2: requireNetnsSupport() fails loudly (never skips) without them.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The address range the tests use: unusual, private, and checked to be unused on this machine. */
export const LAB_RANGE = '10.231.';
export const LAB_RANGE6 = 'fd31:231:';

/** Throws (the test fails) when the tests cannot run here, naming what is missing. */
export function requireNetnsSupport(): void {
  if (process.platform !== 'linux') {
    throw new Error('the network-zone tests need Linux network namespaces; run them on Linux (CI does)');
  }
  if (process.getuid?.() !== 0) {
    throw new Error(
      'the network-zone tests need root (they create network namespaces); CI runs as root: run them as root',
    );
  }
  const ip = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (ip.error || ip.status !== 0) {
    throw new Error(
      'the network-zone tests need iproute2 (`ip`), which is missing: install it (Debian: apt-get install iproute2); ' +
        'scripts/ensure-test-deps.sh installs it before `npm test` when run as root',
    );
  }
  const used = spawnSync('ip', ['-o', 'addr'], { encoding: 'utf8' }).stdout ?? '';
  const routes = `${spawnSync('ip', ['route'], { encoding: 'utf8' }).stdout ?? ''}${spawnSync('ip', ['-6', 'route'], { encoding: 'utf8' }).stdout ?? ''}`;
  if (
    used.includes(` ${LAB_RANGE}`) ||
    used.includes(` ${LAB_RANGE6}`) ||
    routes.includes(LAB_RANGE) ||
    routes.includes(LAB_RANGE6)
  ) {
    throw new Error(
      `this machine already uses ${LAB_RANGE}0.0/16 or ${LAB_RANGE6}:/32, which the network-zone tests need for their own namespaces; refusing to run`,
    );
  }
}

/** Runs `ip` with arguments; throws with its stderr on failure. */
export function ip(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { encoding: 'utf8', timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ip ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** One VLAN: a namespace with one interface (eth0) on the host's bridge. */
export interface VlanSpec {
  /** Short name, used in the namespace name. */
  name: string;
  /** Third octet: the VLAN is 10.231.<octet>.0/24 (and fd31:231:<octet>::/64). */
  octet: number;
}

export interface NetnsLab {
  /** The namespace hearth runs in. */
  host: string;
  /** VLAN name → namespace name. */
  vlans: Record<string, string>;
  /** The host's address on a VLAN (the listener addresses): 10.231.<octet>.1. */
  hostAddress(vlan: string, family?: 4 | 6): string;
  /** A client's address on a VLAN: 10.231.<octet>.10. */
  clientAddress(vlan: string, family?: 4 | 6): string;
  /** Removes every namespace (and so every interface in it). Idempotent. */
  destroy(): Promise<void>;
}

const PREFIX = 'hnz';

/** Removes namespaces of earlier runs whose process is gone (a crashed run skipped its cleanup). */
export async function removeStaleNamespaces(): Promise<string[]> {
  const removed: string[] = [];
  const list = await ip(['netns', 'list']);
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const match = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
    if (!match) continue;
    if (isAlive(Number(match[1]))) continue; // another run, still going
    await ip(['netns', 'del', name]).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Builds the lab: the host namespace with bridge br0 carrying 10.231.<octet>.1/24 and
 * fd31:231:<octet>::1/64 for every VLAN, and per VLAN a namespace whose eth0 has .10 and ::10,
 * routed via the host. Namespaces are named hnz<pid>-<name>, so concurrent runs never collide.
 */
export async function createNetnsLab(vlans: readonly VlanSpec[]): Promise<NetnsLab> {
  const tag = `${PREFIX}${process.pid}-`;
  const host = `${tag}host`;
  const made: string[] = [];
  const octets = new Map(vlans.map((v) => [v.name, v.octet]));
  const octet = (vlan: string) => {
    const found = octets.get(vlan);
    if (found === undefined) throw new Error(`no VLAN ${vlan} in this lab`);
    return found;
  };
  const lab: NetnsLab = {
    host,
    vlans: {},
    hostAddress: (vlan, family = 4) =>
      family === 4 ? `${LAB_RANGE}${octet(vlan)}.1` : `${LAB_RANGE6}${octet(vlan)}::1`,
    clientAddress: (vlan, family = 4) =>
      family === 4 ? `${LAB_RANGE}${octet(vlan)}.10` : `${LAB_RANGE6}${octet(vlan)}::10`,
    destroy: async () => {
      process.removeListener('exit', onExit);
      for (const ns of made.splice(0).reverse()) await ip(['netns', 'del', ns]).catch(() => undefined);
    },
  };
  // The test process going away without afterAll (a crash, a kill): remove the namespaces anyway.
  const onExit = () => {
    for (const ns of made.splice(0).reverse()) spawnSync('ip', ['netns', 'del', ns]);
  };
  process.once('exit', onExit);
  try {
    await ip(['netns', 'add', host]);
    made.push(host);
    await ip(['-n', host, 'link', 'set', 'lo', 'up']);
    await ip(['-n', host, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', host, 'link', 'set', 'br0', 'up']);
    for (const vlan of vlans) {
      const ns = `${tag}${vlan.name}`;
      await ip(['netns', 'add', ns]);
      made.push(ns);
      lab.vlans[vlan.name] = ns;
      const port = `v-${vlan.name}`.slice(0, 15);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', host, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await ip(['-n', host, 'link', 'set', port, 'master', 'br0']);
      await ip(['-n', host, 'link', 'set', port, 'up']);
      await ip(['-n', host, 'addr', 'add', `${lab.hostAddress(vlan.name)}/24`, 'dev', 'br0']);
      await ip(['-n', host, 'addr', 'add', `${lab.hostAddress(vlan.name, 6)}/64`, 'dev', 'br0', 'nodad']);
      await ip(['-n', ns, 'addr', 'add', `${lab.clientAddress(vlan.name)}/24`, 'dev', 'eth0']);
      await ip(['-n', ns, 'addr', 'add', `${lab.clientAddress(vlan.name, 6)}/64`, 'dev', 'eth0', 'nodad']);
      await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      await ip(['-n', ns, 'route', 'add', 'default', 'via', lab.hostAddress(vlan.name)]);
      await ip(['-n', ns, '-6', 'route', 'add', 'default', 'via', lab.hostAddress(vlan.name, 6)]);
    }
  } catch (err) {
    await lab.destroy();
    throw err;
  }
  return lab;
}

/** One HTTP/1.1 request sent over a raw socket, so a dropped connection is told apart from any HTTP answer. */
export interface RawRequest {
  host: string;
  port: number;
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface RawOutcome {
  /** The TCP handshake completed (the kernel does that before hearth sees the connection). */
  connected: boolean;
  /** Bytes received before the connection ended. */
  received: number;
  /** The HTTP status, when an answer came. */
  status?: number;
  /** The parsed JSON body, when an answer came. */
  body?: unknown;
  /** `ECONNRESET`, `timeout`, ... */
  error?: string;
}

// Runs inside a namespace: sends each request on its own connection and prints the outcomes as JSON.
const CLIENT = `
import { connect } from 'node:net';
const requests = JSON.parse(process.argv[2]);
const one = (r) => new Promise((resolve) => {
  let connected = false, data = Buffer.alloc(0), done = false;
  const finish = (error) => {
    if (done) return; done = true;
    const text = data.toString();
    const out = { connected, received: data.length };
    const m = /^HTTP\\/1\\.1 (\\d{3})/.exec(text);
    if (m) {
      out.status = Number(m[1]);
      const body = text.slice(text.indexOf('\\r\\n\\r\\n') + 4);
      try { out.body = JSON.parse(body); } catch { out.body = body; }
    }
    if (error) out.error = error;
    resolve(out);
  };
  const socket = connect({ host: r.host, port: r.port });
  socket.setTimeout(5000, () => { finish('timeout'); socket.destroy(); });
  socket.on('connect', () => {
    connected = true;
    const body = r.body === undefined ? '' : JSON.stringify(r.body);
    const headers = { host: r.host.includes(':') ? '[' + r.host + ']:' + r.port : r.host + ':' + r.port, connection: 'close', ...(r.headers ?? {}) };
    if (body) { headers['content-type'] = 'application/json'; headers['content-length'] = String(Buffer.byteLength(body)); }
    socket.write((r.method ?? 'GET') + ' ' + r.path + ' HTTP/1.1\\r\\n' + Object.entries(headers).map(([k, v]) => k + ': ' + v).join('\\r\\n') + '\\r\\n\\r\\n' + body);
  });
  socket.on('data', (chunk) => { data = Buffer.concat([data, chunk]); });
  socket.on('error', (err) => finish(err.code ?? err.message));
  socket.on('close', () => finish());
});
const results = [];
for (const r of requests) results.push(await one(r));
process.stdout.write(JSON.stringify(results));
`;

/** Writes the client script into `dir` (once per test file). */
export async function writeRawClient(dir: string): Promise<string> {
  const path = join(dir, 'raw-client.mjs');
  await writeFile(path, CLIENT);
  return path;
}

/** Sends the requests from inside namespace `ns`, in order, each on a new connection. */
export function requestsFrom<const R extends readonly RawRequest[]>(
  ns: string,
  client: string,
  requests: R,
): Promise<{ -readonly [K in keyof R]: RawOutcome }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, client, JSON.stringify(requests)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`client in ${ns} exited with ${code}: ${stderr}`));
      else resolve(JSON.parse(stdout) as { -readonly [K in keyof R]: RawOutcome });
    });
  });
}
