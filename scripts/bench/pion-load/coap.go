package main

import "encoding/binary"

// coapGet is a CON GET with a 1-byte token and one Uri-Path segment (RFC 7252 section 3),
// the request scripts/bench/load.ts sends.
func coapGet(mid uint16, path string) []byte {
	b := []byte{0x41, 0x01, 0, 0, 0x5a, byte(11<<4 | len(path))}
	binary.BigEndian.PutUint16(b[2:], mid)
	return append(b, path...)
}

// isAckFor reports whether a datagram is the ACK of the request with this Message ID.
func isAckFor(d []byte, mid uint16) bool {
	return len(d) >= 4 && d[0]>>4&3 == 2 && binary.BigEndian.Uint16(d[2:]) == mid
}

// ackInPlace turns a CON into its ACK 2.05 Content, header and token kept (the null responder's answer).
func ackInPlace(req []byte) []byte {
	if len(req) < 4 || req[0]>>4&3 != 0 {
		return nil
	}
	tkl := int(req[0] & 0x0f)
	if len(req) < 4+tkl {
		return nil
	}
	reply := append([]byte(nil), req[:4+tkl]...)
	reply[0] = 0x60 | byte(tkl)
	reply[1] = 0x45
	return reply
}
