package main

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v2"
)

var sourceCounter uint32

// nextSource is a loopback source address of its own for each simulated device (127.2.0.1 to
// 127.2.255.254 in turn): devices have their own addresses, and a per-source rate limit on the
// server would otherwise be what the bench measures.
func nextSource() *net.UDPAddr {
	n := atomic.AddUint32(&sourceCounter, 1)%65534 + 1
	return &net.UDPAddr{IP: net.IPv4(127, 2, byte(n>>8), byte(n)), Port: 0}
}

// handshake dials a fresh socket and completes a full PSK handshake as `serial`
// (TLS_PSK_WITH_AES_128_CCM_8 with extended master secret, as the project's generator).
func handshake(o options, serial string) (*dtls.Conn, error) {
	return handshakeWith(o, serial, nil)
}

// handshakeWith is handshake with a SessionStore: a session stored there is offered for
// resumption, and a new one is stored (resume.go).
func handshakeWith(o options, serial string, store dtls.SessionStore) (*dtls.Conn, error) {
	raddr := &net.UDPAddr{IP: net.ParseIP(o.host), Port: o.port}
	udp, err := net.DialUDP("udp4", nextSource(), raddr)
	if err != nil {
		return nil, err
	}
	key := o.psk(serial)
	cfg := &dtls.Config{
		PSK:                  func([]byte) ([]byte, error) { return key, nil },
		PSKIdentityHint:      []byte(serial),
		CipherSuites:         []dtls.CipherSuiteID{dtls.TLS_PSK_WITH_AES_128_CCM_8},
		ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
		FlightInterval:       500 * time.Millisecond,
	}
	if store != nil {
		cfg.SessionStore = store
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dtls.ClientWithContext(ctx, udp, cfg)
	if err != nil {
		udp.Close()
		return nil, err
	}
	return c, nil
}

// get sends one CON GET and waits (at most `wait`) for its ACK.
func get(c *dtls.Conn, path string, mid uint16, buf []byte, wait time.Duration) bool {
	if _, err := c.Write(coapGet(mid, path)); err != nil {
		return false
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		_ = c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		if err != nil {
			return false
		}
		if isAckFor(buf[:n], mid) {
			return true
		}
	}
	return false
}

type latencies struct {
	mu sync.Mutex
	ms []float64
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.ms = append(l.ms, float64(d.Microseconds())/1000)
	l.mu.Unlock()
}

func (l *latencies) pct(q float64) float64 {
	if len(l.ms) == 0 {
		return 0
	}
	sort.Float64s(l.ms)
	i := int(q * float64(len(l.ms)))
	if i >= len(l.ms) {
		i = len(l.ms) - 1
	}
	return l.ms[i]
}

func finish(r Result, start time.Time, cpu0 float64, lat *latencies) Result {
	r.Seconds = time.Since(start).Seconds()
	r.PerSecond = float64(r.Ok) / r.Seconds
	r.GenCPU = (cpuSeconds() - cpu0) / r.Seconds
	if lat != nil {
		r.P50, r.P99 = lat.pct(0.5), lat.pct(0.99)
	}
	return r
}

// runHandshakes: the pattern of a device that wakes, reports and sleeps: fresh socket, full
// handshake, one CON GET, close_notify. Counted when the GET is answered.
func runHandshakes(o options) {
	var n int64
	emit(wakeAndReport(o, func(int) (*dtls.Conn, bool, error) {
		c, err := handshake(o, fmt.Sprintf("%s%d", o.prefix, atomic.AddInt64(&n, 1)))
		return c, true, err
	}))
}

// wakeAndReport runs -concurrency devices for -seconds, each in a loop: connect(device) (a
// handshake on a fresh socket; false when it was not the kind measured), one CON GET, close.
// A handshake of the wrong kind counts in NotResumed, not in Ok.
func wakeAndReport(o options, connect func(device int) (*dtls.Conn, bool, error)) Result {
	windowOpens()
	start, cpu0 := time.Now(), cpuSeconds()
	deadline := start.Add(time.Duration(o.seconds * float64(time.Second)))
	var ok, failed, wrongKind int64
	lat := &latencies{}
	var wg sync.WaitGroup
	for w := 0; w < o.concurrency; w++ {
		wg.Add(1)
		go func(device int) {
			defer wg.Done()
			buf := make([]byte, 1500)
			for i := 0; time.Now().Before(deadline) && i < 1_000_000; i++ {
				t0 := time.Now()
				c, measured, err := connect(device)
				if err != nil {
					atomic.AddInt64(&failed, 1)
					continue
				}
				if !measured {
					atomic.AddInt64(&wrongKind, 1)
				} else if get(c, o.path, uint16(rand.Intn(0x10000)), buf, time.Second) {
					atomic.AddInt64(&ok, 1)
					lat.add(time.Since(t0))
				} else {
					atomic.AddInt64(&failed, 1)
				}
				c.Close() // close_notify, then the socket
			}
		}(w)
	}
	wg.Wait()
	return finish(Result{Ok: int(ok), Failed: int(failed), NotResumed: int(wrongKind)}, start, cpu0, lat)
}

// establish opens `count` sessions, `concurrency` handshakes at a time, within `bound`.
func establish(o options, count int, bound time.Duration) ([]*dtls.Conn, int) {
	deadline := time.Now().Add(bound)
	var n, failed int64
	var mu sync.Mutex
	conns := make([]*dtls.Conn, 0, count)
	var wg sync.WaitGroup
	for w := 0; w < o.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := atomic.AddInt64(&n, 1)
				if i > int64(count) {
					return
				}
				c, err := handshake(o, fmt.Sprintf("%s%d", o.prefix, i))
				if err != nil {
					atomic.AddInt64(&failed, 1)
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return conns, int(failed)
}

func closeAll(conns []*dtls.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// runRequests: CON GETs over established sessions, closed loop, -outstanding in flight in
// total and one per session at a time (CoAP's NSTART = 1). A request unanswered within 1 s is lost.
func runRequests(o options) {
	conns, _ := establish(o, o.sessions, o.timeout)
	windowOpens()
	start, cpu0 := time.Now(), cpuSeconds()
	deadline := start.Add(time.Duration(o.seconds * float64(time.Second)))
	tokens := make(chan struct{}, o.outstanding)
	var ok, lost int64
	lat := &latencies{}
	permits := pace(o.rate, deadline)
	stopProgress := progress(o.progressEvery, deadline, &ok, &lost)
	defer stopProgress()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func(c *dtls.Conn) {
			defer wg.Done()
			buf := make([]byte, 1500)
			mid := uint16(rand.Intn(0x10000))
			for time.Now().Before(deadline) {
				select {
				case tokens <- struct{}{}:
				case <-time.After(time.Until(deadline)):
					return
				}
				if permits != nil {
					select {
					case <-permits:
					case <-time.After(time.Until(deadline)):
						<-tokens
						return
					}
				}
				mid++
				t0 := time.Now()
				if get(c, o.path, mid, buf, time.Second) {
					atomic.AddInt64(&ok, 1)
					lat.add(time.Since(t0))
				} else {
					atomic.AddInt64(&lost, 1)
				}
				<-tokens
			}
		}(c)
	}
	wg.Wait()
	r := finish(Result{Ok: int(ok), Lost: int(lost)}, start, cpu0, lat)
	r.Sessions = len(conns)
	emit(r)
	closeAll(conns)
}

// runStorm: every device reconnects at once (after a server restart): -count distinct serials
// as fast as they handshake; Seconds is the time until the last is connected.
func runStorm(o options) {
	windowOpens()
	start, cpu0 := time.Now(), cpuSeconds()
	conns, failed := establish(o, o.count, o.timeout)
	emit(finish(Result{Ok: len(conns), Failed: failed}, start, cpu0, nil))
	closeAll(conns)
}

// pace returns a channel that hands out `rate` permits per second until `deadline` (nil for
// no cap): every 10 ms the share of the time elapsed since the last tick is offered (a Ticker
// drops ticks when its reader is late, and counting ticks would then fall short of the rate),
// and permits not taken within it are dropped, so a slow server is not sent a burst afterwards.
func pace(rate float64, deadline time.Time) <-chan struct{} {
	if rate <= 0 {
		return nil
	}
	const tick = 10 * time.Millisecond
	permits := make(chan struct{}, int(rate/100)+1)
	go func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		owed := 0.0
		last := time.Now()
		for now := range t.C {
			if now.After(deadline) {
				return
			}
			owed += rate * now.Sub(last).Seconds()
			last = now
			for ; owed >= 1; owed-- {
				select {
				case permits <- struct{}{}:
				default:
					owed = 0
				}
			}
		}
	}()
	return permits
}

// progress prints `PROGRESS {"seconds":..,"ok":..,"lost":..}` every `every` until `deadline`
// (nothing for 0): the soak phase reads the rate reached beside the server's RSS.
func progress(every time.Duration, deadline time.Time, ok, lost *int64) func() {
	if every <= 0 {
		return func() {}
	}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				if now.After(deadline) {
					return
				}
				fmt.Printf("PROGRESS {\"seconds\":%.1f,\"ok\":%d,\"lost\":%d}\n", now.Sub(start).Seconds(), atomic.LoadInt64(ok), atomic.LoadInt64(lost))
			}
		}
	}()
	return func() { close(done) }
}
