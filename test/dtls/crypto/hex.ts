/** Hex literals for known-answer tests; whitespace is ignored so vectors can be copied in blocks. */
export function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}
