// Command ttrpcbench measures containerd's own Go ttrpc (Debian's golang-github-containerd-ttrpc-dev) beside
// Shimmer's, for benchmarks/run-ttrpc.
//
//	ttrpcbench server -socket PATH
//	    serves shimmer.bench.Echo/Echo (answers the StringValue it gets); prints "ready" once listening and
//	    stops on SIGTERM or SIGINT.
//	ttrpcbench client -socket PATH -call state|echo [-id ID] [-namespace NS] [-inflight N] [-warmup D] [-duration D]
//	    keeps N calls in flight on one connection, first for the warm-up, then for the measurement; prints
//	    "measuring" as the measurement starts (so the caller can sample the server's CPU time) and at its end
//	    "calls=C seconds=S cpu_ns=T": T is this process's user+system CPU time (getrusage) over the measurement.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/ttrpc"
)

const (
	echoService = "shimmer.bench.Echo"
	taskService = "containerd.task.v2.Task"
	// containerd's namespaces package sends the namespace under this key on every ttrpc call.
	namespaceKey = "containerd-namespace-ttrpc"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: ttrpcbench server|client [flags]")
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = serve(os.Args[2:])
	case "client":
		err = client(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q: want server or client", os.Args[1])
	}
	if err != nil {
		fail(err.Error())
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "ttrpcbench:", message)
	os.Exit(2)
}

func serve(args []string) error {
	flags := flag.NewFlagSet("server", flag.ExitOnError)
	socket := flags.String("socket", "", "unix socket to serve on")
	flags.Parse(args)
	if *socket == "" {
		return fmt.Errorf("server: -socket is required")
	}
	server, err := ttrpc.NewServer()
	if err != nil {
		return err
	}
	server.Register(echoService, map[string]ttrpc.Method{
		"Echo": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var request StringValue
			if err := unmarshal(&request); err != nil {
				return nil, err
			}
			return &request, nil
		},
	})
	listener, err := net.Listen("unix", *socket)
	if err != nil {
		return err
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- server.Serve(context.Background(), listener) }()
	fmt.Println("ready")
	select {
	case <-stop:
		server.Close()
		os.Remove(*socket)
		return nil
	case err := <-served:
		return err
	}
}

func client(args []string) error {
	flags := flag.NewFlagSet("client", flag.ExitOnError)
	socket := flags.String("socket", "", "unix socket of the server")
	call := flags.String("call", "echo", "echo (shimmer.bench.Echo/Echo) or state (containerd.task.v2.Task/State)")
	id := flags.String("id", "", "the container id, for state")
	namespace := flags.String("namespace", "", "containerd namespace sent as metadata, if any")
	inFlight := flags.Int("inflight", 1, "calls in flight")
	warmup := flags.Duration("warmup", 2*time.Second, "warm-up time")
	duration := flags.Duration("duration", 5*time.Second, "measured time")
	flags.Parse(args)
	if *socket == "" || *inFlight < 1 {
		return fmt.Errorf("client: -socket and a positive -inflight are required")
	}
	conn, err := net.Dial("unix", *socket)
	if err != nil {
		return err
	}
	c := ttrpc.NewClient(conn)
	defer c.Close()

	ctx := context.Background()
	if *namespace != "" {
		ctx = ttrpc.WithMetadata(ctx, ttrpc.MD{namespaceKey: []string{*namespace}})
	}
	var once func() error
	switch *call {
	case "echo":
		request := &StringValue{Value: strings.Repeat("x", 100)}
		once = func() error {
			var response StringValue
			return c.Call(ctx, echoService, "Echo", request, &response)
		}
	case "state":
		request := &StateRequest{ID: *id}
		once = func() error {
			var response StateResponse
			return c.Call(ctx, taskService, "State", request, &response)
		}
	default:
		return fmt.Errorf("client: unknown call %q", *call)
	}

	if _, err := run(once, *inFlight, *warmup); err != nil {
		return err
	}
	fmt.Println("measuring")
	cpuBefore := cpuTime()
	start := time.Now()
	calls, err := run(once, *inFlight, *duration)
	if err != nil {
		return err
	}
	seconds := time.Since(start).Seconds()
	fmt.Printf("calls=%d seconds=%.6f cpu_ns=%d\n", calls, seconds, cpuTime()-cpuBefore)
	return nil
}

// run keeps inFlight calls going until duration has passed: each lane issues its next call when its previous
// one is answered. It returns the calls answered, or the first error.
func run(once func() error, inFlight int, duration time.Duration) (int64, error) {
	deadline := time.Now().Add(duration)
	counts := make([]int64, inFlight)
	errs := make([]error, inFlight)
	var lanes sync.WaitGroup
	for lane := 0; lane < inFlight; lane++ {
		lanes.Add(1)
		go func(lane int) {
			defer lanes.Done()
			for time.Now().Before(deadline) {
				if err := once(); err != nil {
					errs[lane] = err
					return
				}
				counts[lane]++
			}
		}(lane)
	}
	lanes.Wait()
	var total int64
	for lane := range counts {
		if errs[lane] != nil {
			return 0, errs[lane]
		}
		total += counts[lane]
	}
	return total, nil
}

func cpuTime() int64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		fail("getrusage: " + err.Error())
	}
	return usage.Utime.Nano() + usage.Stime.Nano()
}
