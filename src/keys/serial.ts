/**
 * What counts as a serial, the same for the factory (`coap-psk derive`) and the server (the
 * PSK identity it will ask the HSM about): a device can only hold a key that derive printed,
 * so an identity derive refuses is one no device has a key for.
 *
 *   refused: empty or blank, longer than MAX_IDENTITY_BYTES, not valid UTF-8 (also overlong
 *            forms such as C0 AF), or holding a control character (C0, DEL, C1): such a serial
 *            cannot be printed back unambiguously, so its key could not be mapped to a device;
 *   warned:  leading or trailing white space, and text not in Unicode NFC: both are valid, and
 *            derived over exactly their bytes ("SN2 " and "SN2" have different keys, as have
 *            the NFC and NFD forms of "Gerät"), but they are usually a mistake in a list.
 */

/** RFC 4279 section 5.3: identities up to 128 bytes must be supported. */
export const MAX_IDENTITY_BYTES = 128;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// C0 controls, DEL and C1 controls. Tab is a C0 control too: a serial never holds one.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;

/** The serial as text, or undefined when its bytes are not valid UTF-8. */
export function decodeSerial(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Why these bytes cannot be a serial, or undefined when they can. */
export function serialProblem(bytes: Uint8Array): string | undefined {
  if (bytes.length > MAX_IDENTITY_BYTES) return `serial longer than ${MAX_IDENTITY_BYTES} bytes`;
  const text = decodeSerial(bytes);
  if (text === undefined) return 'serial is not valid UTF-8';
  if (text.trim() === '') return 'blank serial';
  const control = CONTROL.exec(text);
  if (control) return `serial holds control character U+${control[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  return undefined;
}

/** Doubts about a valid serial: derived as given, but worth a word to the operator. */
export function serialWarnings(text: string): string[] {
  const out: string[] = [];
  if (/^\s|\s$/u.test(text)) out.push('leading or trailing white space is part of the serial');
  if (text.normalize('NFC') !== text) out.push('not in Unicode NFC: derived over these bytes, which differ from the NFC form');
  return out;
}
