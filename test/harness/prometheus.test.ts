/**
 * The tests' reader of the Prometheus text format (test/helpers/prometheus.ts), on an exposition
 * written by hand from https://prometheus.io/docs/instrumenting/exposition_formats/: HELP and
 * TYPE lines, escaped label values, a histogram's buckets, special values, a timestamp.
 */
import { describe, expect, it } from 'vitest';
import { parseExposition, sample } from '../helpers/prometheus.js';

const TEXT = [
  '# HELP http_requests_total The total number of HTTP requests, a \\\\ and a \\n in help.',
  '# TYPE http_requests_total counter',
  'http_requests_total{method="post",code="200"} 1027 1395066363000',
  'http_requests_total{method="post",code="400"}    3 1395066363000',
  '',
  '# A comment of no kind.',
  'msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9',
  'metric_without_timestamp_and_labels 12.47',
  'something_weird{problem="division by zero"} +Inf -3982045',
  'not_a_number NaN',
  'spaced { a = "1" , b="2", } -0.5',
  '# HELP rpc_duration_seconds_x A histogram of the RPC duration in seconds.',
  '# TYPE rpc_duration_seconds_x histogram',
  'rpc_duration_seconds_x_bucket{le="0.05"} 24054',
  'rpc_duration_seconds_x_bucket{le="0.1"} 33444',
  'rpc_duration_seconds_x_bucket{le="+Inf"} 144320',
  'rpc_duration_seconds_x_sum 53423',
  'rpc_duration_seconds_x_count 144320',
  '',
].join('\n');

describe('the Prometheus text reader', () => {
  it('reads every sample line, with its labels unescaped, and skips HELP, TYPE, comments and blank lines', () => {
    const samples = parseExposition(TEXT);
    expect(samples).toHaveLength(12);
    expect(samples[0]).toEqual({ name: 'http_requests_total', labels: { method: 'post', code: '200' }, value: 1027 });
    expect(samples[2]).toEqual({
      name: 'msdos_file_access_time_seconds',
      labels: { path: 'C:\\DIR\\FILE.TXT', error: 'Cannot find file:\n"FILE.TXT"' },
      value: 1458255915,
    });
    expect(samples[6]).toEqual({ name: 'spaced', labels: { a: '1', b: '2' }, value: -0.5 });
  });

  it('looks a sample up by name and some or all of its labels', () => {
    expect(sample(TEXT, 'http_requests_total', { method: 'post', code: '400' })).toBe(3);
    expect(sample(TEXT, 'http_requests_total', { code: '400' })).toBe(3);
    expect(sample(TEXT, 'http_requests_total')).toBe(1027);
    expect(sample(TEXT, 'http_requests_total', { code: '500' })).toBeUndefined();
    expect(sample(TEXT, 'http_requests')).toBeUndefined();
    expect(sample(TEXT, 'metric_without_timestamp_and_labels')).toBe(12.47);
    expect(sample(TEXT, 'msdos_file_access_time_seconds', { error: 'Cannot find file:\n"FILE.TXT"' })).toBe(1458255915);
    expect(() => sample(TEXT, 'http_requests_total{code="400"}')).toThrow('not a metric name');
  });

  it("reads a histogram's buckets by le, +Inf included, and its _sum and _count", () => {
    expect(sample(TEXT, 'rpc_duration_seconds_x_bucket', { le: '0.05' })).toBe(24054);
    expect(sample(TEXT, 'rpc_duration_seconds_x_bucket', { le: '0.1' })).toBe(33444);
    expect(sample(TEXT, 'rpc_duration_seconds_x_bucket', { le: '+Inf' })).toBe(144320);
    expect(sample(TEXT, 'rpc_duration_seconds_x_sum')).toBe(53423);
    expect(sample(TEXT, 'rpc_duration_seconds_x_count')).toBe(144320);
  });

  it('reads +Inf and NaN as numbers', () => {
    expect(sample(TEXT, 'something_weird')).toBe(Infinity);
    expect(sample(TEXT, 'not_a_number')).toBeNaN();
  });

  it('throws on a line that is not a sample, naming it', () => {
    for (const bad of ['x{a="1"', 'x{a="1} 2', 'x{a=1} 2', 'x{a="\\q"} 2', 'x{a="1",a="2"} 2', 'x 1 2.5', 'x one', 'x', '{a="1"} 2', 'x 1 2 3']) {
      expect(() => parseExposition(`ok 1\n${bad}\n`), bad).toThrow(`not a Prometheus sample line: ${JSON.stringify(bad)}`);
    }
  });
});
