package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The provider's CPU and memory, read from Linux's /proc.

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on
// every Linux architecture Go supports (the kernel fixes it for user space).
const clockTicks = 100

// cpuTime is the user + system CPU time the process pid has used so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStat(b)
}

// parseStat reads utime and stime (fields 14 and 15) of /proc/PID/stat. The
// command name (field 2) is in parentheses and may itself hold spaces and
// parentheses, so the fields are counted from the last ')'.
func parseStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state), so utime (14) is fields[11] and stime (15) fields[12].
	if len(fields) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// memory is a process's resident set, in bytes: all of it, and its anonymous
// (heap, stacks) and file-backed (mmapped files such as a bbolt database) parts.
type memory struct{ total, anon, file int64 }

func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	return parseStatus(b)
}

// parseStatus reads VmRSS, RssAnon and RssFile of /proc/PID/status ("RssAnon:  1234 kB").
func parseStatus(b []byte) (memory, error) {
	var m memory
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var into *int64
		switch name {
		case "VmRSS":
			into = &m.total
		case "RssAnon":
			into = &m.anon
		case "RssFile":
			into = &m.file
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("/proc status %s: %w", name, err)
		}
		*into = kb << 10
		seen++
	}
	if seen < 3 {
		return memory{}, errors.New("/proc status: VmRSS, RssAnon or RssFile missing")
	}
	return m, nil
}

// procWatch follows a process during the measured part of a run: the CPU it
// uses from start to stop, and its memory at the moment its anonymous part peaks,
// sampled every 100 ms.
type procWatch struct {
	pid      int
	cpuStart time.Duration
	done     chan struct{}
	stopped  chan struct{}

	mu   sync.Mutex
	peak memory
	err  error
}

func startProcWatch(pid int) (*procWatch, error) {
	cpu, err := cpuTime(pid)
	if err != nil {
		return nil, err
	}
	w := &procWatch{pid: pid, cpuStart: cpu, done: make(chan struct{}), stopped: make(chan struct{})}
	if err := w.sample(); err != nil {
		return nil, err
	}
	go func() {
		defer close(w.stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-tick.C:
				if err := w.sample(); err != nil {
					w.mu.Lock()
					w.err = err
					w.mu.Unlock()
					return
				}
			}
		}
	}()
	return w, nil
}

func (w *procWatch) sample() error {
	m, err := readMemory(w.pid)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if m.anon > w.peak.anon {
		w.peak = m
	}
	return nil
}

// stop ends the watch: the CPU used since start, and the peak memory.
func (w *procWatch) stop() (time.Duration, memory, error) {
	close(w.done)
	<-w.stopped
	if err := w.sample(); err != nil {
		return 0, memory{}, err
	}
	cpu, err := cpuTime(w.pid)
	if err != nil {
		return 0, memory{}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, memory{}, w.err
	}
	return cpu - w.cpuStart, w.peak, nil
}
