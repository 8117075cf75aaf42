/**
 * A reader of the Prometheus text exposition format (0.0.4,
 * https://prometheus.io/docs/instrumenting/exposition_formats/), written from that page and not
 * from the server's metrics code, so a test reads /metrics as a scraper would.
 *
 * A line is a comment (`#`, HELP and TYPE among them), blank, or a sample:
 * `name[{label="value",...}] value [timestamp]`, label values escaping `\\`, `\"` and `\n`.
 * A line that is none of these throws, naming it: a test should see a broken exposition.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const ESCAPES: Record<string, string> = { '\\': '\\', '"': '"', n: '\n' };

/** Every sample of an exposition, in the order of its lines. */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const s = parseSample(trimmed);
    if (s === undefined) throw new Error(`not a Prometheus sample line: ${JSON.stringify(line)}`);
    samples.push(s);
  }
  return samples;
}

/**
 * The value of the first sample named `name` whose labels include every one of `labels`
 * (others may be there too), or undefined when there is none. A name that is no metric name
 * (a series written out, `x{a="b"}`) throws: it would match nothing and read as absent.
 */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  if (!new RegExp(`${METRIC_NAME.source}$`).test(name)) throw new Error(`not a metric name: ${name}`);
  const wanted = Object.entries(labels);
  return parseExposition(text).find((s) => s.name === name && wanted.every(([k, v]) => s.labels[k] === v))?.value;
}

function parseSample(line: string): Sample | undefined {
  const name = METRIC_NAME.exec(line)?.[0];
  if (name === undefined) return undefined;
  const labels: Record<string, string> = {};
  let i = skipBlanks(line, name.length);
  if (line[i] === '{') {
    i = readLabels(line, i + 1, labels);
    if (i < 0) return undefined;
  }
  const fields = line.slice(i).trim().split(/[ \t]+/);
  if (fields.length > 2 || (fields.length === 2 && !/^-?\d+$/.test(fields[1]!))) return undefined;
  const value = parseValue(fields[0]!);
  return value === undefined ? undefined : { name, labels, value };
}

/** Reads `label="value",...}` from `start` into `labels`; the index after the `}`, or -1. */
function readLabels(line: string, start: number, labels: Record<string, string>): number {
  let i = skipBlanks(line, start);
  while (line[i] !== '}') {
    const key = LABEL_NAME.exec(line.slice(i))?.[0];
    if (key === undefined || Object.hasOwn(labels, key)) return -1;
    i = skipBlanks(line, i + key.length);
    if (line[i] !== '=') return -1;
    i = skipBlanks(line, i + 1);
    if (line[i] !== '"') return -1;
    let value = '';
    for (i++; line[i] !== '"'; i++) {
      if (i >= line.length) return -1;
      if (line[i] !== '\\') {
        value += line[i];
        continue;
      }
      const escaped = ESCAPES[line[++i] ?? ''];
      if (escaped === undefined) return -1;
      value += escaped;
    }
    labels[key] = value;
    i = skipBlanks(line, i + 1);
    if (line[i] === ',') i = skipBlanks(line, i + 1);
    else if (line[i] !== '}') return -1;
  }
  return i + 1;
}

/** A float as Go's ParseFloat reads it here: decimal or exponent notation, NaN, +Inf, -Inf. */
function parseValue(s: string): number | undefined {
  if (/^[+-]?inf$/i.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  if (/^nan$/i.test(s)) return NaN;
  return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(s) ? Number(s) : undefined;
}

function skipBlanks(line: string, i: number): number {
  while (line[i] === ' ' || line[i] === '\t') i++;
  return i;
}
