/**
 * node-coap's client (an independent CoAP implementation) against the plain-UDP stand-in of the
 * CoAP engine (udp-endpoint.ts): one agent per client socket, so each is its own "session".
 */
import type dgram from 'node:dgram';
import coap from 'coap';
import type { IncomingMessage } from 'coap';
import { clientSocket, LOOPBACK, type UdpEndpoint } from './udp-endpoint.js';

export interface NodeCoapClient {
  sock: dgram.Socket;
  agent: coap.Agent;
  port: number;
}

export async function nodeCoapClient(endpoint: UdpEndpoint, identity: string): Promise<NodeCoapClient> {
  const sock = await clientSocket();
  const port = sock.address().port;
  endpoint.accept(port, identity);
  return { sock, agent: new coap.Agent({ socket: sock }), port };
}

export function nodeCoapRequest(
  client: NodeCoapClient,
  endpoint: UdpEndpoint,
  pathname: string,
  opts: { method?: string; query?: string; payload?: Buffer; confirmable?: boolean; options?: Record<string, Buffer | string | number> } = {},
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no response to ${pathname} within 5 s`)), 5000);
    const req = coap.request({
      hostname: LOOPBACK,
      port: endpoint.port,
      pathname,
      query: opts.query,
      method: (opts.method ?? 'GET') as 'GET',
      agent: client.agent,
      confirmable: opts.confirmable ?? true,
      options: opts.options as never,
    });
    req.on('response', (res: IncomingMessage) => {
      clearTimeout(timer);
      resolve(res);
    });
    req.on('error', (err: Error) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(opts.payload);
  });
}
