package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/pion/dtls/v2"
	"github.com/pion/dtls/v2/pkg/protocol"
	"github.com/pion/dtls/v2/pkg/protocol/recordlayer"
	"github.com/pion/udp" // GOPATH mode: the v1 path holds the v2 module
)

// serve is the pion anchor: pion/dtls's own server (PSK from the same environment) whose
// "CoAP layer" turns each CON into its ACK 2.05 in place, as the bench's null responder does.
func serve(o options) {
	cfg := &dtls.Config{
		PSK: func(identity []byte) ([]byte, error) { return o.psk(string(identity)), nil },
		// No PSKIdentityHint: with one, pion adds a ServerKeyExchange to flight 4, which neither
		// this project's server nor libcoap's sends.
		CipherSuites:         []dtls.CipherSuiteID{dtls.TLS_PSK_WITH_AES_128_CCM_8},
		ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
		ConnectContextMaker:  func() (context.Context, func()) { return context.WithCancel(context.Background()) },
	}
	// dtls.Listen's Accept runs each handshake to its end before the next: one at a time. The
	// same UDP listener with the handshake in a goroutine of its own is how a pion server serves.
	lc := udp.ListenConfig{AcceptFilter: isHandshake}
	ln, err := lc.Listen("udp4", &net.UDPAddr{IP: net.ParseIP(o.host), Port: o.port})
	if err != nil {
		fail(err.Error())
	}
	fmt.Printf("READY %d\n", o.port)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		ln.Close()
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			d, err := dtls.Server(c, cfg)
			if err != nil {
				c.Close()
				return
			}
			answer(d)
		}()
	}
}

// isHandshake: only a datagram that starts with a handshake record opens a new connection (dtls.Listen's filter).
func isHandshake(packet []byte) bool {
	pkts, err := recordlayer.UnpackDatagram(packet)
	if err != nil || len(pkts) < 1 {
		return false
	}
	h := &recordlayer.Header{}
	return h.Unmarshal(pkts[0]) == nil && h.ContentType == protocol.ContentTypeHandshake
}

func answer(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 1500)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if reply := ackInPlace(buf[:n]); reply != nil {
			if _, err := c.Write(reply); err != nil {
				return
			}
		}
	}
}
