package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// result is what a run sustained; line formats it as the RESULT line.
type result struct {
	mode      string
	ok        int
	errors    int
	elapsed   time.Duration // of the measured part
	latencies []time.Duration
	// measured is set when the provider's process was watched: its CPU per
	// successful operation and its peak anonymous memory.
	measured    bool
	cpuPerOp    time.Duration
	rssAnonPeak int64 // bytes
	// loadCPUPerOp is this process's own CPU per successful operation (the
	// client, and the fake DingTalk when it runs here), taken with the
	// provider's: on a machine the load shares with the provider, the two
	// together are what one operation costs the machine.
	loadCPUPerOp time.Duration
}

func (r result) opsPerSecond() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

func (r result) line() string {
	slices.Sort(r.latencies)
	s := fmt.Sprintf("RESULT mode=%s ok=%d ops_per_s=%.1f p50_ms=%.2f p99_ms=%.2f errors=%d",
		r.mode, r.ok, r.opsPerSecond(), ms(percentile(r.latencies, 0.50)), ms(percentile(r.latencies, 0.99)), r.errors)
	if r.measured {
		s += fmt.Sprintf(" cpu_ms_per_op=%.3f rss_anon_mb=%.1f load_cpu_ms_per_op=%.3f", ms(r.cpuPerOp), float64(r.rssAnonPeak)/(1<<20), ms(r.loadCPUPerOp))
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile is the nearest-rank percentile of sorted durations; 0 for none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// newTransport is the one transport every worker shares: keep-alive
// connections enough for all of them, and bounded waits.
func newTransport(concurrency int, timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // the targets are the issuer and our own fake: never a proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          4 * concurrency,
		MaxIdleConnsPerHost:   4 * concurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
}

// runLoad runs o.mode against t with o.concurrency workers: a warm-up, then
// o.duration measured.
func runLoad(ctx context.Context, o options, t target, stdout, stderr io.Writer) (result, error) {
	transport := newTransport(o.concurrency, o.timeout)
	defer transport.CloseIdleConnections()
	plain := &http.Client{Transport: transport, Timeout: o.timeout}
	is, err := discover(ctx, plain, t.issuer)
	if err != nil {
		return result{}, err
	}
	redirectURI, err := url.Parse(o.redirectURI)
	if err != nil || redirectURI.Host == "" {
		return result{}, fmt.Errorf("%w: -redirect-uri %q is not an absolute URL", errUsage, o.redirectURI)
	}
	issuerURL, _ := url.Parse(t.issuer) // checked by discover
	var clients []*client
	for _, id := range clientIDs(t.clientID, o.clients) {
		clients = append(clients, &client{
			is: is, transport: transport, timeout: o.timeout, clientID: id, secret: t.secret,
			redirectURI: redirectURI, scopes: o.scopes,
			allowedHosts: append([]string{issuerURL.Host}, t.extraHosts...),
		})
	}

	op, err := prepare(ctx, o, clients)
	if err != nil {
		return result{}, err
	}
	fmt.Fprintf(stdout, "%s against %s: %d workers, %d client(s), %s measured after %s of warm-up\n",
		o.mode, t.issuer, o.concurrency, o.clients, o.duration, o.warmup)

	failures := newFailureLog(stderr, o.verbose)
	warmEnd := time.Now().Add(o.warmup)
	end := warmEnd.Add(o.duration)
	ctx, cancel := context.WithDeadline(ctx, end.Add(o.timeout))
	defer cancel()

	var watch *procWatch
	type tally struct {
		ok, errors int
		latencies  []time.Duration
	}
	tallies := make([]tally, o.concurrency)
	var wg sync.WaitGroup
	warm := make(chan struct{})
	var watchErr error
	var connsAtStart int64
	var selfAtStart time.Duration // this process's CPU when the measured part began
	go func() {
		defer close(warm)
		select {
		case <-time.After(time.Until(warmEnd)):
		case <-ctx.Done():
			return
		}
		if t.upstreamConns != nil {
			connsAtStart = t.upstreamConns.Load()
		}
		if t.pid != 0 {
			if watch, watchErr = startProcWatch(t.pid); watchErr == nil {
				selfAtStart, watchErr = cpuTime(os.Getpid())
			}
		}
	}()
	for w := range o.concurrency {
		wg.Go(func() {
			mine := &tallies[w]
			for {
				start := time.Now()
				if !start.Before(end) || ctx.Err() != nil {
					return
				}
				err := op(ctx, w)
				if start.Before(warmEnd) {
					if err != nil {
						failures.record(err)
					}
					continue
				}
				if err != nil {
					mine.errors++
					failures.record(err)
					continue
				}
				mine.ok++
				mine.latencies = append(mine.latencies, time.Since(start))
			}
		})
	}
	wg.Wait()
	<-warm
	finished := time.Now()

	res := result{mode: o.mode, elapsed: finished.Sub(warmEnd)}
	for _, t := range tallies {
		res.ok += t.ok
		res.errors += t.errors
		res.latencies = append(res.latencies, t.latencies...)
	}
	if watchErr != nil {
		return result{}, fmt.Errorf("watch provider: %w", watchErr)
	}
	if watch != nil {
		cpu, peak, err := watch.stop()
		if err != nil {
			return result{}, fmt.Errorf("watch provider: %w", err)
		}
		self, err := cpuTime(os.Getpid())
		if err != nil {
			return result{}, fmt.Errorf("own CPU time: %w", err)
		}
		res.measured = true
		res.rssAnonPeak = peak.anon
		if res.ok > 0 {
			res.cpuPerOp = cpu / time.Duration(res.ok)
			res.loadCPUPerOp = (self - selfAtStart) / time.Duration(res.ok)
		}
		fmt.Fprintf(stdout, "provider pid %d: %.2f CPU-s in %.2f s (%.0f%% of one core); peak RSS %.1f MB, of it anonymous %.1f MB, file-backed %.1f MB\n",
			t.pid, cpu.Seconds(), res.elapsed.Seconds(), 100*cpu.Seconds()/res.elapsed.Seconds(),
			float64(peak.total)/(1<<20), float64(peak.anon)/(1<<20), float64(peak.file)/(1<<20))
	}
	if t.upstreamConns != nil && o.mode == modeLogin {
		n := t.upstreamConns.Load() - connsAtStart
		fmt.Fprintf(stdout, "fake DingTalk: %d new connections from the provider in the measured part (%.2f per login)\n",
			n, float64(n)/float64(max(1, res.ok+res.errors)))
	}
	failures.summary()
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return res, ctx.Err()
	}
	return res, nil
}

// operation is one measured unit of work for worker w.
type operation func(ctx context.Context, w int) error

// prepare returns the operation for o.mode. Worker w takes clients w,
// w+concurrency, … in turn; refresh and userinfo first log each client in once.
func prepare(ctx context.Context, o options, clients []*client) (operation, error) {
	next := make([]int, o.concurrency) // only worker w touches next[w]
	pick := func(w int) int {
		i := (w + next[w]*o.concurrency) % len(clients)
		if next[w]++; next[w]*o.concurrency >= len(clients) {
			next[w] = 0
		}
		return i
	}
	if o.mode == modeLogin {
		return func(ctx context.Context, w int) error {
			_, _, err := clients[pick(w)].login(ctx)
			return err
		}, nil
	}
	chains := make([]*chain, len(clients))
	for i, c := range clients {
		t, subject, err := c.login(ctx)
		if err != nil {
			return nil, fmt.Errorf("log in client %s before the %s load: %w", c.clientID, o.mode, err)
		}
		if o.mode == modeRefresh && t.RefreshToken == "" {
			return nil, fmt.Errorf("the login of client %s gave no refresh token: may it use offline_access?", c.clientID)
		}
		chains[i] = &chain{client: c, tokens: t, subject: subject}
	}
	if o.mode == modeRefresh {
		// A chain is used by one worker at a time: a refresh token rotates, so
		// two at once would be a reuse.
		return func(ctx context.Context, w int) error {
			ch := chains[pick(w)]
			ch.mu.Lock()
			defer ch.mu.Unlock()
			t, err := ch.client.refresh(ctx, ch.tokens.RefreshToken)
			if err != nil {
				return err
			}
			ch.tokens = t
			return nil
		}, nil
	}
	return func(ctx context.Context, w int) error {
		ch := chains[pick(w)]
		ch.mu.Lock()
		access := ch.tokens.AccessToken
		ch.mu.Unlock()
		return ch.client.userinfo(ctx, access, ch.subject)
	}, nil
}

// clientIDs names n clients after id: id itself when n is 1, else id-1 … id-n.
func clientIDs(id string, n int) []string {
	if n == 1 {
		return []string{id}
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", id, i+1)
	}
	return ids
}

// chain is one logged-in client's tokens.
type chain struct {
	client  *client
	mu      sync.Mutex
	tokens  tokens
	subject string
}

// failureLog reports failed operations on stderr: the first of each kind (all
// with verbose), then how many of each there were.
type failureLog struct {
	w       io.Writer
	verbose bool
	mu      sync.Mutex
	counts  map[string]int
	order   []string
}

func newFailureLog(w io.Writer, verbose bool) *failureLog {
	return &failureLog{w: w, verbose: verbose, counts: map[string]int{}}
}

func (f *failureLog) record(err error) {
	msg := err.Error()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counts[msg] == 0 {
		f.order = append(f.order, msg)
	}
	f.counts[msg]++
	if f.verbose || f.counts[msg] == 1 {
		fmt.Fprintln(f.w, "failed:", msg)
	}
}

func (f *failureLog) summary() {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, msg := range f.order {
		if n := f.counts[msg]; n > 1 {
			fmt.Fprintf(&b, "failed %d times: %s\n", n, msg)
		}
	}
	_, _ = io.WriteString(f.w, b.String())
}
