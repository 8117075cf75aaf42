// A DTLS 1.2 PSK test client on Debian's pion/dtls v2 (golang-github-pion-dtls.v2-dev), for the
// resumption interop tests: pion resumes by session ID through a SessionStore (no tickets).
// Built by test/helpers/pion-resume-client.ts into a temp dir; never committed built.
//
//	pion-resume-client HOST PORT
//
// From the environment (the key never reaches argv): PSK_IDENTITY, PSK_KEY_HEX (required),
// COAP_REQUEST_HEX (sent after each handshake; the reply or "none" is printed), RESUME=id
// (reconnect once from a new source port, offering the stored session), CIPHER=ccm8|ccm|gcm|cbc
// (default ccm8), TIMEOUT_MS (default 2000).
//
// Output, one line per event, the same as the mbedTLS client's:
//
//	handshake N: ok suite=NAME ticket=no session_id=HEX
//	handshake N: failed MESSAGE
//	reply N: HEX | reply N: none
//	resumed: yes|no offered=id
package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/pion/dtls/v2"
)

// memoryStore is the client's SessionStore: pion keys client sessions by server name or address.
type memoryStore struct {
	mu       sync.Mutex
	sessions map[string]dtls.Session
}

func (s *memoryStore) Set(key []byte, v dtls.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[string(key)] = dtls.Session{ID: append([]byte(nil), v.ID...), Secret: append([]byte(nil), v.Secret...)}
	return nil
}

func (s *memoryStore) Get(key []byte) (dtls.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[string(key)], nil
}

func (s *memoryStore) Del(key []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, string(key))
	return nil
}

func (s *memoryStore) only() dtls.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.sessions {
		return v
	}
	return dtls.Session{}
}

var suites = map[string]dtls.CipherSuiteID{
	"ccm8": dtls.TLS_PSK_WITH_AES_128_CCM_8,
	"ccm":  dtls.TLS_PSK_WITH_AES_128_CCM,
	"gcm":  dtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
	"cbc":  dtls.TLS_PSK_WITH_AES_128_CBC_SHA256,
}

func runOnce(n int, addr *net.UDPAddr, cfg *dtls.Config, store *memoryStore, req []byte, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := dtls.DialWithContext(ctx, "udp", addr, cfg)
	if err != nil {
		fmt.Printf("handshake %d: failed %v\n", n, err)
		return false
	}
	defer conn.Close()
	fmt.Printf("handshake %d: ok suite=%s ticket=no session_id=%x\n", n, cfg.CipherSuites[0].String(), store.only().ID)
	if len(req) > 0 {
		if _, err := conn.Write(req); err != nil {
			fmt.Printf("reply %d: none\n", n)
			return true
		}
		buf := make([]byte, 2048)
		_ = conn.SetReadDeadline(time.Now().Add(timeout))
		if m, err := conn.Read(buf); err == nil {
			fmt.Printf("reply %d: %x\n", n, buf[:m])
		} else {
			fmt.Printf("reply %d: none\n", n)
		}
	}
	return true
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: pion-resume-client HOST PORT (PSK_IDENTITY, PSK_KEY_HEX, ... in the environment)")
		os.Exit(2)
	}
	identity, keyHex := os.Getenv("PSK_IDENTITY"), os.Getenv("PSK_KEY_HEX")
	key, err := hex.DecodeString(keyHex)
	if identity == "" || err != nil || len(key) == 0 {
		fmt.Fprintln(os.Stderr, "PSK_IDENTITY and PSK_KEY_HEX (hex) are required")
		os.Exit(2)
	}
	req, err := hex.DecodeString(os.Getenv("COAP_REQUEST_HEX"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "COAP_REQUEST_HEX is not hex")
		os.Exit(2)
	}
	suiteName := os.Getenv("CIPHER")
	if suiteName == "" {
		suiteName = "ccm8"
	}
	suite, ok := suites[suiteName]
	if !ok {
		fmt.Fprintln(os.Stderr, "CIPHER must be ccm8, ccm, gcm or cbc")
		os.Exit(2)
	}
	timeoutMs, _ := strconv.Atoi(os.Getenv("TIMEOUT_MS"))
	if timeoutMs < 100 {
		timeoutMs = 2000
	}
	timeout := time.Duration(timeoutMs) * time.Millisecond
	port, err := strconv.Atoi(os.Args[2])
	ip := net.ParseIP(os.Args[1])
	if err != nil || ip == nil {
		fmt.Fprintln(os.Stderr, "HOST must be an IP address and PORT a number")
		os.Exit(2)
	}
	addr := &net.UDPAddr{IP: ip, Port: port}
	store := &memoryStore{sessions: map[string]dtls.Session{}}
	cfg := &dtls.Config{
		PSK:                  func([]byte) ([]byte, error) { return key, nil },
		PSKIdentityHint:      []byte(identity), // pion sends this as the client's psk_identity
		CipherSuites:         []dtls.CipherSuiteID{suite},
		ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
		SessionStore:         store,
	}
	if !runOnce(1, addr, cfg, store, req, timeout) {
		os.Exit(1)
	}
	if os.Getenv("RESUME") != "id" {
		return
	}
	first := store.only()
	if !runOnce(2, addr, cfg, store, req, timeout) {
		os.Exit(1)
	}
	// Resumed if and only if the second session kept the first one's master secret.
	resumed := len(first.Secret) > 0 && bytes.Equal(first.Secret, store.only().Secret)
	if resumed {
		fmt.Println("resumed: yes offered=id")
	} else {
		fmt.Println("resumed: no offered=id")
	}
}
