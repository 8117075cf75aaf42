/**
 * The Kubernetes manifests of deploy/kubernetes against the Kubernetes API schemas, offline:
 * kubernetes-models ships the OpenAPI schemas of every built-in kind as compiled validators
 * (types, required fields, enums, formats). It does not report fields that the schemas do not
 * know (as kubeconform without -strict); the API server's strict field validation, kubectl's
 * default, does that at apply time. Kustomizations are checked for files that exist.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { BIN } from '../helpers/server-process.js';

const DEPLOY = resolve(fileURLToPath(new URL('../../deploy/kubernetes', import.meta.url)));

interface Manifest { apiVersion?: string; kind?: string; metadata?: { name?: string }; [k: string]: unknown }
type ModelClass = new (data: unknown) => { validate(): void };

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return yamlFiles(path);
    return name.endsWith('.yaml') ? [path] : [];
  });
}

function documents(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0].message}`);
    return doc.toJS() as Manifest;
  });
}

/** The kubernetes-models class for an apiVersion and kind: `apps/v1` → kubernetes-models/apps/v1. */
async function modelFor(apiVersion: string, kind: string): Promise<ModelClass | undefined> {
  const mod = (await import(`kubernetes-models/${apiVersion}`).catch(() => ({}))) as Record<string, unknown>;
  return mod[kind] as ModelClass | undefined;
}

/** Validates one object; the validator's message, or undefined when it is valid. */
async function schemaError(manifest: Manifest): Promise<string | undefined> {
  const Model = await modelFor(manifest.apiVersion ?? '', manifest.kind ?? '');
  if (!Model) return `no schema for ${manifest.apiVersion} ${manifest.kind}`;
  try {
    new Model(manifest).validate();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

const printConfig = (args: string[], env: NodeJS.ProcessEnv) => promisify(execFile)(process.execPath, [BIN, ...args, '--print-config'], { env });

const files = yamlFiles(DEPLOY);
const all = files.flatMap((file) => documents(file).map((m) => ({ file: relative(DEPLOY, file), dir: dirname(file), m })));

describe('deploy/kubernetes', () => {
  it('has the objects issue 15 names', () => {
    const kinds = all.filter((d) => !d.file.startsWith('lab/')).map((d) => `${d.m.kind}/${d.m.metadata?.name ?? ''}`);
    expect(kinds).toEqual(expect.arrayContaining([
      'StatefulSet/coap-psk', 'Service/coap-psk-nodes', 'Service/coap-psk', 'Secret/coap-psk-pin', 'PodDisruptionBudget/coap-psk',
    ]));
    const lb = all.find((d) => d.m.kind === 'Service' && d.m.metadata?.name === 'coap-psk')!.m as { spec: { type: string; ports: { protocol: string }[] } };
    expect(lb.spec.type).toBe('LoadBalancer');
    expect(lb.spec.ports.every((p) => p.protocol === 'UDP')).toBe(true);
    const nodes = all.find((d) => d.m.metadata?.name === 'coap-psk-nodes')!.m as { spec: { clusterIP: string } };
    expect(nodes.spec.clusterIP).toBe('None');
  });

  it.each(all.filter((d) => d.m.kind !== 'Kustomization').map((d) => [`${d.file}: ${d.m.kind}/${d.m.metadata?.name}`, d.m] as const))(
    '%s validates against the Kubernetes schema',
    async (_name, manifest) => {
      expect(await schemaError(manifest)).toBeUndefined();
    },
  );

  it.each(all.filter((d) => d.m.kind === 'Kustomization').map((d) => [d.file, d] as const))('%s lists resources that exist', (_name, d) => {
    for (const res of (d.m.resources as string[]) ?? []) {
      const path = join(d.dir, res);
      const target = statSync(path, { throwIfNoEntry: false });
      expect(target, `${d.file}: ${res}`).toBeDefined();
      if (target!.isDirectory()) expect(statSync(join(path, 'kustomization.yaml'), { throwIfNoEntry: false }), res).toBeDefined();
      // `kubectl apply -k` must not overwrite a real Secret with a placeholder of the repository.
      else expect(documents(path).map((m) => m.kind), res).not.toContain('Secret');
    }
  });

  it('probes the server on /healthz of the metrics port, and mounts the PIN from the Secret as a file', () => {
    for (const d of all.filter((x) => x.m.kind === 'StatefulSet')) {
      const spec = (d.m as { spec: { template: { spec: { containers: { name: string; env: { name: string; value: string }[]; volumeMounts: { name: string; mountPath: string }[]; readinessProbe: { httpGet: { path: string; port: string } }; livenessProbe: { httpGet: { path: string } } }[]; volumes: { name: string; secret?: { secretName: string } }[] } } } }).spec.template.spec;
      const server = spec.containers.find((c) => c.name === 'coap-psk')!;
      expect(server.readinessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
      expect(server.livenessProbe.httpGet.path).toBe('/healthz');
      const env = Object.fromEntries(server.env.map((e) => [e.name, e.value]));
      expect(env.COAP_PSK_METRICS_PORT).toBe('9464');
      expect(env.COAP_PSK_METRICS_HOST).toBe('0.0.0.0'); // the kubelet probes the pod's address
      expect(env.COAP_PSK_PIN).toBeUndefined();
      const pinVolume = spec.volumes.find((v) => v.secret?.secretName === 'coap-psk-pin')!;
      const mount = server.volumeMounts.find((m) => m.name === pinVolume.name)!;
      expect(env.COAP_PSK_PIN_FILE).toBe(`${mount.mountPath}/pin`);
    }
  });

  it.each(all.filter((d) => d.m.kind === 'StatefulSet').map((d) => [d.file, d.m] as const))(
    "%s: the server's own configuration schema takes the container's settings (coap-psk serve --print-config)",
    async (_name, manifest) => {
      const server = (manifest as { spec: { template: { spec: { containers: { name: string; args: string[]; env: { name: string; value: string }[] }[] } } } })
        .spec.template.spec.containers.find((c) => c.name === 'coap-psk')!;
      const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...Object.fromEntries(server.env.map((e) => [e.name, e.value])) };
      const { stdout } = await printConfig(server.args, env);
      const config = JSON.parse(stdout) as { metrics: { port: number; host: string }; keys: { pinFile: string }; cluster: Record<string, unknown> };
      expect(config.metrics).toMatchObject({ port: 9464, host: '0.0.0.0' });
      expect(config.keys.pinFile).toBe(env.COAP_PSK_PIN_FILE);
      // CID forwarding: the cluster port, peers from the headless Service, the key from its Secret.
      expect(config.cluster).toMatchObject({ port: 5685, dns: 'coap-psk-nodes', keyFile: env.COAP_PSK_CLUSTER_KEY_FILE, backward: true });
      // The same check refuses a bad value, with the one line that names it.
      const bad = await printConfig(server.args, { ...env, COAP_PSK_METRICS_PORT: '99999' }).catch((e: { stderr: string }) => e);
      expect(bad.stderr).toMatch(/^coap-psk: config metrics\.port \(COAP_PSK_METRICS_PORT\)/);
    },
  );

  it('the validator refuses a broken manifest (so that the checks above can fail)', async () => {
    const sts = structuredClone(all.find((d) => d.m.kind === 'StatefulSet')!.m) as { spec: Record<string, unknown> };
    sts.spec.replicas = 'three';
    expect(await schemaError(sts as Manifest)).toMatch(/replicas must be integer/);
    const svc = structuredClone(all.find((d) => d.m.kind === 'Service' && d.m.metadata?.name === 'coap-psk')!.m) as { spec: { ports: { protocol: string }[] } };
    svc.spec.ports[0].protocol = 'UPD';
    expect(await schemaError(svc as unknown as Manifest)).toMatch(/protocol must be equal to one of the allowed values/);
  });
});
