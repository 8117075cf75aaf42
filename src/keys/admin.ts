/**
 * Token administration shared by `coap-psk hsm ...`, the dev token and the test helper.
 * Master keys are created private, sensitive, non-extractable and encrypt-only: the token
 * can derive device keys with them but never hands them out, and cannot be used to decrypt.
 */
import { UserError } from '../errors.js';
import { BLOCK_SIZE } from './derive.js';
import {
  P11, type Handle, type PKCS11, encryptBlockSync, findSecretKey, openSession, safely, tokenLabelOf,
} from './p11.js';

export function masterKeyTemplate(label: string): { type: number; value: number | boolean | string }[] {
  return [
    { type: P11.CKA_CLASS, value: P11.CKO_SECRET_KEY },
    { type: P11.CKA_KEY_TYPE, value: P11.CKK_AES },
    { type: P11.CKA_LABEL, value: label },
    { type: P11.CKA_TOKEN, value: true },
    { type: P11.CKA_PRIVATE, value: true },
    { type: P11.CKA_SENSITIVE, value: true },
    { type: P11.CKA_EXTRACTABLE, value: false },
    { type: P11.CKA_ENCRYPT, value: true },
    { type: P11.CKA_DECRYPT, value: false },
    { type: P11.CKA_WRAP, value: false },
    { type: P11.CKA_UNWRAP, value: false },
    { type: P11.CKA_SIGN, value: false },
    { type: P11.CKA_VERIFY, value: false },
    { type: P11.CKA_DERIVE, value: false },
  ];
}

function refuseDuplicate(p11: PKCS11, session: Handle, label: string): void {
  if (findSecretKey(p11, session, label)) throw new UserError(`PKCS#11 key already exists: label ${label}`);
}

/** Imports a known 16-byte AES key. The caller's buffer is left alone; pkcs11js copies it. */
export function importAesKey(p11: PKCS11, session: Handle, label: string, key: Buffer): Handle {
  if (key.length !== BLOCK_SIZE) throw new UserError('master key must be 16 bytes (32 hex digits)');
  refuseDuplicate(p11, session, label);
  return p11.C_CreateObject(session, [...masterKeyTemplate(label), { type: P11.CKA_VALUE, value: key }]);
}

export function generateAesKey(p11: PKCS11, session: Handle, label: string): Handle {
  refuseDuplicate(p11, session, label);
  const template = masterKeyTemplate(label).filter((a) => a.type !== P11.CKA_CLASS && a.type !== P11.CKA_KEY_TYPE);
  return p11.C_GenerateKey(session, { mechanism: P11.CKM_AES_KEY_GEN }, [...template, { type: P11.CKA_VALUE_LEN, value: BLOCK_SIZE }]);
}

/**
 * Key check value through the token: CBC with a zero IV over one zero block equals ECB,
 * and works on tokens that offer CKM_AES_CBC only (SmartCard-HSM).
 */
export function kcv(p11: PKCS11, session: Handle, key: Handle): string {
  return encryptBlockSync(p11, session, key, Buffer.alloc(BLOCK_SIZE)).subarray(0, 3).toString('hex');
}

export interface KeyAttributes {
  keyType: number;
  valueLen: number;
  token: boolean;
  private: boolean;
  sensitive: boolean;
  extractable: boolean;
  encrypt: boolean;
  decrypt: boolean;
}

export function keyAttributes(p11: PKCS11, session: Handle, key: Handle): KeyAttributes {
  const types = [
    P11.CKA_KEY_TYPE, P11.CKA_VALUE_LEN, P11.CKA_TOKEN, P11.CKA_PRIVATE,
    P11.CKA_SENSITIVE, P11.CKA_EXTRACTABLE, P11.CKA_ENCRYPT, P11.CKA_DECRYPT,
  ];
  const values = new Map<number, Buffer>();
  for (const type of types) {
    // One attribute per call: a token that refuses one attribute must not hide the others.
    try {
      const [attr] = p11.C_GetAttributeValue(session, key, [{ type }]);
      if (attr) values.set(type, attr.value);
    } catch {
      /* unavailable attribute */
    }
  }
  const bool = (t: number): boolean => (values.get(t)?.[0] ?? 0) !== 0;
  const ulong = (t: number): number => {
    const v = values.get(t);
    return v && v.length >= 4 ? v.readUInt32LE(0) : -1;
  };
  return {
    keyType: ulong(P11.CKA_KEY_TYPE),
    valueLen: ulong(P11.CKA_VALUE_LEN),
    token: bool(P11.CKA_TOKEN),
    private: bool(P11.CKA_PRIVATE),
    sensitive: bool(P11.CKA_SENSITIVE),
    extractable: bool(P11.CKA_EXTRACTABLE),
    encrypt: bool(P11.CKA_ENCRYPT),
    decrypt: bool(P11.CKA_DECRYPT),
  };
}

/** The first slot whose token is not initialized yet (SoftHSM always keeps one free). */
export function findFreeSlot(p11: PKCS11): Handle | undefined {
  for (const slot of p11.C_GetSlotList(true)) {
    if ((p11.C_GetTokenInfo(slot).flags & P11.CKF_TOKEN_INITIALIZED) === 0) return slot;
  }
  return undefined;
}

/**
 * Initializes a new token with an SO PIN and a user PIN, through the API so that neither PIN
 * reaches a command line. Returns the slot the token ended up in (SoftHSM renumbers slots).
 */
export function initToken(p11: PKCS11, label: string, soPin: string, userPin: string): Handle {
  const free = findFreeSlot(p11);
  if (!free) throw new UserError('PKCS#11 module has no free slot for a new token');
  p11.C_InitToken(free, soPin, label);
  const slot = p11.C_GetSlotList(true).find((s) => {
    try {
      return tokenLabelOf(p11, s) === label;
    } catch {
      return false;
    }
  });
  if (!slot) throw new UserError(`PKCS#11 token not found after initialization: label ${label}`);
  const session = openSession(p11, slot, true);
  try {
    p11.C_Login(session, P11.CKU_SO, soPin);
    p11.C_InitPIN(session, userPin);
    safely(() => p11.C_Logout(session));
  } finally {
    safely(() => p11.C_CloseSession(session));
  }
  return slot;
}
