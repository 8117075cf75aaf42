/**
 * PlainHistogram's exposition through a real prom-client Registry, against values worked out by
 * hand from the Prometheus text format: cumulative `le` buckets ending in +Inf, _sum, _count,
 * every label value present.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { PlainHistogram } from '../../src/ops/plain-histogram.js';

describe('PlainHistogram', () => {
  it('exposes cumulative buckets, sum and count per label value', async () => {
    const registry = new Registry();
    const h = new PlainHistogram('t_seconds', 'test', 'result', ['ok', 'failed'], [0.01, 0.1], registry);
    const ok = h.index('ok');
    for (const v of [0.003, 0.01, 0.02, 50]) h.observe(ok, v);
    h.observe(h.index('failed'), 0.5);
    const text = await registry.metrics();
    expect(text).toContain('# TYPE t_seconds histogram');
    // 0.01 is in the le="0.01" bucket: Prometheus buckets are "less than or equal".
    expect(text).toContain('t_seconds_bucket{le="0.01",result="ok"} 2');
    expect(text).toContain('t_seconds_bucket{le="0.1",result="ok"} 3');
    expect(text).toContain('t_seconds_bucket{le="+Inf",result="ok"} 4');
    expect(text).toContain('t_seconds_sum{result="ok"} 50.033');
    expect(text).toContain('t_seconds_count{result="ok"} 4');
    expect(text).toContain('t_seconds_bucket{le="0.1",result="failed"} 0');
    expect(text).toContain('t_seconds_count{result="failed"} 1');
  });

  it('refuses a label value it was not given', () => {
    const h = new PlainHistogram('u_seconds', 'test', 'result', ['ok'], [1], new Registry());
    expect(() => h.index('nope' as 'ok')).toThrow(RangeError);
  });
});
