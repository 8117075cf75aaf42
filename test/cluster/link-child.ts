/**
 * One node's cluster port in a network namespace: a ForwardLink on 0.0.0.0:LINK_PORT, driven by
 * JSON lines on stdin (see json-child.ts). Settings in the environment (test keys only):
 * LINK_NODE_ID, LINK_KEY_HEX, LINK_PORT, LINK_DISCOVER (JSON list of {address, port}).
 *
 *   {"seq":1,"op":"forward","to":1,"payloadHex":"…","device":{"address":"…","port":…}}   → {"seq":1,"sent":true}
 *   {"seq":2,"op":"stats"}   → {"seq":2,"peers":{"1":"10.155.1.2:5685"},"refused":{"unauthentic":2}}
 * Events: {"event":"forward"|"backward","senderNode":…,"device":…,"payloadHex":…}, {"event":"peer-up","nodeId":…}
 */
import dgram from 'node:dgram';
import { createInterface } from 'node:readline';
import { ForwardLink } from '../../src/cluster/forward-link.js';
import type { ForwardMessage } from '../../src/cluster/forward-wire.js';

const LIFE_MS = 60_000;
const port = Number(process.env.LINK_PORT);
const discover = JSON.parse(process.env.LINK_DISCOVER ?? '[]') as { address: string; port: number }[];
const socket = dgram.createSocket('udp4');
await new Promise<void>((ready) => socket.bind(port, '0.0.0.0', ready));
const link = new ForwardLink({
  nodeId: Number(process.env.LINK_NODE_ID),
  clusterKey: Buffer.from(process.env.LINK_KEY_HEX ?? '', 'hex'),
  socket,
  discover: async () => discover,
  helloIntervalMs: 200,
});
const out = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);
const report = (event: string) => (m: ForwardMessage) =>
  out({ event, senderNode: m.senderNode, device: m.device, payloadHex: m.payload.toString('hex') });
link.on('forward', report('forward'));
link.on('backward', report('backward'));
link.on('peer-up', (nodeId: number) => out({ event: 'peer-up', nodeId }));
link.start();

const life = setTimeout(() => process.exit(2), LIFE_MS);
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const cmd = JSON.parse(line) as { seq: number; op: string; to: number; payloadHex: string; device: { address: string; port: number } };
  if (cmd.op === 'forward' || cmd.op === 'backward') {
    const sent = link[cmd.op](cmd.to, Buffer.from(cmd.payloadHex, 'hex'), cmd.device);
    return out({ seq: cmd.seq, sent });
  }
  const peers: Record<string, string> = {};
  for (let id = 0; id <= 1023; id++) {
    const p = link.peer(id);
    if (p) peers[id] = `${p.address}:${p.port}`;
  }
  out({ seq: cmd.seq, peers, refused: Object.fromEntries(link.refused) });
});
lines.on('close', () => {
  link.close();
  socket.close();
  clearTimeout(life);
});
