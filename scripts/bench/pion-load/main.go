// Command pion-load is the bench's independent load generator: DTLS 1.2 PSK clients on
// pion/dtls v2 (Debian's golang-github-pion-dtls.v2-dev), so that the bench's figures do not
// rest on the project's own client alone. With -phase serve it is also the pion anchor: a
// pion/dtls server with a trivial CoAP responder.
//
// Key material comes from the environment, never argv:
//
//	BENCH_MASTER_HEX      psk(serial) = AES-128-ECB(master, MD5(serial)), the project's derivation
//	BENCH_STATIC_PSK_HEX  one PSK for every serial (libcoap's -k, the null responder)
//
// Phases (-phase):
//
//	handshakes  for -seconds, -concurrency at a time: a fresh socket, a full handshake with a new
//	            serial, one CON GET, its ACK, close_notify
//	requests    -sessions sessions, then CON GETs for -seconds, -outstanding in flight in total,
//	            at most one per session, at most -rate per second if given; -progress D prints
//	            a PROGRESS line every D (the soak phase)
//	resumptions the handshakes pattern, each handshake resuming by session ID a session its
//	            device made before the window (resume.go)
//	storm       -count distinct serials as fast as they handshake, -concurrency at a time; the
//	            time until all are connected (sessions stay open until then)
//	serve       a pion server on -port answering every CON with ACK 2.05, until SIGTERM
//
// Prints `START` on stdout when the measured window opens (after the requests phase's sessions
// are up) and one JSON line (Result) when it closes, before any session is closed: the bench
// reads the server's CPU time at those two lines. Every loop is bounded by a count and a deadline.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// Result is what every client phase prints, in the field names of scripts/bench/load.ts.
type Result struct {
	Ok        int     `json:"ok"`
	Failed    int     `json:"failed"`
	Lost      int     `json:"lost"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"perSecond"`
	P50       float64 `json:"p50"`
	P99       float64 `json:"p99"`
	GenCPU    float64 `json:"genCpu"`
	Sessions  int     `json:"sessions,omitempty"`
	// NotResumed: resumptions phase, handshakes the server answered with a full one.
	NotResumed int `json:"notResumed,omitempty"`
}

type options struct {
	host, prefix, path    string
	port                  int
	seconds               float64
	concurrency, sessions int
	outstanding, count    int
	rate                  float64
	progressEvery         time.Duration
	timeout               time.Duration
	psk                   func(serial string) []byte
}

func main() {
	var o options
	phase := flag.String("phase", "", "handshakes | resumptions | requests | storm | serve")
	flag.StringVar(&o.host, "host", "127.0.0.1", "server address (loopback only)")
	flag.IntVar(&o.port, "port", 0, "server port")
	flag.Float64Var(&o.seconds, "seconds", 3, "measured window (handshakes, requests)")
	flag.IntVar(&o.concurrency, "concurrency", 16, "handshakes in flight")
	flag.IntVar(&o.sessions, "sessions", 200, "sessions for the requests phase")
	flag.IntVar(&o.outstanding, "outstanding", 32, "requests in flight over all sessions")
	flag.Float64Var(&o.rate, "rate", 0, "requests phase: at most this many requests/s in total (0: closed loop, no cap)")
	flag.DurationVar(&o.progressEvery, "progress", 0, "requests phase: a PROGRESS line this often (0: none)")
	flag.IntVar(&o.count, "count", 10000, "distinct serials in the storm")
	flag.StringVar(&o.prefix, "prefix", "P-", "serial prefix")
	flag.StringVar(&o.path, "path", "whoami", "Uri-Path of the GET (one segment)")
	flag.DurationVar(&o.timeout, "timeout", 120*time.Second, "bound on the whole phase beyond -seconds")
	flag.Parse()
	if !strings.HasPrefix(o.host, "127.") {
		fail("-host must be a loopback address")
	}
	psk, err := pskFromEnv()
	if err != nil {
		fail(err.Error())
	}
	o.psk = psk
	switch *phase {
	case "handshakes":
		runHandshakes(o)
	case "resumptions":
		runResumptions(o)
	case "requests":
		runRequests(o)
	case "storm":
		runStorm(o)
	case "serve":
		serve(o)
	default:
		fail("-phase must be handshakes, resumptions, requests, storm or serve")
	}
}

// windowOpens and emit mark the measured window on stdout (os.Stdout is unbuffered).
func windowOpens() { fmt.Println("START") }

func emit(r Result) {
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

func fail(msg string) {
	fmt.Fprintf(os.Stderr, "pion-load: %s\n", msg)
	os.Exit(2)
}

// cpuSeconds is this process's user+system time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
