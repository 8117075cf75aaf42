import { describe, expect, it } from 'vitest';
import { Router } from '../../src/coap/router.js';

describe('Router mounting', () => {
  it('refuses bad patterns and clashing routes at mount time, naming them', () => {
    const router = new Router();
    const noop = () => {};
    expect(() => router.get('devices', noop)).toThrow("must start with '/': devices");
    expect(() => router.get('/a/*/b', noop)).toThrow("'*' may only end a route pattern: /a/*/b");
    expect(() => router.get('/a/:id/:id', noop)).toThrow("parameter ':id'");
    expect(() => router.get('/a//b', noop)).toThrow("bad segment ''");
    router.get('/d/:id', noop);
    expect(() => router.get('/d/:serial', noop)).toThrow('GET /d/:serial: already mounted as /d/:id');
    expect(() => router.get('/whoami', noop)).toThrow('already mounted');
    router.put('/d/:serial', noop); // another method on the same shape is fine
  });

  it('lists one link per path, quoting and escaping attribute values', () => {
    const router = new Router();
    router.get('/s/:id', { rt: ['a.b', 'c'], title: 'say "hi"' }, () => {});
    router.put('/s/:other', { ct: [0, 60] }, () => {});
    router.get('/caf\u00e9', () => {});
    expect(router.linkFormat()).toBe(
      '</whoami>;ct=0,</s/{id}>;rt="a.b c";ct="0 60";title="say \\"hi\\"",</caf%C3%A9>',
    );
    expect(router.linkFormat(new URLSearchParams('href=/s*'))).toBe('</s/{id}>;rt="a.b c";ct="0 60";title="say \\"hi\\""');
    expect(router.linkFormat(new URLSearchParams('rt=c'))).toBe('</s/{id}>;rt="a.b c";ct="0 60";title="say \\"hi\\""');
  });
});
