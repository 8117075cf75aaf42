/**
 * A Prometheus histogram with one label of a fixed set of values, observed with plain array
 * writes: no label object, no hashing, no lookup per observation, which prom-client's Histogram
 * does on every observe (see CONTRIBUTING's pitfalls for the measured cost). It registers in a
 * prom-client Registry like any metric; the exposition (`_bucket{le}` cumulative, `_sum`,
 * `_count`) is built at scrape time.
 */
import type { Registry } from 'prom-client';

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

export class PlainHistogram<V extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** Non-cumulative counts: [value index][bucket index], the last bucket being +Inf. */
  private counts: Float64Array;
  private sums: Float64Array;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly label: string,
    private readonly values: readonly V[],
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    this.counts = new Float64Array(values.length * (buckets.length + 1));
    this.sums = new Float64Array(values.length);
    registry.registerMetric(this as never);
  }

  /** Index of a label value, for observe(); resolve it once, not per observation. */
  index(value: V): number {
    const i = this.values.indexOf(value);
    if (i < 0) throw new RangeError(`${this.name}: no ${this.label} "${value}"`);
    return i;
  }

  observe(valueIndex: number, v: number): void {
    let b = 0;
    while (b < this.buckets.length && v > this.buckets[b]!) b++;
    this.counts[valueIndex * (this.buckets.length + 1) + b]!++;
    this.sums[valueIndex]! += v;
  }

  reset(): void {
    this.counts.fill(0);
    this.sums.fill(0);
  }

  /** prom-client's MetricObject shape, which Registry.metrics() formats. */
  get(): { name: string; help: string; type: string; aggregator: string; values: Sample[] } {
    const values: Sample[] = [];
    const width = this.buckets.length + 1;
    this.values.forEach((lv, i) => {
      let acc = 0;
      for (let b = 0; b < width; b++) {
        acc += this.counts[i * width + b]!;
        const le = b < this.buckets.length ? this.buckets[b]! : '+Inf';
        values.push({ labels: { le, [this.label]: lv }, value: acc, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { [this.label]: lv }, value: this.sums[i]!, metricName: `${this.name}_sum` });
      values.push({ labels: { [this.label]: lv }, value: acc, metricName: `${this.name}_count` });
    });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
