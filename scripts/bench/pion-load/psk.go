package main

import (
	"crypto/aes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"os"
)

// pskFromEnv reads the key material (never from argv: secrets stay off command lines).
func pskFromEnv() (func(serial string) []byte, error) {
	if h := os.Getenv("BENCH_STATIC_PSK_HEX"); h != "" {
		key, err := hex.DecodeString(h)
		if err != nil || len(key) == 0 {
			return nil, errors.New("BENCH_STATIC_PSK_HEX is not hex")
		}
		return func(string) []byte { return key }, nil
	}
	master, err := hex.DecodeString(os.Getenv("BENCH_MASTER_HEX"))
	if err != nil || len(master) != aes.BlockSize {
		return nil, errors.New("BENCH_MASTER_HEX must be 16 bytes of hex (or set BENCH_STATIC_PSK_HEX)")
	}
	block, err := aes.NewCipher(master)
	if err != nil {
		return nil, err
	}
	// One AES block with a zero IV: CBC and ECB agree (src/keys/derive.ts).
	return func(serial string) []byte {
		digest := md5.Sum([]byte(serial))
		out := make([]byte, aes.BlockSize)
		block.Encrypt(out, digest[:])
		return out
	}, nil
}
