/**
 * The library entry of coap-psk-resolver, for backend teams that embed the server:
 *
 *   import { createServer, Pkcs11Resolver } from 'coap-psk-resolver';
 *
 * Everything exported here is public API; anything reached by a deep import is not.
 */
export { createServer } from './server.js';
export type { CoapOptions, CoapPskServer, CoapPskServerOptions, MetricsOptions } from './server.js';

export { Router } from './coap/router.js';
export type { Handler, LinkAttributes, Method, Middleware, ResponseHook, RouteRequest, RouteResponse, RouterOptions } from './coap/router.js';
export { CoapRequest, CoapResponse } from './coap/exchange.js';
export type { OptionName, OptionValue, SessionAddress } from './coap/exchange.js';
export { CoapEndpoint } from './coap/endpoint.js';
export type { CoapEndpointOptions } from './coap/endpoint.js';
export type { CoapTransport, PeerIdentity } from './coap/transport.js';
export type { CoapOption } from './coap/message.js';
export { OPTION, CONTENT_FORMATS } from './coap/options.js';
export { IdentityPattern } from './coap/identity-map.js';
export type { IdentityParts } from './coap/identity-map.js';

export { Pkcs11Resolver } from './keys/pkcs11.js';
export type { Pkcs11ResolverOptions } from './keys/pkcs11.js';
export { SoftwareResolver } from './keys/software.js';
export type { SoftwareResolverOptions } from './keys/software.js';
export { CachingResolver } from './keys/cache.js';
export type { CacheOptions } from './keys/cache.js';
export { DenyListResolver } from './keys/deny-list.js';
export type { KeyEncoding, KeyResolver, PskCandidate } from './keys/types.js';
export { deriveSoftware, encodePsk } from './keys/derive.js';

/** The same COAP_PSK_* key configuration `coap-psk serve` reads, for embedders that want it. */
export { createResolver, loadKeyConfig, openKeySource } from './config/keys.js';
export type { KeyConfig, Pkcs11KeyConfig, SoftwareKeyConfig } from './config/keys.js';

export { DEFAULT_DTLS_CONFIG } from './dtls/config.js';
export type { DtlsServerConfig } from './dtls/config.js';
export type { HandshakeEvent } from './dtls/server.js';

export { ServerMetrics } from './ops/metrics.js';
export type { HealthResult } from './ops/health.js';
export { createLogger, silentLogger } from './log.js';
export type { Logger } from './log.js';
export { UserError } from './errors.js';
