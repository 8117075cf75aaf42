// pion-client: a DTLS 1.2 PSK client built on pion/dtls (Debian's golang-github-pion-dtls.v2-dev),
// for the interop tests of coap-psk-resolver. It runs one handshake, optionally sends one CoAP
// GET or one raw payload, prints what came back, and exits.
//
// The key never goes on the command line: it is read as hex from the environment variable named
// by -key-env (default PION_PSK_HEX) or, with -key-stdin, from the first line of stdin.
//
// Output (stdout, one line each, key=value fields):
//
//	handshake ok suite=0xc0a8
//	reply code=2.05 payload=SN-1            (after -get)
//	reply bytes=<hex>                       (after -raw)
//
// Errors go to stderr and exit with status 1. Flags are defined in one table (flags below) so
// that more can be added (session resumption, a second request) without touching the rest.
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/pion/dtls/v2"
)

type options struct {
	addr     string
	identity string
	keyEnv   string
	keyStdin bool
	mtu      int
	suite    string
	get      string
	raw      string
	timeout  time.Duration
}

var suites = map[string]dtls.CipherSuiteID{
	"TLS_PSK_WITH_AES_128_CCM_8":            dtls.TLS_PSK_WITH_AES_128_CCM_8,
	"TLS_PSK_WITH_AES_128_CCM":              dtls.TLS_PSK_WITH_AES_128_CCM,
	"TLS_PSK_WITH_AES_128_GCM_SHA256":       dtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
	"TLS_PSK_WITH_AES_128_CBC_SHA256":       dtls.TLS_PSK_WITH_AES_128_CBC_SHA256,
	"TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256": dtls.TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256,
}

func flags() *options {
	o := &options{}
	flag.StringVar(&o.addr, "addr", "127.0.0.1:5684", "server host:port")
	flag.StringVar(&o.identity, "identity", "", "PSK identity (the device serial)")
	flag.StringVar(&o.keyEnv, "key-env", "PION_PSK_HEX", "environment variable holding the PSK as hex")
	flag.BoolVar(&o.keyStdin, "key-stdin", false, "read the PSK as hex from the first line of stdin instead")
	flag.IntVar(&o.mtu, "mtu", 1200, "DTLS MTU (pion fragments handshake messages to fit)")
	flag.StringVar(&o.suite, "suite", "TLS_PSK_WITH_AES_128_CCM_8", "cipher suite by IANA name")
	flag.StringVar(&o.get, "get", "", "send a CoAP CON GET for this path (e.g. whoami) and print the reply")
	flag.StringVar(&o.raw, "raw", "", "send these bytes (hex) as one application record and print the reply")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "handshake and reply timeout")
	flag.Parse()
	return o
}

func readKey(o *options) ([]byte, error) {
	var text string
	if o.keyStdin {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return nil, fmt.Errorf("no key on stdin")
		}
		text = line
	} else {
		text = os.Getenv(o.keyEnv)
	}
	key, err := hex.DecodeString(strings.TrimSpace(text))
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("the PSK (from %s) is not hex", map[bool]string{true: "stdin", false: o.keyEnv}[o.keyStdin])
	}
	return key, nil
}

// coapGet is a CoAP CON GET (RFC 7252 section 3) with one Uri-Path option per path segment.
func coapGet(path string) []byte {
	msg := []byte{0x41, 0x01, 0x12, 0x34, 0x7a} // ver 1, CON, TKL 1; GET; MID 0x1234; token 0x7a
	prev := 0
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		if seg == "" {
			continue
		}
		delta := 11 - prev // Uri-Path
		prev = 11
		n := len(seg)
		if n < 13 {
			msg = append(msg, byte(delta<<4|n))
		} else {
			msg = append(msg, byte(delta<<4|13), byte(n-13))
		}
		msg = append(msg, seg...)
	}
	return msg
}

// coapReply is the code (class.detail) and payload of a CoAP message.
func coapReply(b []byte) (string, string, error) {
	if len(b) < 4 {
		return "", "", errors.New("short CoAP message")
	}
	code := fmt.Sprintf("%d.%02d", b[1]>>5, b[1]&0x1f)
	if i := strings.IndexByte(string(b[4+int(b[0]&0x0f):]), 0xff); i >= 0 {
		return code, string(b[4+int(b[0]&0x0f)+i+1:]), nil
	}
	return code, "", nil
}

func run(o *options) error {
	suite, ok := suites[o.suite]
	if !ok {
		return fmt.Errorf("unknown suite %s", o.suite)
	}
	key, err := readKey(o)
	if err != nil {
		return err
	}
	raddr, err := net.ResolveUDPAddr("udp", o.addr)
	if err != nil {
		return err
	}
	config := &dtls.Config{
		PSK:                  func([]byte) ([]byte, error) { return key, nil },
		PSKIdentityHint:      []byte(o.identity), // pion sends this as the client's psk_identity
		CipherSuites:         []dtls.CipherSuiteID{suite},
		ExtendedMasterSecret: dtls.RequestExtendedMasterSecret,
		MTU:                  o.mtu,
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	conn, err := dtls.DialWithContext(ctx, "udp", raddr, config)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	defer conn.Close()
	fmt.Printf("handshake ok suite=0x%04x\n", uint16(suite))
	var out []byte
	switch {
	case o.get != "":
		out = coapGet(o.get)
	case o.raw != "":
		if out, err = hex.DecodeString(o.raw); err != nil {
			return fmt.Errorf("-raw is not hex")
		}
	default:
		return nil
	}
	if _, err := conn.Write(out); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(o.timeout))
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	if err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	if o.get != "" {
		code, payload, err := coapReply(buf[:n])
		if err != nil {
			return err
		}
		fmt.Printf("reply code=%s payload=%s\n", code, payload)
	} else {
		fmt.Printf("reply bytes=%s\n", hex.EncodeToString(buf[:n]))
	}
	return nil
}

func main() {
	if err := run(flags()); err != nil {
		fmt.Fprintln(os.Stderr, "pion-client:", err)
		os.Exit(1)
	}
}
