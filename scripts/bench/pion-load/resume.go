package main

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/pion/dtls/v2"
)

// oneSession is a client SessionStore that holds one session: pion keys a client's sessions by
// the server's address, the same for every simulated device, so each device has a store of its own.
type oneSession struct {
	mu sync.Mutex
	s  dtls.Session
}

func (o *oneSession) Set(_ []byte, s dtls.Session) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.s = dtls.Session{ID: append([]byte(nil), s.ID...), Secret: append([]byte(nil), s.Secret...)}
	return nil
}

func (o *oneSession) Get([]byte) (dtls.Session, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.s, nil
}

func (o *oneSession) Del([]byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.s = dtls.Session{}
	return nil
}

// runResumptions: the handshake pattern of runHandshakes, each one resuming by session ID (RFC
// 5246 7.3; pion v2 has no tickets). Before the window, each of -concurrency devices makes one
// full handshake that its store keeps; in the window it reconnects from a fresh socket and
// source address, offers that session, sends one CON GET and closes. A handshake counts when
// its GET is answered and it kept the stored master secret (it resumed); one that got a full
// handshake instead counts in NotResumed.
func runResumptions(o options) {
	stores := make([]*oneSession, o.concurrency)
	for w := range stores {
		stores[w] = &oneSession{}
		c, err := handshakeWith(o, fmt.Sprintf("%sR%d", o.prefix, w), stores[w])
		if err != nil {
			fail(fmt.Sprintf("first full handshake: %v", err))
		}
		c.Close()
		if len(stores[w].s.ID) == 0 {
			fail("the server issued no session ID: nothing to resume")
		}
	}
	emit(wakeAndReport(o, func(device int) (*dtls.Conn, bool, error) {
		store := stores[device]
		offered, _ := store.Get(nil)
		c, err := handshakeWith(o, fmt.Sprintf("%sR%d", o.prefix, device), store)
		if err != nil {
			return nil, false, err
		}
		now, _ := store.Get(nil)
		// Resumed if and only if the session kept the master secret it offered.
		return c, bytes.Equal(offered.Secret, now.Secret), nil
	}))
}
